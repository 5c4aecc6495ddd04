"""How a batch command's process takes memory from the kernel and gives it back.

numpy's temporaries for a column of a million rows are 8 MB each. By default glibc
gives blocks that large back to the kernel when they are freed (each is its own
mapping, or the top of the heap is trimmed), so the next one is faulted in again; and
numpy asks for transparent huge pages for them, which on the 2-core VM these figures
come from made a fresh 8 MB block cost 20-28 ms once the first few dozen were taken
(6 ms in ordinary pages, under 1 ms reused). `keel drift` on 1,000,000 x 25 went from
2.8 s to 1.8 s with both changed (paired runs); at 200,000 rows it makes no difference.
Arrow's default pool (mimalloc) took 0.11-0.49 s to read the two files, jemalloc a steady
0.21-0.23 s: the command went from 2.49 s to 2.03 s (paired, median of 8). And the command
runs its own threads, one column each: OpenBLAS's threads for a column's dot product
only spun beside them (1.73 s to 1.47 s, CPU 3.2 s to 2.4 s, with one BLAS thread).
"""

from __future__ import annotations

import os
import sys

__all__ = ["tune_for_batch"]

# mallopt(3) parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_for_batch(largest_block: int = 256 << 20, keep: int = 1 << 30) -> bool:
    """Tune this process for one large batch of array work that ends with the process:
    serve blocks up to ``largest_block`` bytes from the heap, return freed memory to the
    kernel only beyond ``keep`` bytes, (unless ``NUMPY_MADVISE_HUGEPAGE`` is set, or
    numpy is already imported) ask numpy not to request huge pages and its BLAS for one
    thread, and (unless ``ARROW_DEFAULT_MEMORY_POOL`` is set) give Arrow its jemalloc
    pool where it has one.

    True when the C library took its settings. For a command that exits when its work is
    done (``keel drift``), not for a server: the process keeps up to ``keep`` bytes it no
    longer uses. Elsewhere than glibc on Linux it does nothing."""
    if not sys.platform.startswith("linux"):
        return False
    if "numpy" not in sys.modules:
        os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
        for blas in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(blas, "1")
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        import pyarrow as pa

        if "jemalloc" in pa.supported_memory_backends():
            pa.set_memory_pool(pa.jemalloc_memory_pool())
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    took_mmap = mallopt(_M_MMAP_THRESHOLD, largest_block)
    took_trim = mallopt(_M_TRIM_THRESHOLD, keep)
    return bool(took_mmap and took_trim)
