"""glibc malloc settings that keep a CPU training loop from page-faulting on every iteration.

PyTorch's CPU tensors come from the C library's ``malloc``.  With glibc's defaults, a large block (an
activation or a gradient of a few MB) is either mapped fresh from the kernel with ``mmap`` and unmapped
when freed, or taken from the heap, whose top is given back to the kernel when more than the trim
threshold is free there.  Either way the next iteration touches fresh pages: at batch 256 on MNIST-2D about
10,000 page faults (40 MB zeroed by the kernel) per iteration, some 15 % of the step.  Which of the two
states a process falls into depends on the order of its allocations, so the time of an iteration can also
change from one run to the next.

:func:`tune_malloc` raises both thresholds (``mallopt(M_MMAP_THRESHOLD)`` to 32 MiB, glibc's maximum, and
``M_TRIM_THRESHOLD`` to 1 GiB): blocks up to 32 MiB are reused from the heap and the heap is not trimmed,
so after the first iterations no page is faulted in again.  The cost: memory freed by the process stays
with it (its resident size stays at its peak) until it exits.  The environment variables
``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824`` do the same for a whole process.
``caffe-like train`` and ``caffe-like quickstart`` call it (``train --malloc default`` does not); a program
using :class:`caffe_like.Solver` may call it first.  Elsewhere (musl, macOS, Windows) it does nothing.
Measured in docs/benchmarks.md: on MNIST-2D at batch 256, three processes gave 0.74, 0.91 and 0.95x the
hand-written speed with glibc's defaults and 0.98x each with these settings.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["tune_malloc", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

#: glibc's mallopt parameter numbers (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: blocks up to this size come from the heap (glibc's HEAP_MAX / DEFAULT_MMAP_THRESHOLD_MAX on 64-bit)
MMAP_THRESHOLD = 32 * 1024 * 1024
#: free memory at the top of the heap kept rather than given back to the kernel
TRIM_THRESHOLD = 1024 * 1024 * 1024


def tune_malloc(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Set glibc's mmap and trim thresholds for this process; True when both were applied (Linux with
    glibc), False where there is no ``mallopt`` to call."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))) and bool(mallopt(_M_TRIM_THRESHOLD,
                                                                                 int(trim_threshold)))
