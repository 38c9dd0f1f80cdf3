"""The seeded demo world: entities and their articles (generate), the name maker (names), the text
templates (text), task suites with gold trajectories (tasks) and FEVER-style claims (fever).
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
from .tasks import HELD_OUT, TRAIN_MAX, build_suites

__all__ = ["Entity", "World", "generate_world", "write_world", "load_world", "load_tasks", "example_questions", "SPLITS",
           "GENERATOR_VERSION", "DEMO_DATA_DIR", "build_suites", "HELD_OUT", "TRAIN_MAX", "Where", "fever_claims"]
