"""The evaluations half of the run store: evaluation runs and one result row per (task, mode).

An ``eval_runs`` row records what was evaluated (suite, modes, model, settings, how many items) and its
status; ``eval_results`` holds each (task, mode) result as JSON. A result and the traces it produced are
written in one transaction, so a resumed evaluation never finds a result without its runs.

    >>> store.start_eval("ev1", "demo:test", ["react"], "tiny", {}, n_items=100)   # doctest: +SKIP
    >>> store.eval_done("ev1")                       # {(task id, mode), ...} already done  # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from typing import Any

from ..errors import StoreError
from ..types import Trace

__all__ = ["EvalsMixin", "EVALS_MIGRATION"]

EVALS_MIGRATION = """
    CREATE TABLE IF NOT EXISTS eval_runs (
        id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        suite TEXT NOT NULL,
        modes TEXT NOT NULL,
        model TEXT NOT NULL,
        config_json TEXT NOT NULL,
        n_items INTEGER NOT NULL,
        status TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS eval_results (
        run_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        mode TEXT NOT NULL,
        created_at REAL NOT NULL,
        row_json TEXT NOT NULL,
        PRIMARY KEY (run_id, task_id, mode)
    );
    """


class EvalsMixin:
    """Store methods for evaluations; the Store supplies ``_tx``, ``_read``, ``_insert_run`` and ``path``."""

    def start_eval(self, run_id: str, suite: str, modes: list[str], model: str, config: dict[str, Any],
                   n_items: int) -> None:
        """Record an evaluation run (kept as it is if it exists: a resumed run keeps its start)."""
        with self._tx("start an evaluation in") as conn:
            conn.execute("INSERT OR IGNORE INTO eval_runs VALUES (?,?,?,?,?,?,?,?)",
                         (run_id, time.time(), suite, ",".join(modes), model, json.dumps(config), n_items, "running"))
            conn.execute("UPDATE eval_runs SET status='running' WHERE id=? AND status != 'done'", (run_id,))

    def finish_eval(self, run_id: str, status: str = "done") -> None:
        with self._tx("update an evaluation in") as conn:
            conn.execute("UPDATE eval_runs SET status=? WHERE id=?", (status, run_id))

    def save_eval_item(self, run_id: str, row: dict[str, Any], traces: list[Trace]) -> None:
        """One (task, mode) result and its traces, in one transaction: all of it lands or none."""
        with self._tx("save an evaluation result to") as conn:
            for trace in traces:
                self._insert_run(conn, trace, f"eval:{run_id}")
            conn.execute("INSERT OR REPLACE INTO eval_results VALUES (?,?,?,?,?)",
                         (run_id, row["task_id"], row["mode"], time.time(), json.dumps(row, default=str)))

    def eval_done(self, run_id: str) -> set[tuple[str, str]]:
        """The (task id, mode) pairs of an evaluation that already have a result."""
        with self._read() as conn:
            return {(t, m) for t, m in conn.execute("SELECT task_id, mode FROM eval_results WHERE run_id=?", (run_id,))}

    def eval_rows(self, run_id: str) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = conn.execute("SELECT row_json FROM eval_results WHERE run_id=? ORDER BY created_at", (run_id,))
            return [json.loads(r[0]) for r in rows]

    def get_eval(self, run_id: str) -> dict[str, Any]:
        with self._read() as conn:
            row = conn.execute("SELECT id, created_at, suite, modes, model, config_json, n_items, status FROM eval_runs "
                               "WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"No evaluation with id {run_id!r} in {self.path}. List them with `workbench evals`.")
        return {"id": row[0], "created_at": row[1], "suite": row[2], "modes": row[3].split(","), "model": row[4],
                "config": json.loads(row[5]), "n_items": row[6], "status": row[7]}

    def list_evals(self, limit: int = 50) -> list[dict[str, Any]]:
        """Evaluation runs, newest first, with how many of their items are done."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT e.id, e.created_at, e.suite, e.modes, e.model, e.n_items, e.status, "
                "(SELECT COUNT(*) FROM eval_results r WHERE r.run_id = e.id) "
                "FROM eval_runs e ORDER BY e.created_at DESC LIMIT ?", (int(limit),)).fetchall()
        return [{"id": r[0], "when": time.strftime("%Y-%m-%d %H:%M", time.localtime(r[1])), "suite": r[2],
                 "modes": r[3], "model": r[4], "items": r[5], "status": r[6], "done": r[7]} for r in rows]
