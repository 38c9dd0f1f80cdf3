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

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from ..errors import InputError
from ..types import Task
from .generate import World, generate_world, load_world, select_tasks

__all__ = ["WORLD_NAMES", "FEVER_SUFFIX", "world_by_name", "world_tasks", "parse_world_spec", "world_label",
           "suite_world", "write_named_world", "world_folder"]


@dataclass(frozen=True)
class _Named:
    """One demo world: how it is read by default, how a seed makes it, how menus name it, where it is written."""

    load: Callable[[], World]  # the world that `demo:test` etc. resolve to
    generate: Callable[[int], World]  # the world of a seed, in memory
    label: str  # how a menu names it
    folder: str  # where `workbench world` writes it by default


def _demo2() -> World:
    from .world2 import load_world2

    return load_world2(0)


def _generate2(seed: int) -> World:
    from .world2 import generate_world2

    return generate_world2(seed)


_WORLDS: dict[str, _Named] = {
    "demo": _Named(load_world, generate_world, "Demo world (fictional encyclopedia)", "demo_data"),
    "demo2": _Named(_demo2, _generate2, "Demo world 2 (encyclopedia prose, namesakes, aliases)", "demo2_data"),
}
WORLD_NAMES = tuple(_WORLDS)
FEVER_SUFFIX = "-fever"  # "demo2-fever:SPLIT": FEVER-style claims about the world demo2
_SUITES = {**{n: n for n in _WORLDS}, **{n + FEVER_SUFFIX: n for n in _WORLDS}}  # suite spec prefix -> its world


def _named(name: str) -> _Named:
    if name not in _WORLDS:
        raise InputError(f"Unknown demo world {name!r}. Available: {', '.join(WORLD_NAMES)}.")
    return _WORLDS[name]


def world_by_name(name: str) -> World:
    """The world called ``name`` (demo, demo2)."""
    return _named(name).load()


def world_label(name: str) -> str:
    """How a menu names the world."""
    return _named(name).label


def world_folder(name: str) -> str:
    """Where `workbench world --world NAME` writes the world unless told otherwise (demo_data, demo2_data)."""
    return _named(name).folder


def write_named_world(name: str, seed: int, out: str | Path) -> Path:
    """Generate the world ``name`` for ``seed`` and save it under ``out`` (what `workbench world` runs)."""
    return _named(name).generate(seed).save(out)


def world_tasks(name: str, split: str, types: Iterable[str] | str | None = None) -> list[Task]:
    """The tasks of one split of a named world, optionally only some TASK_TYPES."""
    return select_tasks(lambda: world_by_name(name), split, types)


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
