"""The demo worlds by name, so that ``demo:test`` and ``demo2:train`` resolve the same way everywhere.

``demo`` is world version 1 (``demo_data/``, what the shipped adapter was trained on); ``demo2`` is
the richer world of version 2 (prose articles, namesakes, aliases, yes/no comparisons), generated in
memory from the code. Suites (``datasets.load_suite``), training data (``finetune``), the verifier's
pairs and the knowledge sources all read world names through this table. A built-in suite answers from
its world's corpus (``suite_world``), and a world's knowledge source key is its name.

    >>> parse_world_spec("demo2:train:bridge,numeric")
    ('demo2', 'train', ['bridge', 'numeric'])
    >>> suite_world("demo2-fever:dev"), suite_world("hotpotqa:dev.json")
    ('demo2', None)
    >>> parse_world_spec("hotpotqa:dev.json") is None
    True
"""

from __future__ import annotations

from typing import Callable, Iterable

from ..errors import InputError
from ..types import TASK_TYPES, Task
from .generate import World, load_world
from .records import SPLITS

__all__ = ["WORLD_NAMES", "FEVER_SUFFIX", "world_by_name", "world_tasks", "parse_world_spec", "world_label",
           "suite_world"]


def _demo2() -> World:
    from .world2 import load_world2

    return load_world2(0)


_WORLDS: dict[str, tuple[Callable[[], World], str]] = {
    "demo": (load_world, "Demo world (fictional encyclopedia)"),
    "demo2": (_demo2, "Demo world 2 (encyclopedia prose, namesakes, aliases)"),
}
WORLD_NAMES = tuple(_WORLDS)
FEVER_SUFFIX = "-fever"  # "demo2-fever:SPLIT": FEVER-style claims about the world demo2
_SUITES = {**{n: n for n in _WORLDS}, **{n + FEVER_SUFFIX: n for n in _WORLDS}}  # suite spec prefix -> its world


def world_by_name(name: str) -> World:
    """The world called ``name`` (demo, demo2)."""
    if name not in _WORLDS:
        raise InputError(f"Unknown demo world {name!r}. Available: {', '.join(WORLD_NAMES)}.")
    return _WORLDS[name][0]()


def world_label(name: str) -> str:
    """How a menu names the world."""
    return _WORLDS[name][1]


def world_tasks(name: str, split: str, types: Iterable[str] | str | None = None) -> list[Task]:
    """The tasks of one split of a named world, optionally only some TASK_TYPES."""
    if split not in SPLITS:
        raise InputError(f"Unknown split {split!r}. Available: {', '.join(SPLITS)}.")
    wanted = (types,) if isinstance(types, str) else tuple(types) if types is not None else TASK_TYPES
    unknown = [t for t in wanted if t not in TASK_TYPES]
    if unknown:
        raise InputError(f"Unknown task type(s) {unknown}. Available: {', '.join(TASK_TYPES)}.")
    return [t for t in world_by_name(name).tasks[split] if t.type in wanted]


def parse_world_spec(spec: str) -> tuple[str, str, list[str] | None] | None:
    """``NAME:SPLIT[:TYPE,TYPE]`` of a demo world -> (name, split, types or None); None when it names no world."""
    name, sep, rest = spec.strip().partition(":")
    if name not in _WORLDS or not sep:
        return None
    split, _, types = rest.partition(":")
    wanted = [t.strip() for t in types.split(",") if t.strip()] or None
    return name, split.strip(), wanted


def suite_world(spec: str) -> str | None:
    """The world whose tasks and corpus a built-in suite uses ("demo2:dev", "demo2-fever:test" -> "demo2");
    None for a file suite (its tasks bring their own paragraphs, or none)."""
    return _SUITES.get(str(spec).strip().partition(":")[0])
