"""Continuous batching: the runs decoding at the same moment share one forward pass per token.

Each run keeps its own session, KV cache and stop rules (generation.py); only the pass is shared.
A session that is generating has entered its model's :class:`Batcher`; every forward pass it needs
goes through :meth:`Batcher.forward`. Alone, the pass runs at once in the caller's thread. With
others generating, the request waits a few milliseconds for the other sessions' requests, then one
worker thread runs them all as one RowForward pass (fastforward.py) and hands each its logits. Runs
join and leave between any two tokens; a newcomer's prefill is cut into short chunks while others
decode (generation.py asks :meth:`Batcher.prefill_chunk`), so it does not stall them for long.
Nothing is shared between sessions but the weights: each reads only its own rows' logits, and an
error in one request is raised in its own thread.

    >>> from workbench.testing import tiny_model
    >>> from workbench.fastforward import row_forward
    >>> lm = tiny_model()
    >>> b = batcher_for(lm)
    >>> with b.session():
    ...     b.forward(row_forward(lm).new_cache(), [5, 6], 1).shape[0]
    1
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .fastforward import GrowingCache, RowForward, _dropped, row_forward

if TYPE_CHECKING:
    import torch

    from .models import LoadedModel

__all__ = ["Batcher", "batcher_for", "BatchStats", "default_batch", "parallel_map"]

_GATHER_S = 0.004  # how long a pass waits for the other generating sessions' requests
_SHARED_PREFILL = 64  # prefill tokens per pass while other sessions decode


@dataclass
class BatchStats:
    """What the batcher did: passes run, rows in them, and how many passes carried more than one session."""

    passes: int = 0
    rows: int = 0
    shared: int = 0
    sessions_max: int = 0


@dataclass
class _Request:
    cache: GrowingCache
    ids: list[int]
    keep: int
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class Batcher:
    """The batched decoder of one loaded model, shared by every session on it in this process."""

    def __init__(self, rows: RowForward, gather_s: float = _GATHER_S) -> None:
        self.rows = rows
        self.gather_s = gather_s
        self.stats = BatchStats()
        self._cv = threading.Condition()
        self._active = 0  # sessions inside generate
        self._pending: list[_Request] = []
        self._worker: threading.Thread | None = None

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        # like RowForward: a copied model gets its own batcher (this one holds a lock and a thread)
        return (_dropped, ())

    @property
    def active(self) -> int:
        return self._active

    @contextmanager
    def session(self) -> Iterator[Batcher]:
        """Around one generate call: while inside, this session's passes may be batched with others'."""
        with self._cv:
            self._active += 1
            self.stats.sessions_max = max(self.stats.sessions_max, self._active)
        try:
            yield self
        finally:
            with self._cv:
                self._active -= 1
                self._cv.notify_all()

    def prefill_chunk(self, alone: int) -> int:
        """Prefill tokens per pass: ``alone`` when this is the only generating session, fewer otherwise."""
        return alone if self._active <= 1 else _SHARED_PREFILL

    def forward(self, cache: GrowingCache, ids: list[int], keep: int = 1) -> torch.Tensor:
        """Append ``ids`` to ``cache`` and return the logits of the last ``keep`` positions, (keep, vocab)."""
        if self._active <= 1 and not self._pending:
            self._count([1], len(ids))
            return self.rows.forward([(cache, ids, keep)])[0]
        req = _Request(cache, ids, keep)
        with self._cv:
            self._pending.append(req)
            self._ensure_worker()
            self._cv.notify_all()
        req.done.wait()
        if req.error is not None:
            raise req.error
        return req.result

    # ------------------------------------------------------------- the worker
    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._loop, name="workbench-batcher", daemon=True)
            self._worker.start()

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._pending:
                    if not self._cv.wait(timeout=30.0) and not self._pending:
                        self._worker = None  # idle: the next request starts a new worker
                        return
                deadline = time.monotonic() + self.gather_s
                while len(self._pending) < self._active and (left := deadline - time.monotonic()) > 0:
                    self._cv.wait(timeout=left)
                batch, self._pending = self._pending, []
            self._run(batch)

    def _run(self, batch: list[_Request]) -> None:
        try:
            results = self.rows.forward([(r.cache, r.ids, r.keep) for r in batch])
            self._count([len(r.ids) for r in batch], sum(len(r.ids) for r in batch))
            for r, logits in zip(batch, results):
                r.result = logits
        except BaseException as err:  # noqa: BLE001 - handed to the requesting threads, which raise it
            if len(batch) > 1:  # find whose request failed: run them one by one
                for r in batch:
                    self._run([r])
                return
            batch[0].error = err
        for r in batch:
            r.done.set()

    def _count(self, sizes: list[int], rows: int) -> None:
        self.stats.passes += 1
        self.stats.rows += rows
        self.stats.shared += len(sizes) > 1


_LOCK = threading.Lock()


def batcher_for(lm: LoadedModel) -> Batcher | None:
    """The batcher of this model (one per process and loaded model, kept on the model object), or None where
    the row path does not apply."""
    rows = row_forward(lm)
    if rows is None:
        return None
    with _LOCK:
        b = lm.model.__dict__.get("_workbench_batcher")
        if b is None or b.rows is not rows:
            b = Batcher(rows)
            object.__setattr__(lm.model, "_workbench_batcher", b)
        return b


def default_batch(model: Any) -> int:
    """How many runs to decode together by default: 8 where the row path applies (on a 2-core CPU 8 rows
    cost about as much as 3), 1 elsewhere (another architecture, or a scripted test model)."""
    if getattr(model, "model", None) is None or row_forward(model) is None:
        return 1
    return 16 if model.device.type == "cuda" else 8


def parallel_map(fn: Callable[[Any], Any], items: list[Any], workers: int) -> Iterator[Any]:
    """``fn`` over ``items`` in up to ``workers`` threads, yielding results in the items' order (their decoding
    passes meet in the batcher). An exception is raised when its item's turn comes; the rest are cancelled."""
    if workers <= 1 or len(items) <= 1:
        yield from (fn(x) for x in items)
        return
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="workbench-batch")
    try:
        futures = [pool.submit(fn, x) for x in items]
        for f in futures:
            yield f.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
