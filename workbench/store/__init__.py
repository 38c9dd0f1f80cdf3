"""The run store: one SQLite file with runs, attributions and prompt versions (runs), evaluations (evals),
fine-tune jobs (jobs), users' corpora (corpora) and forks (forks); ``Store`` in runs.py joins them.
"""

from __future__ import annotations

from .runs import SCHEMA_VERSION, RunSummary, Store, default_store_path  # noqa: F401

__all__ = ['Store', 'RunSummary', 'default_store_path', 'SCHEMA_VERSION']
