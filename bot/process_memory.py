"""Memory settings of a process that runs the model under load: glibc's malloc and oneDNN's kernel cache.

Apart from `bot.serve` so that the parsing child process sets them without importing the
server (FastAPI, SQLAlchemy and the rest cost a process ~35 MB it does not need).
"""

from __future__ import annotations

import ctypes
import os

# mallopt parameter numbers, from glibc's malloc.h
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
ONEDNN_CACHE = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"


def tune_malloc(arenas: int = 2, release_above: int = 128 * 1024) -> None:
    """Keep glibc's malloc from holding on to memory a worker has freed.

    glibc gives busy threads arenas of their own (up to 8 per core), and raises its mmap
    threshold as large blocks are freed, so torch's per-batch tensors end up in heaps that
    fragment and are never given back: a worker's RSS grew from 330 MB to 550 MB under load.
    Capping the arenas and fixing the mmap and trim thresholds makes blocks above
    ``release_above`` bytes go back to the system when freed. Elsewhere than glibc this does nothing.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_ARENA_MAX, arenas)
        libc.mallopt(M_MMAP_THRESHOLD, release_above)
        libc.mallopt(M_TRIM_THRESHOLD, release_above)
    except (OSError, AttributeError):
        pass


def bound_kernel_cache(kernels: int = 64) -> None:
    """Keep oneDNN from caching a compiled kernel for every input shape a worker meets.

    torch runs the model's LSTM and character convolution through oneDNN, which keeps up to
    1,024 kernels built for the shapes it has seen, and a worker meets a new shape for nearly
    every batch size and message length: 600 batches of 1-30 messages of 1-12 words grew a
    process to 464 MB, against 401 MB with 64 kernels kept, at the same speed. Keeping none
    costs more than it saves: rebuilding the kernels made a lone message's parse 2.5x slower
    (4.5 against 1.85 ms). oneDNN reads the setting when it first builds a kernel, so this must
    run before the first parse; an operator's own value wins.
    """
    os.environ.setdefault(ONEDNN_CACHE, str(kernels))
