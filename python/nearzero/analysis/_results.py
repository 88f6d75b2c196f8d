"""How the analysis helpers read classify results: the (counts, sums[, terms]) call forms, the
array library (NumPy, torch, CuPy), masks, term arrays and the reduced forms (`reduce=`).
"""

from __future__ import annotations

import sys
from numbers import Real

import numpy as np

from ..terms import PAIR_TERMS, SINGLE_TERMS

REDUCED_FORMS = (None, "all", "channel")
# Count dtypes the compiled analysis kernels take (csrc/cpu/analysis_cpu.cpp); others go to NumPy.
COMPILED_COUNT_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))

# Letter code of each class; every other character (the '-' of a '--' placeholder) is -1.
_LETTER_CODE = np.full(128, -1, dtype=np.int8)
for _code, _letter in enumerate(SINGLE_TERMS):
    _LETTER_CODE[ord(_letter)] = _code


def unpack(counts, sums=None, terms=None):
    """Accept ``(counts, sums)``, ``(counts, sums, terms)`` or the three separately.

    A third tuple entry that is not a terms array (the thresholds of ``return_thresholds=True``)
    is ignored, so an op's full return value can be passed as is.
    """
    if isinstance(counts, (tuple, list)):
        parts = tuple(counts)
        if len(parts) not in (2, 3):
            raise ValueError(f"expected (counts, sums) or (counts, sums, terms), got {len(parts)} items")
        counts, sums = parts[0], parts[1]
        if len(parts) == 3 and _looks_like_terms(parts[2], counts):
            terms = parts[2]
    if sums is None:
        raise ValueError("sums are missing: pass counts and sums, or the (counts, sums) tuple")
    return as_array(counts), as_array(sums), terms


def as_array(x):
    """NumPy, torch and CuPy arrays as they are; anything else (lists) through np.asarray."""
    return x if library_of(x) != "numpy" or isinstance(x, np.ndarray) else np.asarray(x)


def _looks_like_terms(candidate, counts) -> bool:
    if candidate is None or isinstance(candidate, Real):
        return False
    shape = np.shape(candidate)
    return tuple(shape) == tuple(counts.shape) and np.asarray(candidate).dtype.kind in "USO"


def library_of(x) -> str:
    """'torch', 'cupy' or 'numpy' (anything else is converted with np.asarray)."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return "torch"
    if type(x).__module__.split(".")[0] == "cupy":
        return "cupy"
    return "numpy"


def to_host(x) -> np.ndarray:
    """A NumPy array of `x`, copied from the GPU when it lives there."""
    library = library_of(x)
    if library == "torch":
        x = x.detach()
        if x.dtype.is_floating_point and x.element_size() < 4:
            x = x.float()
        return x.cpu().numpy()
    if library == "cupy":
        return x.get()
    return np.asarray(x)


def like(reference, value):
    """`value` (a mask) as an array of `reference`'s library and device."""
    library = library_of(reference)
    if library == "torch":
        torch = sys.modules["torch"]
        if isinstance(value, torch.Tensor):
            return value.to(device=reference.device, dtype=torch.bool)
        return torch.as_tensor(to_host(value).astype(bool), device=reference.device)
    if library == "cupy":
        import cupy

        return cupy.asarray(value, dtype=bool)
    return to_host(value).astype(bool, copy=False)


def check_reduce(reduce) -> None:
    if reduce not in REDUCED_FORMS:
        raise ValueError(f"reduce must be None, 'all' or 'channel' (as given to the op), got {reduce!r}")


def check_shapes(counts, sums, terms=None, mask=None, *, term_count=None,
                 negative_counts=False) -> int:
    """Validate shapes and values; returns the number of terms (3 or 9). Negative counts are
    refused unless `negative_counts` (filtering re-orders any numbers as the original did)."""
    if tuple(counts.shape) != tuple(sums.shape):
        raise ValueError(f"counts and sums have different shapes: {tuple(counts.shape)} != "
                         f"{tuple(sums.shape)}")
    if len(counts.shape) == 0 or counts.shape[-1] not in (3, 9):
        raise ValueError(f"the last axis of counts must hold 3 (tensor_classify) or 9 terms, got "
                         f"shape {tuple(counts.shape)}")
    n_terms = int(counts.shape[-1])
    if term_count is not None and n_terms != term_count:
        expected = "a two-input (9-term) result" if term_count == 9 else "a tensor_classify result"
        raise ValueError(f"expected {expected}, got counts of shape {tuple(counts.shape)}")
    if terms is not None and tuple(np.shape(terms)) != tuple(counts.shape):
        raise ValueError(f"terms must have the shape of counts and sums: expected "
                         f"{tuple(counts.shape)}, got {tuple(np.shape(terms))}")
    if mask is not None and tuple(np.shape(mask)) != tuple(counts.shape[:-1]):
        raise ValueError(f"mask must have the value shape of counts and sums: expected "
                         f"{tuple(counts.shape[:-1])}, got {tuple(np.shape(mask))}")
    check_values(counts, sums, negative_counts)
    return n_terms


def _is_complex(x) -> bool:
    dtype = getattr(x, "dtype", None)
    if library_of(x) == "torch":
        return bool(x.is_complex())
    return dtype is not None and np.dtype(dtype).kind == "c"


def check_values(counts, sums, negative_counts=False) -> None:
    """Counts are non-negative numbers, sums real: anything else is not a classify result."""
    for name, x in (("counts", counts), ("sums", sums)):
        if _is_complex(x):
            raise TypeError(f"{name} are complex (dtype {x.dtype}); classify results are real")
    kind = np.dtype(str(counts.dtype).replace("torch.", "")).kind if library_of(counts) == "torch" \
        else np.dtype(counts.dtype).kind
    if kind not in "biuf":
        raise TypeError(f"counts must be numbers, got dtype {counts.dtype}")
    if not negative_counts and kind in "if" and bool((counts < 0).any()):
        raise ValueError("counts must not be negative: they count products in each class")


def as_planes(array: np.ndarray) -> np.ndarray:
    """(terms, cells) view of a (..., terms) array: free for the ops' term-major results."""
    return np.moveaxis(array, -1, 0).reshape(array.shape[-1], -1)


def term_names(n_terms: int) -> tuple:
    return PAIR_TERMS if n_terms == 9 else SINGLE_TERMS


# A multiplicative hash that sends the nine pair names, read as 8-byte integers ('<U2'), and the
# '--' placeholder to distinct values 0..15, increasing in the standard term order (found by
# search). It lets grouping read a term array in two passes instead of a per-character lookup.
_PAIR_HASH = np.uint64(0x3B0D09A268BE2DBB)
_PAIR_HASH_SHIFT = np.uint64(60)
_PAIR_NAMES = np.array(PAIR_TERMS + ("--",), dtype="<U2")
_PAIR_SLOTS = (_PAIR_NAMES.view(np.uint64) * _PAIR_HASH) >> _PAIR_HASH_SHIFT
PLACEHOLDER_SLOT = int(_PAIR_SLOTS[-1])
SLOT_NAMES = {int(slot): str(name) for slot, name in zip(_PAIR_SLOTS, _PAIR_NAMES)}


def pair_term_slots(planes: np.ndarray):
    """Hash slots (1..15, increasing in the standard order; PLACEHOLDER_SLOT for '--') of a
    '<U2' (terms, cells) array of pair names, or None when the array is not in that form.
    Every entry is checked: unknown slots and two checksums over the raw values catch names
    that are not pair names.
    """
    if planes.dtype != np.dtype("<U2"):
        return None
    values = np.ascontiguousarray(planes).view(np.uint64)
    slots = values * _PAIR_HASH
    slots >>= _PAIR_HASH_SHIFT
    per_slot = np.bincount(slots.reshape(-1).view(np.int64), minlength=16)
    table = np.zeros(16, dtype=np.uint64)
    table[_PAIR_SLOTS.astype(np.intp)] = _PAIR_NAMES.view(np.uint64)
    expected_sum = np.sum(table * per_slot.astype(np.uint64), dtype=np.uint64)
    expected_xor = np.bitwise_xor.reduce(table[per_slot % 2 == 1], initial=np.uint64(0))
    if (np.any(per_slot[table == 0]) or np.sum(values, dtype=np.uint64) != expected_sum
            or np.bitwise_xor.reduce(values.reshape(-1), initial=np.uint64(0)) != expected_xor):
        return None  # some name is not a pair name: the careful parser reports which
    return slots


def term_codes(terms, n_terms: int) -> np.ndarray:
    """Index (0..n_terms-1, standard order) of every entry of a terms array; -1 for a
    placeholder such as '--'. Raises ValueError for any other unrecognised name.
    """
    names = np.asarray(terms)
    if names.dtype.kind != "U" or names.dtype.itemsize > 8:
        names = names.astype(str)
        if names.size and np.char.str_len(names).max() > 2:
            too_long = names[np.char.str_len(names) > 2].flat[0]
            raise ValueError(f"unrecognised term name {too_long!r}")
        names = names.astype("U2")
    width = names.dtype.itemsize // 4
    chars = np.ascontiguousarray(names).view(np.uint32).reshape(names.shape + (width,))
    letters = _LETTER_CODE[np.minimum(chars, 127)]
    dash = ord("-")
    placeholder = (chars[..., 0] == dash) & ((width < 2) | (chars[..., -1] == dash)
                                            | (chars[..., -1] == 0))  # '--' or '-'
    if n_terms == 9 and width == 2:
        codes = letters[..., 0] * 3 + letters[..., 1]
        valid = (letters[..., 0] >= 0) & (letters[..., 1] >= 0)
    elif n_terms == 3:
        codes = letters[..., 0]
        valid = (letters[..., 0] >= 0) & ((width < 2) | (chars[..., -1] == 0))
    else:  # single letters cannot name class pairs
        codes, valid = letters[..., 0], np.zeros(names.shape, dtype=bool)
    codes = np.where(valid, codes, -1).astype(np.int8)
    bad = ~valid & ~placeholder
    if bad.any():
        raise ValueError(f"unrecognised term name {names[bad].flat[0]!r}; expected one of "
                         f"{', '.join(term_names(n_terms))} or a '--' placeholder")
    return codes


def standard_order(counts: np.ndarray, sums: np.ndarray, terms) -> tuple:
    """Counts and sums re-ordered to the standard term order (what `filter_classifications`
    sorted per cell, put back); a term missing from a cell ('--' placeholder) gets zero.
    """
    n_terms = counts.shape[-1]
    codes = term_codes(terms, n_terms)
    if np.any((codes < 0) & (counts != 0)):
        raise ValueError("a '--' placeholder term has a non-zero count")
    real = codes >= 0
    # One-hot per term: cheap at 3 or 9 terms, and it detects repeated names in a cell.
    seen = np.stack([np.sum(codes == k, axis=-1) for k in range(n_terms)], axis=-1)
    if np.any(seen > 1):
        raise ValueError("a term name appears twice in one cell of terms")
    target = np.where(real, codes, n_terms).astype(np.intp)
    out_counts = np.zeros(counts.shape[:-1] + (n_terms + 1,), dtype=counts.dtype)
    out_sums = np.zeros(sums.shape[:-1] + (n_terms + 1,), dtype=sums.dtype)
    np.put_along_axis(out_counts, target, counts, axis=-1)
    np.put_along_axis(out_sums, target, np.where(real, sums, 0), axis=-1)
    return out_counts[..., :n_terms], out_sums[..., :n_terms]
