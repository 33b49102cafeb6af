"""MLX's memory API, measured by mx's counting NumPy allocator (see _memory.pyx)."""
from __future__ import annotations

import os

from mx.core import _memory


def _physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 40


_memory.set_limit(_physical_memory())
_limit = [_physical_memory()]


def get_memory_limit() -> int:
    """The current memory limit in bytes."""
    return _limit[0]


def get_active_memory() -> int:
    """Bytes held by live mx buffers (the cache excluded)."""
    return int(_memory.active())


def get_peak_memory() -> int:
    """The largest value get_active_memory has had since start or the last reset."""
    return int(_memory.peak())


def reset_peak_memory() -> None:
    """Restart peak tracking from the current active memory."""
    _memory.reset_peak()


def get_cache_memory() -> int:
    """Bytes of freed buffers kept for reuse."""
    return int(_memory.cached())


def _check_limit(limit, op):
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise ValueError(f"[{op}] The limit must be a non-negative int of bytes, got {limit!r}.")
    return limit


def set_memory_limit(limit: int) -> int:
    """Cap the bytes mx buffers may hold; an evaluation that would exceed it raises
    MemoryError. Returns the previous limit."""
    prev = int(_memory.set_limit(_check_limit(limit, "set_memory_limit")))
    _limit[0] = limit
    return prev


def set_cache_limit(limit: int) -> int:
    """Cap the bytes kept in the buffer cache (0 disables caching). Returns the previous
    limit."""
    return int(_memory.set_cache_limit(_check_limit(limit, "set_cache_limit")))


def set_wired_limit(limit: int) -> int:
    """Wired (pinned) memory only exists on Metal; on other devices this records nothing
    and returns 0."""
    _check_limit(limit, "set_wired_limit")
    return 0


def clear_cache() -> None:
    """Return every cached buffer to the system."""
    _memory.clear_cache()


__all__ = ["get_memory_limit", "get_active_memory", "get_peak_memory", "reset_peak_memory", "get_cache_memory",
           "set_memory_limit", "set_cache_limit", "set_wired_limit", "clear_cache"]
