"""Fine-tuning on ReAct trajectories: config, data (masks, packing), the loop, jobs, continual learning.

    >>> from workbench.finetune import FineTuneConfig, submit, wait      # doctest: +SKIP
    >>> job = submit(FineTuneConfig(steps=100))                          # doctest: +SKIP

Importing this package imports neither torch nor peft; the functions that need them do.
"""

from .config import METHODS, TASKS, FineTuneConfig
from .data import (
    KIND_NAMES,
    Batch,
    TrainExample,
    Trajectory,
    build_example,
    build_examples,
    export_trajectories,
    load_trajectories,
    pack,
    parse_trajectories,
    preview,
    preview_html,
    traces_from_store,
    traces_to_trajectories,
)
from .jobs import (
    cancel,
    job_log,
    job_status,
    jobs_table,
    list_jobs,
    refresh,
    run_job,
    submit,
    wait,
)

__all__ = ["FineTuneConfig", "METHODS", "TASKS", "Trajectory", "TrainExample", "Batch", "KIND_NAMES",
           "load_trajectories", "parse_trajectories", "traces_to_trajectories", "export_trajectories", "build_example",
           "build_examples", "preview", "preview_html", "traces_from_store", "pack", "submit", "cancel", "refresh",
           "wait", "job_log", "list_jobs", "jobs_table", "job_status", "run_job",
           "train", "TrainResult", "TrainingError", "train_verifier", "Verifier"]


def __getattr__(name: str):  # the loop imports torch: load it on first use
    if name in ("train", "TrainResult", "TrainingError"):
        from . import loop as _train

        return getattr(_train, name)
    if name in ("train_verifier", "Verifier"):  # the verifier imports torch and transformers too
        from . import verifier as _verifier

        return getattr(_verifier, name)
    raise AttributeError(name)
