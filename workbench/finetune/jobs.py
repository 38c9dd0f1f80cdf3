"""Fine-tune jobs: each runs in its own process, never in the web server's; the store holds its state.

    queued -> running -> done | failed | cancelled

``submit(config)`` records a queued job and starts ``python -m workbench.finetune.worker JOB`` (or
``accelerate launch`` with several processes). The worker moves the job to running, streams its
metrics into the store, checks the cancel flag before every optimisation step, and records how it
ended. If the worker dies without saying so (SIGKILL, out of memory), ``refresh`` notices that its
process is gone and marks the job failed; its last checkpoint stays loadable and a new job with
the same output folder resumes from it.

    >>> job = submit(FineTuneConfig(base_model="tiny", steps=2))       # doctest: +SKIP
    >>> wait(job).state                                                # doctest: +SKIP
    'done'
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from ..errors import InputError
from .config import FineTuneConfig

__all__ = ["submit", "record_job", "cancel", "refresh", "wait", "job_log", "run_job", "list_jobs", "worker_command",
           "jobs_table", "job_status", "JOB_COLUMNS"]

JOB_COLUMNS = ["id", "state", "task", "name", "started", "steps", "final loss", "probe success", "adapter", "error"]

_children: dict[str, subprocess.Popen] = {}  # job id -> worker started by this process (reaped by refresh)
_lock = threading.Lock()


def _store(store: Any = None):
    from ..store.runs import Store

    return store if store is not None else Store()


def worker_command(job_id: str, store_path: str, processes: int = 1) -> list[str]:
    """The command line that runs a job: the worker module, under accelerate launch for several processes."""
    worker = ["-m", "workbench.finetune.worker", job_id, "--store", store_path]
    if processes <= 1:
        return [sys.executable, *worker]
    import torch

    gpu = ["--multi_gpu"] if torch.cuda.device_count() >= processes or not torch.cuda.is_available() else []
    return [sys.executable, "-m", "accelerate.commands.launch", *gpu, "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", *worker]


def record_job(config: FineTuneConfig, store: Any, name: str = "") -> tuple[str, Path]:
    """Write a queued job row for ``config`` and make its output folder; returns (job id, folder)."""
    from .loop import default_output_dir

    job_id = time.strftime("ft-%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    out = Path(config.output_dir or default_output_dir(job_id))
    out.mkdir(parents=True, exist_ok=True)
    store.create_job(job_id, config.task, dict(config.to_dict(), output_dir=str(out)), str(out),
                     name=name or f"{config.task} on {config.data}")
    return job_id, out


def submit(config: FineTuneConfig, store: Any = None, name: str = "", processes: int = 1) -> str:
    """Queue ``config`` as a job and start its worker process; returns the job id at once."""
    config.validate()
    if not 1 <= processes <= 64:
        raise InputError(f"processes must be from 1 to 64, got {processes}.")
    store = _store(store)
    if getattr(store, "_memory", False):
        raise InputError("Fine-tune jobs run in another process, which cannot see an in-memory store; "
                         "pass a Store with a file path.")
    job_id, out = record_job(config, store, name)
    log = open(out / "log.txt", "ab")
    env = dict(os.environ, PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
    try:
        proc = subprocess.Popen(worker_command(job_id, str(store.path), processes), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True, cwd=str(out))
    except OSError as err:
        store.finish_job(job_id, "failed", error=f"Could not start the worker process: {err}")
        raise
    finally:
        log.close()
    with _lock:
        _children[job_id] = proc
    store.update_job(job_id, pid=proc.pid)
    return job_id


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is dead, whoever its parent is
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


def refresh(job_id: str, store: Any = None) -> dict[str, Any]:
    """The job's row, after marking it failed if its worker died without recording an end."""
    store = _store(store)
    job = store.get_job(job_id)
    if job is None:
        raise InputError(f"No fine-tune job {job_id!r}. List them with `workbench finetune --list`.")
    with _lock:
        proc = _children.get(job_id)
    code = proc.poll() if proc is not None else None
    if job["state"] in ("queued", "running"):
        dead = (proc is not None and code is not None) or (proc is None and job["pid"] and not _alive(job["pid"]))
        if dead:
            how = (f"killed by signal {-code}" if code is not None and code < 0 else
                   f"exited with code {code}" if code is not None else "no longer running")
            store.finish_job(job_id, "failed", error=f"The worker process {how} before the job ended. The last "
                             f"checkpoint in {job['output_dir']} is kept; submit the same config with that output_dir "
                             "to resume from it. See its log for the cause.")
            job = store.get_job(job_id)
    if code is not None:
        with _lock:
            _children.pop(job_id, None)
    return job


def list_jobs(store: Any = None, limit: int = 50) -> list[dict[str, Any]]:
    """Jobs newest first, each refreshed (a dead worker's job shows as failed)."""
    store = _store(store)
    return [refresh(j["id"], store) for j in store.list_jobs(limit)]


def jobs_table(store: Any = None, limit: int = 50) -> Any:
    """The jobs, newest first, one row each (JOB_COLUMNS): state, when, steps, final loss, probe success, result."""
    import pandas as pd

    rows = []
    for job in list_jobs(store, limit=limit):
        res = job.get("result") or {}
        final = res.get("final", {}) if isinstance(res, dict) else {}
        rows.append([job["id"], job["state"], job["kind"], job["name"],
                     time.strftime("%m-%d %H:%M", time.localtime(job["created_at"])), res.get("steps", ""),
                     _fmt(final.get("train_loss")), _fmt(final.get("probe_success")), res.get("adapter_dir", ""),
                     (job["error"] or "")[:120]])
    return pd.DataFrame(rows, columns=JOB_COLUMNS)


def _fmt(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, (int, float)) else ""


def job_status(job: dict[str, Any], points: list[dict[str, Any]] | None = None) -> str:
    """A job's status as Markdown: state, id, step / total steps (from its metric ``points``), how it stopped,
    and its result folder.

    >>> job_status(refresh(job_id, store), store.job_metrics(job_id))     # doctest: +SKIP
    '**running** · job `ft-...` · step 40 / 100'
    """
    import html

    steps = max((p["step"] for p in points or []), default=0)
    total = job["config"].get("steps", 0) * (2 if job["config"].get("continual_data") else 1)
    status = f"**{job['state']}** · job `{job['id']}` · step {steps} / {total}"
    if job["error"]:  # escaped: the Markdown is rendered as HTML
        status += f"\n\n{'Stopped' if job['state'] == 'cancelled' else 'Error'}: {html.escape(job['error'])}"
    res = job.get("result") or {}
    if job["state"] == "done" and res.get("adapter_dir"):
        status += f"\n\nResult: `{res['adapter_dir']}`"
    return status


def cancel(job_id: str, store: Any = None) -> bool:
    """Ask a job to stop; it ends as cancelled within one optimisation step. False if it had ended."""
    return _store(store).request_cancel(job_id)


def wait(job_id: str, store: Any = None, timeout: float = 3600, poll: float = 0.5) -> dict[str, Any]:
    """Block until the job ends (or ``timeout`` seconds pass); returns its row."""
    store = _store(store)
    deadline = time.monotonic() + timeout
    while True:
        job = refresh(job_id, store)
        if job["state"] in ("done", "failed", "cancelled") or time.monotonic() > deadline:
            return job
        time.sleep(poll)


def job_log(job_id: str, store: Any = None, lines: int = 40) -> str:
    """The last ``lines`` lines of the job's log (its worker's output)."""
    job = _store(store).get_job(job_id)
    if job is None:
        return ""
    path = Path(job["output_dir"]) / "log.txt"
    if not path.is_file():
        return ""
    with open(path, "rb") as fh:
        fh.seek(max(0, path.stat().st_size - 64_000))
        text = fh.read().decode("utf-8", "replace").replace("\r", "\n")
    return "\n".join([ln for ln in text.splitlines() if ln.strip()][-lines:])


def run_job(job_id: str, store: Any = None) -> dict[str, Any]:
    """Run a recorded job in this process (what the worker does): train, stream metrics, record the end."""
    from ..errors import WorkbenchError
    from .loop import Cancelled

    store = _store(store)
    job = store.get_job(job_id)
    if job is None:
        raise InputError(f"No job {job_id!r} in {store.path}.")
    rank = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0)
    main = rank == 0
    if job["state"] == "cancelled":
        return job
    if main:
        store.update_job(job_id, state="running", started_at=time.time(), pid=os.getpid() if "RANK" not in os.environ
                         else job["pid"])
    try:
        cfg = FineTuneConfig.from_dict(job["config"])
        log = lambda text: print(text, flush=True)  # noqa: E731 — the worker's stdout is the job log
        on_metric = (lambda step, metrics: store.log_metrics(job_id, step, metrics)) if main else None
        stop = lambda: store.cancel_requested(job_id)  # noqa: E731
        if cfg.task == "verifier":
            from .verifier import train_verifier

            result = train_verifier(cfg, on_metric=on_metric, should_stop=stop, log=log)
        elif cfg.continual_data:
            from .continual import continual

            result = continual(cfg, on_metric=on_metric, should_stop=stop, log=log)
        else:
            from .loop import train

            result = train(cfg, on_metric=on_metric, should_stop=stop, log=log, progress=True)
        if main:
            store.finish_job(job_id, "done", result=result if isinstance(result, dict) else vars(result))
    except Cancelled as err:
        if main:
            store.finish_job(job_id, "cancelled", error=str(err))
    except WorkbenchError as err:
        if main:
            store.finish_job(job_id, "failed", error=str(err))
        print(f"failed: {err}", flush=True)
    except Exception as err:  # the job fails, with its cause; the process exits normally
        msg = f"{type(err).__name__}: {err}"
        if "out of memory" in str(err).lower():
            msg = f"Out of memory on the device ({msg}). Lower batch_tokens or max_length, or use LoRA."
        if main:
            store.finish_job(job_id, "failed", error=msg)
        import traceback

        traceback.print_exc()
    return store.get_job(job_id)
