"""Keeping keys and values: the prefix cache shared across runs, and the transformers cache shims.

The prompt before the task (instruction, tools, examples) is the same for every run of a prompt,
so its keys / values are computed once per process and model and copied into each new session
(generation.py). The two shims keep one code path across transformers versions.

    >>> cache = PrefixCache(size=1)
    >>> cache.put(("m", (1, 2)), [1, 2]); cache.put(("m", (3,)), [3])
    >>> cache.get(("m", (1, 2))) is None and cache.get(("m", (3,)))
    [3]
"""

from __future__ import annotations

import copy
import threading
from typing import Any

__all__ = ["PrefixCache", "PREFIX_CACHE", "clear_prefix_cache", "cache_kwarg", "crop_cache"]


class PrefixCache:
    """Caches of shared prompt prefixes, by (model id, prefix ids); the least recently used goes first.

    Entries are copied in and out, so no session ever changes a stored one. Thread-safe.
    """

    def __init__(self, size: int = 4) -> None:
        self.size = size  # prefixes kept (each ~40 MB for SmolLM2-135M and a 900-token prompt)
        self._entries: dict[tuple, Any] = {}  # key -> a DynamicCache of that prefix, most recently used last
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple) -> Any | None:
        """A copy of the cache stored under ``key``, or None."""
        with self._lock:
            hit = self._entries.pop(key, None)
            if hit is not None:
                self._entries[key] = hit  # now the most recently used
        return copy.deepcopy(hit) if hit is not None else None

    def put(self, key: tuple, cache: Any) -> None:
        """Store a copy of ``cache``; forget the least recently used beyond ``size``."""
        stored = copy.deepcopy(cache)
        with self._lock:
            self._entries[key] = stored
            while len(self._entries) > self.size:
                self._entries.pop(next(iter(self._entries)))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


PREFIX_CACHE = PrefixCache()  # the one per process; DecodeSession.prefix_cache


def clear_prefix_cache() -> None:
    """Forget the shared prompt prefixes (frees their memory; the next run recomputes its prefix)."""
    PREFIX_CACHE.clear()


def cache_kwarg(model: Any) -> str:
    """transformers 5.2x renamed ``past_key_values`` to ``cache``; use what this version takes."""
    name = getattr(model, "_workbench_cache_kwarg", None)
    if name is None:
        import inspect

        name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        model._workbench_cache_kwarg = name
    return name


def crop_cache(cache: Any, keep: int) -> None:
    """Keep the first ``keep`` positions. A negative argument removes that many from the end in
    every transformers version (a positive one meant 'keep n' before 5.2x and is refused after)."""
    remove = cache.get_seq_length() - keep
    if remove > 0:
        cache.crop(-remove)
