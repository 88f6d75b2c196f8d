"""Memory of large CPU results: 2 MiB-aligned anonymous mappings with transparent huge pages,
kept after the caller drops a result so that the next result of a similar size reuses it.

A fresh mapping costs the kernel one zeroed page per first touch: about 28 ms per 300 MB here
even with huge pages (a third of a full convolution result's time), and on virtual machines
that hand freed memory back to the host (free page reporting) up to ten times that, as every
page comes back from the hypervisor. A result dropped by the caller is found free at the next
request (no array made from its memory is left) and handed out again. Free
mappings are kept up to twice the size of the latest request (the other buffer of the same
result may want them), the oldest released first; so when a caller stops, at most its last
dropped results stay mapped, and a pooled request bounds what is held.
"""

from __future__ import annotations

import mmap
import threading
import weakref
from dataclasses import dataclass

import numpy as np

__all__ = ["reusable_empty", "held_bytes", "release_free"]

# Results smaller than this come from NumPy's allocator (they fault little and malloc keeps them).
MIN_POOLED_BYTES = 8 << 20
# Anonymous private mappings as Python's mmap makes them on POSIX systems; elsewhere (Windows)
# every result comes from NumPy's allocator.
POOLED = hasattr(mmap, "MAP_PRIVATE")
HUGE_PAGE = 2 << 20
# A free mapping serves a request of at least this fraction of its size (no large waste).
MIN_USE = 0.75
# Free mappings kept after a request, as a multiple of its size.
KEEP_FREE = 2


@dataclass
class _Mapping:
    """One mapping and the buffer export over all of it that every array handed out from it
    holds (through the array NumPy makes over the export, the base of each view). The mapping is
    free once that export is gone: a weak reference tells, on any Python, without counting
    references."""

    memory: mmap.mmap
    export: weakref.ref | None = None

    def free(self) -> bool:
        return self.export is None or self.export() is None

    def hand_out(self) -> np.ndarray:
        whole = np.frombuffer(self.memory, dtype=np.uint8)
        self.export = weakref.ref(whole.base)  # the memoryview NumPy took of the mapping
        return whole

    def release(self) -> bool:
        """Unmaps a free mapping; False if something still exports its memory."""
        try:
            self.memory.close()
        except BufferError:
            return False
        return True


_lock = threading.Lock()
_mappings: list = []  # [_Mapping]: every mapping made and not yet released, oldest first


def _new_mapping(nbytes: int):
    try:
        mapping = mmap.mmap(-1, nbytes + HUGE_PAGE, flags=mmap.MAP_PRIVATE,
                            prot=mmap.PROT_READ | mmap.PROT_WRITE)
    except OSError as e:  # ENOMEM: as np.empty would say it
        raise MemoryError(f"nearzero: could not allocate {nbytes} bytes for a result "
                          f"({e.strerror}); pass reduce= to get a reduced result") from None
    if hasattr(mmap, "MADV_HUGEPAGE"):  # one fault and one zeroing per 2 MiB instead of 4 KiB
        try:
            mapping.madvise(mmap.MADV_HUGEPAGE)
        except OSError:
            pass
    return mapping


def reusable_empty(shape, dtype) -> np.ndarray:
    """An uninitialised C-contiguous array starting on a 2 MiB boundary (so on a cache line).
    Large ones live in mappings that are reused once every array viewing them is gone."""
    dtype = np.dtype(dtype)
    count = int(np.prod(shape, dtype=np.int64))
    nbytes = count * dtype.itemsize
    if nbytes < MIN_POOLED_BYTES or not POOLED:
        raw = np.empty(nbytes + 64, dtype=np.uint8)
        start = -raw.ctypes.data % 64
        return raw[start:start + nbytes].view(dtype).reshape(shape)
    need = -(-nbytes // HUGE_PAGE) * HUGE_PAGE
    with _lock:
        free = [m for m in _mappings if m.free()]
        fitting = [m for m in free if need <= len(m.memory) - HUGE_PAGE
                   and need >= MIN_USE * len(m.memory)]
        chosen = min(fitting, key=lambda m: len(m.memory)) if fitting else None
        kept = sum(len(m.memory) for m in free if m is not chosen)
        for mapping in free:
            if kept <= KEEP_FREE * need:
                break
            if mapping is not chosen:
                kept -= len(mapping.memory)
                if mapping.release():
                    _mappings.remove(mapping)
        if chosen is None:
            chosen = _Mapping(_new_mapping(need))
        else:  # most recently used last
            _mappings.remove(chosen)
        _mappings.append(chosen)
        whole = chosen.hand_out()
    start = -whole.ctypes.data % HUGE_PAGE
    return whole[start:start + nbytes].view(dtype).reshape(shape)


def release_free() -> int:
    """Unmaps every free mapping (before a result is refused for want of memory); returns the
    bytes released."""
    with _lock:
        released = 0
        for mapping in [m for m in _mappings if m.free()]:
            size = len(mapping.memory)
            if mapping.release():
                released += size
                _mappings.remove(mapping)
        return released


def held_bytes() -> int:
    """Bytes mapped for results, in use or free (free ones are released by the next request)."""
    with _lock:
        return sum(len(m.memory) for m in _mappings)
