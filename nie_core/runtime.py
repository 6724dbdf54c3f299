"""Process-wide allocator settings for processes that run the models over and over: call
:func:`keep_freed_memory` in a running process (the ``nie enhance`` CLI), or start a process
with :data:`MODEL_PROCESS_ENV` in its environment (the Serve model replicas).

:func:`keep_freed_memory` stops glibc's malloc from handing large freed blocks back to the
operating system. By default glibc serves big allocations (above a threshold that adapts, at
most 32 MiB) with fresh ``mmap``s and unmaps them on ``free``, and trims the top of its heap
beyond ``M_TRIM_THRESHOLD``. A 256 x 256 x2 EDSR-baseline ``enhance`` allocates and frees a few
hundred MB of activations, so every call page-faulted them back in: about 65,000 minor faults
and 15% of the call's time on this 2-core machine (514 against 443 ms with the setting; zero
faults). The price: memory freed after a large request stays in the process for the next one
instead of going back to the OS (the peak is unchanged).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["MODEL_PROCESS_ENV", "keep_freed_memory"]

_M_TRIM_THRESHOLD = -1  # mallopt parameter numbers, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
DEFAULT_THRESHOLD_BYTES = 1 << 30  # blocks up to 1 GiB stay in the heap once freed

# The same through glibc's environment variables, for a process started to run models on
# threads other than its main one (a Serve replica computes in a worker thread). glibc gives
# such threads arenas of their own, which unmap large freed blocks whatever mallopt says:
# measured in an Enhancer replica, 18,000 faults and 120 ms of system time per 256 x 256
# enhance with mallopt, none with these. One arena (the main one) for every thread, from start.
MODEL_PROCESS_ENV = {
    "MALLOC_ARENA_MAX": "1",
    "MALLOC_MMAP_THRESHOLD_": str(DEFAULT_THRESHOLD_BYTES),
    "MALLOC_TRIM_THRESHOLD_": str(DEFAULT_THRESHOLD_BYTES),
}


def keep_freed_memory(threshold_bytes: int = DEFAULT_THRESHOLD_BYTES) -> bool:
    """Keep freed blocks up to ``threshold_bytes`` in this process's heap (glibc ``mallopt``
    ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD``). Returns True when applied, False where the C
    library is not glibc (macOS, musl): a no-op there. Affects allocations made afterwards."""
    if threshold_bytes <= 0:
        raise ValueError(f"threshold_bytes must be > 0, got {threshold_bytes}")
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    value = min(threshold_bytes, 2**31 - 1)  # mallopt takes a C int
    return bool(mallopt(_M_MMAP_THRESHOLD, value)) and bool(mallopt(_M_TRIM_THRESHOLD, value))
