"""Dynamic few-shot: pick the k examples nearest to the instruction from a pool.

A pool is a list of few-shot examples (structured trajectories); by default the demo world's
train split, turned into examples for the chosen mode. Nearness is the cosine similarity of the
questions' all-MiniLM-L6-v2 embeddings (computed once per pool and cached on disk).

    >>> pool = ExamplePool.from_tasks(load_tasks("train"), mode="react")   # doctest: +SKIP
    >>> [e.question for e in pool.nearest("When was Skelnandun founded?", k=2)]   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any, Iterable

from .errors import InputError
from .prompts import Example, ExampleStep
from .types import Task

__all__ = ["ExamplePool", "examples_from_tasks", "default_pool"]


def examples_from_tasks(tasks: Iterable[Task], mode: str = "react") -> list[Example]:
    """Gold trajectories as few-shot examples in the shape ``mode``'s prompts render."""
    out = []
    for task in tasks:
        if not task.trajectory:
            continue
        if mode in ("react", "act"):
            steps = [ExampleStep(thought=g.thought if mode == "react" else "", action=g.call,
                                 observation=g.observation or "") for g in task.trajectory]
            out.append(Example(task.question, steps))
        elif mode == "cot":
            thought = " ".join(g.thought for g in task.trajectory if g.action in ("finish", "calculate"))
            out.append(Example(task.question, [ExampleStep(thought=thought)], answer=task.answer))
        else:
            out.append(Example(task.question, [], answer=task.answer))
    return out


class ExamplePool:
    """Examples to choose from, with their question embeddings."""

    _lock = threading.Lock()

    def __init__(self, examples: list[Example], name: str = "pool") -> None:
        if not examples:
            raise InputError("An example pool needs at least one example.")
        self.examples = list(examples)
        self.name = name
        self._vectors = None  # (n, 384) float tensor

    def __len__(self) -> int:
        return len(self.examples)

    @classmethod
    def from_tasks(cls, tasks: Iterable[Task], mode: str = "react", name: str = "tasks") -> "ExamplePool":
        return cls(examples_from_tasks(tasks, mode), name=name)

    @property
    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for e in self.examples:
            h.update(e.question.encode() + b"\0")
        return h.hexdigest()[:16]

    def _embeddings(self) -> Any:
        import torch

        from .corpus import MiniLMEncoder
        from .models import cache_dir

        with self._lock:
            if self._vectors is None:
                path = Path(cache_dir()) / "fewshot" / f"{self.fingerprint}.pt"
                if path.is_file():
                    self._vectors = torch.load(path, weights_only=True)  # tensors only: never unpickle code
                else:
                    self._vectors = MiniLMEncoder.shared().encode([e.question for e in self.examples])
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_suffix(".tmp")
                    torch.save(self._vectors, tmp)
                    tmp.replace(path)
        return self._vectors

    def nearest(self, question: str, k: int) -> list[Example]:
        """The ``k`` examples whose questions are most similar to ``question``, most similar first."""
        if k < 1:
            raise InputError(f"k must be at least 1 to pick examples, got {k}.")
        from .corpus import MiniLMEncoder

        vectors = self._embeddings()
        query = MiniLMEncoder.shared().encode([question])[0]  # (384,)
        sims = (vectors @ query).tolist()
        order = sorted(range(len(sims)), key=lambda i: (-sims[i], i))
        chosen = [i for i in order if self.examples[i].question.strip() != question.strip()][:k]
        return [self.examples[i] for i in chosen]


_DEFAULT: dict[str, ExamplePool] = {}


def default_pool(mode: str = "react") -> ExamplePool:
    """The demo world's train split as a pool for ``mode`` (built once per process)."""
    if mode not in _DEFAULT:
        from .world.generate import load_tasks

        _DEFAULT[mode] = ExamplePool.from_tasks(load_tasks("train"), mode=mode, name=f"demo:train:{mode}")
    return _DEFAULT[mode]
