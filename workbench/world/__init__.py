"""The seeded demo world: entities and their articles (generate), the name maker (names), the text
templates (text), task suites with gold trajectories (tasks) and FEVER-style claims (fever); the richer
world ``demo2`` (world2, its prose, phrasing and tasks2); what both worlds' tasks share (gold); both by
name (registry).
"""

from __future__ import annotations

from .fever import fever_claims
from .generate import (
                       DEMO_DATA_DIR,
                       GENERATOR_VERSION,
                       World,
                       example_questions,
                       generate_world,
                       load_tasks,
                       load_world,
                       write_world,
)
from .records import SPLITS, Entity, Where
from .registry import WORLD_NAMES, parse_world_spec, suite_world, world_by_name, world_tasks
from .tasks import HELD_OUT, TRAIN_MAX, build_suites
from .world2 import generate_world2, load_world2, write_world2

__all__ = ["Entity", "World", "generate_world", "write_world", "load_world", "load_tasks", "example_questions", "SPLITS",
           "GENERATOR_VERSION", "DEMO_DATA_DIR", "build_suites", "HELD_OUT", "TRAIN_MAX", "Where", "fever_claims",
           "generate_world2", "load_world2", "write_world2", "WORLD_NAMES", "world_by_name", "world_tasks",
           "parse_world_spec", "suite_world"]
