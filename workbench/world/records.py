"""Records the demo world's modules share: an entity, the splits, and where each fact stands in its article.

Kept apart so that the generator (generate.py) and the task builder (tasks.py) both import them and
neither imports the other's module for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Entity", "SPLITS", "Where"]

SPLITS = ("train", "dev", "test")
Where = dict[str, dict[str, tuple[int, str]]]  # title -> attribute -> (sentence index, lookup keyword)


@dataclass
class Entity:
    """One thing the world knows about: its title, kind and the attributes its article states."""

    title: str
    kind: str  # one of world.text.KINDS
    attrs: dict[str, Any] = field(default_factory=dict)  # numbers, titles or lists of titles
