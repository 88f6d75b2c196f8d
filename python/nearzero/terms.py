"""Names of the classes and class pairs, in result order (the last axis of counts and sums)."""

SINGLE_TERMS = ("P", "Z", "N")
PAIR_TERMS = ("PP", "PZ", "PN", "ZP", "ZZ", "ZN", "NP", "NZ", "NN")

__all__ = ["SINGLE_TERMS", "PAIR_TERMS", "classify_terms"]


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
