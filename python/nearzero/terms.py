"""Names of the classes and class pairs, in result order (the last axis of counts and sums),
and the named index sets of that axis the analysis and the report read."""

SINGLE_TERMS = ("P", "Z", "N")
PAIR_TERMS = ("PP", "PZ", "PN", "ZP", "ZZ", "ZN", "NP", "NZ", "NN")

SINGLE_INDEX = {name: i for i, name in enumerate(SINGLE_TERMS)}
PAIR_INDEX = {name: i for i, name in enumerate(PAIR_TERMS)}


def pair_indices(*names: str) -> tuple:
    """Positions of class pairs on the last axis of a nine-way result."""
    return tuple(PAIR_INDEX[name] for name in names)


FIRST_NEAR_ZERO = pair_indices("ZP", "ZZ", "ZN")  # pairs whose first factor is near zero
SECOND_NEAR_ZERO = pair_indices("PZ", "ZZ", "NZ")  # pairs whose second factor is near zero
NEITHER_NEAR_ZERO = pair_indices("PP", "PN", "NP", "NN")  # products of two non-zero classes

__all__ = ["SINGLE_TERMS", "PAIR_TERMS", "SINGLE_INDEX", "PAIR_INDEX", "pair_indices",
           "FIRST_NEAR_ZERO", "SECOND_NEAR_ZERO", "NEITHER_NEAR_ZERO", "classify_terms"]


def classify_terms(example=None, retain_shape=False):
    """The term names for a result: ``['PP', ..., 'NN']`` by default, ``['P', 'Z', 'N']`` for a
    `tensor_classify` result (last axis 3). With ``retain_shape=True`` the names are tiled to
    the example's shape (one name per count/sum entry).
    """
    import numpy as np

    shape = None
    if example is None:
        names = PAIR_TERMS
    else:
        if isinstance(example, tuple):
            example = example[0]
        shape = tuple(example.shape) if hasattr(example, "shape") else np.shape(example)
        if not shape or shape[-1] not in (3, 9):
            raise ValueError(
                f"cannot tell the terms of an example whose last axis is not 3 or 9: shape {shape}"
            )
        names = SINGLE_TERMS if shape[-1] == 3 else PAIR_TERMS
    if not retain_shape:
        return list(names)
    if shape is None:
        raise ValueError("retain_shape=True needs an example to take the shape from")
    return np.broadcast_to(np.array(names), shape).copy()
