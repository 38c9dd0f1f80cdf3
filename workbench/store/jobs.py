"""The jobs half of the run store: fine-tune jobs, their states and their metrics.

A job row is written by the app or the CLI (queued), then by the worker process that runs it
(running, done, failed, cancelled). Metrics are appended by the worker as they are measured and
read by the UI's timer, so curves update while training goes on (the trackio pattern: an SQLite
writer and a poller). Cancelling sets a flag the worker reads before every optimisation step.
"""

from __future__ import annotations

import json
import time
from typing import Any

__all__ = ["JobsMixin", "JOB_STATES", "FINAL_STATES", "JOBS_MIGRATION"]

JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
FINAL_STATES = ("done", "failed", "cancelled")
_COLUMNS = ("id", "kind", "name", "created_at", "started_at", "ended_at", "state", "pid", "config_json",
            "output_dir", "error", "cancel_requested", "result_json", "heartbeat")

JOBS_MIGRATION = """
    CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        started_at REAL,
        ended_at REAL,
        state TEXT NOT NULL,
        pid INTEGER,
        config_json TEXT NOT NULL,
        output_dir TEXT NOT NULL,
        error TEXT NOT NULL DEFAULT '',
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        result_json TEXT NOT NULL DEFAULT '{}',
        heartbeat REAL
    );
    CREATE TABLE IF NOT EXISTS job_metrics (
        job_id TEXT NOT NULL,
        step INTEGER NOT NULL,
        name TEXT NOT NULL,
        value REAL NOT NULL,
        t REAL NOT NULL
    );
    CREATE INDEX IF NOT EXISTS job_metrics_job ON job_metrics(job_id, step);
    CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_at DESC)
"""


class JobsMixin:
    """Job and metric methods of Store (it provides _tx and _read)."""

    def create_job(self, job_id: str, kind: str, config: dict[str, Any], output_dir: str, name: str = "") -> None:
        with self._tx("create a job in") as conn:  # type: ignore[attr-defined]
            conn.execute("INSERT INTO jobs (id, kind, name, created_at, state, config_json, output_dir) "
                         "VALUES (?,?,?,?,?,?,?)", (job_id, kind, name, time.time(), "queued", json.dumps(config),
                                                     output_dir))

    def update_job(self, job_id: str, **fields: Any) -> None:
        """Set columns of a job (state, pid, started_at, ended_at, error, result, heartbeat)."""
        if "result" in fields:
            fields["result_json"] = json.dumps(fields.pop("result"), default=str)
        bad = set(fields) - set(_COLUMNS)
        if bad:
            raise ValueError(f"unknown job column(s) {sorted(bad)}")
        if "state" in fields and fields["state"] not in JOB_STATES:
            raise ValueError(f"unknown job state {fields['state']!r}; one of {JOB_STATES}")
        sets = ", ".join(f"{k}=?" for k in fields)
        with self._tx("update a job in") as conn:  # type: ignore[attr-defined]
            conn.execute(f"UPDATE jobs SET {sets} WHERE id=?", (*fields.values(), job_id))

    def finish_job(self, job_id: str, state: str, error: str = "", result: dict[str, Any] | None = None) -> bool:
        """Move a job that has not ended yet to a final state; False if it had already ended."""
        with self._tx("finish a job in") as conn:  # type: ignore[attr-defined]
            cur = conn.execute(
                "UPDATE jobs SET state=?, error=?, ended_at=?, result_json=? WHERE id=? AND state IN ('queued','running')",
                (state, error, time.time(), json.dumps(result or {}, default=str), job_id))
            return cur.rowcount > 0

    def request_cancel(self, job_id: str) -> bool:
        """Ask a job to stop; a queued job is cancelled at once. False if it had already ended."""
        with self._tx("cancel a job in") as conn:  # type: ignore[attr-defined]
            conn.execute("UPDATE jobs SET cancel_requested=1 WHERE id=?", (job_id,))
            conn.execute("UPDATE jobs SET state='cancelled', ended_at=? WHERE id=? AND state='queued'",
                         (time.time(), job_id))
            row = conn.execute("SELECT state FROM jobs WHERE id=?", (job_id,)).fetchone()
        return row is not None and row[0] in ("running", "cancelled")

    def cancel_requested(self, job_id: str) -> bool:
        with self._read() as conn:  # type: ignore[attr-defined]
            row = conn.execute("SELECT cancel_requested FROM jobs WHERE id=?", (job_id,)).fetchone()
        return bool(row and row[0])

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        with self._read() as conn:  # type: ignore[attr-defined]
            row = conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE id=?", (job_id,)).fetchone()
        return _job(row) if row else None

    def list_jobs(self, limit: int = 50, kind: str | None = None) -> list[dict[str, Any]]:
        sql = f"SELECT {', '.join(_COLUMNS)} FROM jobs"
        args: tuple = ()
        if kind:
            sql, args = sql + " WHERE kind=?", (kind,)
        with self._read() as conn:  # type: ignore[attr-defined]
            rows = conn.execute(sql + " ORDER BY created_at DESC LIMIT ?", (*args, int(limit))).fetchall()
        return [_job(r) for r in rows]

    def log_metrics(self, job_id: str, step: int, metrics: dict[str, float]) -> None:
        """Append metric points (one transaction) and refresh the job's heartbeat."""
        now = time.time()
        rows = [(job_id, int(step), k, float(v), now) for k, v in metrics.items() if v is not None]
        with self._tx("log metrics to") as conn:  # type: ignore[attr-defined]
            conn.executemany("INSERT INTO job_metrics VALUES (?,?,?,?,?)", rows)
            conn.execute("UPDATE jobs SET heartbeat=? WHERE id=?", (now, job_id))

    def job_metrics(self, job_id: str, since_step: int = -1) -> list[dict[str, Any]]:
        """Metric points of a job, oldest first: dicts with step, name, value, t."""
        with self._read() as conn:  # type: ignore[attr-defined]
            rows = conn.execute("SELECT step, name, value, t FROM job_metrics WHERE job_id=? AND step>? "
                                "ORDER BY step, t", (job_id, since_step)).fetchall()
        return [{"step": r[0], "name": r[1], "value": r[2], "t": r[3]} for r in rows]

    def delete_job(self, job_id: str) -> bool:
        with self._tx("delete a job from") as conn:  # type: ignore[attr-defined]
            conn.execute("DELETE FROM job_metrics WHERE job_id=?", (job_id,))
            return conn.execute("DELETE FROM jobs WHERE id=?", (job_id,)).rowcount > 0


def _job(row: tuple) -> dict[str, Any]:
    job = dict(zip(_COLUMNS, row))
    job["config"] = json.loads(job.pop("config_json") or "{}")
    job["result"] = json.loads(job.pop("result_json") or "{}")
    job["cancel_requested"] = bool(job["cancel_requested"])
    return job
