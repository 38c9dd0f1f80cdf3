"""The run store: one SQLite file with runs and evaluations (runs), fine-tune jobs (jobs) and users' corpora (corpora).
"""

from __future__ import annotations

from .runs import SCHEMA_VERSION, RunSummary, Store, default_store_path  # noqa: F401

__all__ = ['Store', 'RunSummary', 'default_store_path', 'SCHEMA_VERSION']
