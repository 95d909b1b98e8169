"""glibc heap settings for a process that runs for months.

Every engine runs in its own thread, and glibc gives each thread that allocates its own malloc arena
(up to 8 per core). Piper's onnxruntime, whisper.cpp and numpy free large, differently sized buffers
on those threads; freed memory stays in the arena it came from, so RSS rises in steps to the
high-water mark of each arena and never comes back. Two arenas and a ``malloc_trim`` after each turn
keep RSS at what is actually in use. No-ops where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from functools import cache
from typing import Any

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # mallopt parameter numbers from glibc's malloc.h
ARENA_MAX = 2
_MALLINFO2 = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (*_MALLINFO2, "keepcost")]


@cache
def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018  (glibc only: musl has no mallopt / malloc_trim)
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    if hasattr(libc, "mallinfo2"):  # glibc ≥ 2.33
        libc.mallinfo2.restype = _MallInfo2
    return libc


def limit_arenas(arenas: int = ARENA_MAX) -> bool:
    """Cap glibc's malloc arenas. Call before the engine threads start (an arena, once made, stays)."""
    libc = _libc()
    ok = bool(libc is not None and libc.mallopt(_M_ARENA_MAX, arenas) == 1)
    log.debug("heap: malloc arenas capped at %d: %s", arenas, ok)
    return ok


def trim() -> None:
    """Give freed heap pages back to the system (a few ms; called when a turn has ended)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def stats() -> dict[str, float]:
    """glibc's heap figures in MB: ``heap_in_use``, ``heap_free`` (freed but still held) and ``mmapped``
    (large blocks malloc maps directly). Empty where there is no ``mallinfo2`` (glibc < 2.33, musl)."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return {}
    m = libc.mallinfo2()
    mb = 1024 * 1024
    return {
        "heap_in_use_mb": round(m.uordblks / mb, 1),
        "heap_free_mb": round(m.fordblks / mb, 1),
        "mmapped_mb": round(m.hblkhd / mb, 1),
    }
