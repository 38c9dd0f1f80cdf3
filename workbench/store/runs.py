"""The embedded run store: SQLite (WAL) in the user data folder, one row per run, the trace as JSON.

Safe for the app's many threads and for several processes: every call opens its own connection,
writes happen in one transaction each, and WAL lets readers go on while a writer writes.

    >>> store = Store(":memory:")              # doctest: +SKIP
    >>> store.save_trace(trace); store.get_trace(trace.id).task   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..errors import StoreError
from ..types import Trace
from .corpora import CORPORA_MIGRATION, CorporaMixin
from .evals import EVALS_MIGRATION, EvalsMixin
from .forks import FORKS_MIGRATION, ForksMixin, save_fork_row
from .jobs import JOBS_MIGRATION, JobsMixin

__all__ = ["Store", "RunSummary", "default_store_path", "SCHEMA_VERSION"]

SCHEMA_VERSION = 7
_MIGRATIONS: list[str] = [
    # 1: runs
    """
    CREATE TABLE IF NOT EXISTS runs (
        id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        task TEXT NOT NULL,
        mode TEXT NOT NULL,
        model TEXT NOT NULL,
        prompt_name TEXT NOT NULL,
        prompt_hash TEXT NOT NULL,
        answer TEXT,
        gold TEXT,
        stop_reason TEXT NOT NULL,
        n_steps INTEGER NOT NULL,
        n_errors INTEGER NOT NULL,
        generated_tokens INTEGER NOT NULL,
        wall_time REAL NOT NULL,
        tags TEXT NOT NULL DEFAULT '',
        trace_json TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS runs_created ON runs(created_at DESC);
    """,
    # 2: evaluation runs and one result row per (task, mode) (see evals.py)
    EVALS_MIGRATION,
    # 3: attribution results, cached by what they were computed from
    """
    CREATE TABLE IF NOT EXISTS attributions (
        key TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        step INTEGER NOT NULL,
        target TEXT NOT NULL,
        method TEXT NOT NULL,
        model TEXT NOT NULL,
        created_at REAL NOT NULL,
        result_json TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS attributions_run ON attributions(run_id, step);
    """,
    # 4: named prompt versions
    """
    CREATE TABLE IF NOT EXISTS prompt_versions (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        hash TEXT NOT NULL,
        parent TEXT,
        note TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        yaml TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS prompt_versions_name ON prompt_versions(name, created_at DESC);
    """,
    # 5: fine-tune jobs and their metric points (see store_jobs.py)
    JOBS_MIGRATION,
    # 6: users' knowledge corpora and their documents (see store_corpora.py)
    CORPORA_MIGRATION,
    # 7: forks: which run was forked from which, at which step, with what change (see forks.py)
    FORKS_MIGRATION,
]


def default_store_path() -> Path:
    """$WORKBENCH_STORE, else runs.db in $WORKBENCH_HOME, else in the user data folder."""
    if os.environ.get("WORKBENCH_STORE"):
        return Path(os.environ["WORKBENCH_STORE"]).expanduser()
    if os.environ.get("WORKBENCH_HOME"):
        return Path(os.environ["WORKBENCH_HOME"]).expanduser() / "runs.db"
    from platformdirs import user_data_dir

    return Path(user_data_dir("react-workbench")) / "runs.db"


@dataclass
class RunSummary:
    """A row of the run history (the trace itself stays in the store until asked for)."""

    id: str
    created_at: float
    task: str
    mode: str
    model: str
    prompt_name: str
    answer: str | None
    gold: str | None
    stop_reason: str
    n_steps: int
    n_errors: int
    generated_tokens: int
    wall_time: float
    tags: str

    @property
    def when(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.created_at))


class Store(EvalsMixin, JobsMixin, CorporaMixin, ForksMixin):
    """Runs, evaluations, attributions, prompt versions, jobs, corpora and forks in one SQLite file."""

    def __init__(self, path: str | Path | None = None) -> None:
        self._memory = str(path) == ":memory:"
        self.path = Path(path) if path is not None else default_store_path()
        self._lock = threading.Lock()
        self._shared: sqlite3.Connection | None = None  # only for :memory:
        if not self._memory:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise StoreError(f"Cannot create the folder for the run store at {self.path.parent}: {err}. "
                                 "Pass another path with --store PATH or set WORKBENCH_STORE.") from err
        self._migrate()

    def __repr__(self) -> str:
        return f"Store({':memory:' if self._memory else str(self.path)!r})"

    # ------------------------------------------------------------------ connections
    def _connect(self) -> sqlite3.Connection:
        if self._memory:
            if self._shared is None:
                self._shared = sqlite3.connect(":memory:", check_same_thread=False)
            return self._shared
        try:
            conn = sqlite3.connect(self.path, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            return conn
        except sqlite3.DatabaseError as err:
            raise self._error("open", err) from err

    def _error(self, what: str, err: Exception) -> StoreError:
        text = str(err).lower()
        if "not a database" in text or "malformed" in text or "file is encrypted" in text:
            return StoreError(f"The run store {self.path} is not a valid SQLite database ({err}). Move the file aside "
                              "(it is kept untouched) or pass another path with --store PATH.")
        if "readonly" in text or "unable to open" in text or "permission" in text:
            return StoreError(f"The run store {self.path} cannot be written ({err}). Check its permissions or pass a "
                              "writable path with --store PATH / WORKBENCH_STORE.")
        return StoreError(f"Could not {what} the run store {self.path}: {err}")

    @contextmanager
    def _tx(self, what: str = "write") -> Iterator[sqlite3.Connection]:
        """One transaction: committed on success, rolled back on any error."""
        with self._lock if self._memory else _nullcontext():
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as err:
                conn.rollback()
                raise self._error(what, err) from err
            except BaseException:
                conn.rollback()
                raise
            finally:
                if not self._memory:
                    conn.close()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock if self._memory else _nullcontext():
            conn = self._connect()
            try:
                yield conn
            except sqlite3.Error as err:
                raise self._error("read", err) from err
            finally:
                if not self._memory:
                    conn.close()

    def _migrate(self) -> None:
        with self._tx("initialise") as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > len(_MIGRATIONS):
                raise StoreError(f"The run store {self.path} was written by a newer workbench (schema {version}); "
                                 "upgrade the workbench or pass another --store PATH.")
            for script in _MIGRATIONS[version:]:
                for statement in script.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(len(_MIGRATIONS)),))

    # ------------------------------------------------------------------ runs
    def save_trace(self, trace: Trace, tags: str = "") -> str:
        """Insert or replace a run; returns its id."""
        with self._tx("save a run to") as conn:
            self._insert_run(conn, trace, tags)
        return trace.id

    @staticmethod
    def _insert_run(conn: sqlite3.Connection, trace: Trace, tags: str) -> None:
        """Write one run row (and its forks row) inside the caller's transaction."""
        conn.execute("INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                     (trace.id, trace.created_at, trace.task, trace.mode, trace.model, trace.prompt_name,
                      trace.prompt_hash, trace.answer, trace.gold, trace.stop_reason or "", len(trace.steps),
                      trace.n_errors, trace.generated_tokens, trace.wall_time, tags, trace.to_json()))
        save_fork_row(conn, trace)

    def get_trace(self, run_id: str) -> Trace:
        with self._read() as conn:
            row = conn.execute("SELECT trace_json FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"No run with id {run_id!r} in {self.path}. List runs with `workbench runs`.")
        try:
            return Trace.from_json(row[0])
        except (json.JSONDecodeError, TypeError, ValueError) as err:
            raise StoreError(f"Run {run_id!r} in {self.path} is damaged and cannot be read: {err}.") from err

    def list_runs(self, limit: int = 100, offset: int = 0, search: str = "", mode: str | None = None) -> list[RunSummary]:
        """Newest first; ``search`` filters on the task text."""
        sql = ("SELECT id, created_at, task, mode, model, prompt_name, answer, gold, stop_reason, n_steps, n_errors, "
               "generated_tokens, wall_time, tags FROM runs WHERE task LIKE ?")
        args: list[Any] = [f"%{search}%"]
        if mode:
            sql += " AND mode = ?"
            args.append(mode)
        sql += " ORDER BY created_at DESC LIMIT ? OFFSET ?"
        args += [int(limit), int(offset)]
        with self._read() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [RunSummary(*r) for r in rows]

    def count_runs(self) -> int:
        with self._read() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def delete_run(self, run_id: str) -> bool:
        with self._tx("delete a run from") as conn:
            return conn.execute("DELETE FROM runs WHERE id=?", (run_id,)).rowcount > 0

    def runs_dataframe(self, limit: int = 100, search: str = ""):
        """The run history as a pandas DataFrame (newest first)."""
        import pandas as pd

        rows = [
            {"id": r.id, "when": r.when, "task": r.task, "mode": r.mode, "model": r.model, "answer": r.answer or "",
             "stop": r.stop_reason, "steps": r.n_steps, "errors": r.n_errors, "tokens": r.generated_tokens,
             "seconds": round(r.wall_time, 2)}
            for r in self.list_runs(limit=limit, search=search)
        ]
        return pd.DataFrame(rows, columns=["id", "when", "task", "mode", "model", "answer", "stop", "steps", "errors",
                                           "tokens", "seconds"])

    # ------------------------------------------------------------------ attributions
    def save_attribution(self, key: str, result: Any) -> None:
        """Cache an AttributionResult under ``key`` (see workbench.attribution.cache_key)."""
        with self._tx("save an attribution to") as conn:
            conn.execute("INSERT OR REPLACE INTO attributions VALUES (?,?,?,?,?,?,?,?)",
                         (key, result.trace_id, result.step, result.target, result.method, result.model, time.time(),
                          result.to_json()))

    def get_attribution(self, key: str) -> dict[str, Any] | None:
        """The cached result's dict, or None."""
        with self._read() as conn:
            row = conn.execute("SELECT result_json FROM attributions WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def list_attributions(self, run_id: str) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = conn.execute("SELECT key, step, target, method, model, created_at FROM attributions WHERE run_id=? "
                                "ORDER BY step, created_at", (run_id,)).fetchall()
        return [{"key": r[0], "step": r[1], "target": r[2], "method": r[3], "model": r[4], "created_at": r[5]}
                for r in rows]

    # ------------------------------------------------------------------ prompt versions
    def save_prompt_version(self, row: dict[str, Any]) -> None:
        with self._tx("save a prompt version to") as conn:
            conn.execute("INSERT OR REPLACE INTO prompt_versions VALUES (?,?,?,?,?,?,?)",
                         (row["id"], row["name"], row["hash"], row.get("parent"), row.get("note", ""),
                          row["created_at"], row["yaml"]))

    def prompt_versions(self, name: str | None = None) -> list[dict[str, Any]]:
        """Versions, newest first (of one name, or all)."""
        sql = "SELECT id, name, hash, parent, note, created_at, yaml FROM prompt_versions"
        args: tuple = ()
        if name is not None:
            sql, args = sql + " WHERE name=?", (name,)
        with self._read() as conn:
            rows = conn.execute(sql + " ORDER BY created_at DESC", args).fetchall()
        return [dict(zip(("id", "name", "hash", "parent", "note", "created_at", "yaml"), r)) for r in rows]

    def prompt_version(self, version_id: str) -> dict[str, Any] | None:
        with self._read() as conn:
            r = conn.execute("SELECT id, name, hash, parent, note, created_at, yaml FROM prompt_versions WHERE id=?",
                             (version_id,)).fetchone()
        return dict(zip(("id", "name", "hash", "parent", "note", "created_at", "yaml"), r)) if r else None

    def rename_prompt(self, old: str, new: str) -> int:
        with self._tx("rename a prompt in") as conn:
            return conn.execute("UPDATE prompt_versions SET name=? WHERE name=?", (new, old)).rowcount

    def delete_prompt_version(self, version_id: str) -> bool:
        with self._tx("delete a prompt version from") as conn:
            return conn.execute("DELETE FROM prompt_versions WHERE id=?", (version_id,)).rowcount > 0

    def integrity_check(self) -> str:
        with self._read() as conn:
            return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


@contextmanager
def _nullcontext() -> Iterator[None]:
    yield
