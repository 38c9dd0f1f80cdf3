"""The forks half of the run store: which run was forked from which, at which step, with what change.

One ``forks`` row per fork (its run id, its parent's, the step and the edit as JSON), written in the same
transaction as the fork's run. History lists each fork right under its parent.

    >>> store.save_trace(child)              # a trace with meta["fork"] gets its forks row  # doctest: +SKIP
    >>> store.forks_of(parent.id)            # [{"run_id": ..., "step": 2, "edit": {...}}]     # doctest: +SKIP
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from ..types import Trace

__all__ = ["ForksMixin", "FORKS_MIGRATION", "nest_forks"]

FORKS_MIGRATION = """
    CREATE TABLE IF NOT EXISTS forks (
        run_id TEXT PRIMARY KEY,
        parent_id TEXT NOT NULL,
        step INTEGER NOT NULL,
        edit_json TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS forks_parent ON forks(parent_id);
"""


def save_fork_row(conn: sqlite3.Connection, trace: Trace) -> None:
    """Inside a save's transaction: the forks row of ``trace`` when it is a fork."""
    info = trace.meta.get("fork") if isinstance(trace.meta, dict) else None
    if isinstance(info, dict) and info.get("parent"):
        edit = {k: v for k, v in info.items() if k not in ("parent", "step")}
        conn.execute("INSERT OR REPLACE INTO forks VALUES (?,?,?,?)",
                     (trace.id, str(info["parent"]), int(info.get("step", 1)), json.dumps(edit, ensure_ascii=False)))


class ForksMixin:
    """Fork methods of Store (it provides _tx and _read)."""

    def forks_of(self, run_id: str) -> list[dict[str, Any]]:
        """The forks of a run, in the order they were made: run id, step and the edit."""
        with self._read() as conn:  # type: ignore[attr-defined]
            rows = conn.execute("SELECT f.run_id, f.step, f.edit_json FROM forks f LEFT JOIN runs r ON r.id = f.run_id "
                                "WHERE f.parent_id=? ORDER BY r.created_at", (run_id,)).fetchall()
        return [{"run_id": r[0], "step": r[1], **json.loads(r[2])} for r in rows]

    def fork_links(self) -> dict[str, dict[str, Any]]:
        """Every fork's run id -> its parent id, step and edit."""
        with self._read() as conn:  # type: ignore[attr-defined]
            rows = conn.execute("SELECT run_id, parent_id, step, edit_json FROM forks").fetchall()
        return {r[0]: {"parent": r[1], "step": r[2], **json.loads(r[3])} for r in rows}

    def runs_tree_dataframe(self, limit: int = 100, search: str = "") -> Any:
        """The run history (newest first) with each fork listed right under its parent, marked ``↳ fork``."""
        return nest_forks(self.runs_dataframe(limit=limit, search=search), self.fork_links())  # type: ignore[attr-defined]


def nest_forks(table: Any, links: dict[str, dict[str, Any]]) -> Any:
    """Reorder a runs table so forks follow their parent (recursively), and add a ``fork`` column that says
    where and what: ``↳ step 2: observation``. Forks whose parent is not in the table stay where they are."""
    import pandas as pd

    if table is None or not len(table):
        return table
    rows = table.to_dict("records")
    present = {r["id"] for r in rows}
    children: dict[str, list[dict]] = {}
    top = []
    for r in rows:
        link = links.get(r["id"])
        r["fork"] = ""
        if link:
            edit = link.get("edit") or {}
            r["fork"] = f"↳ step {link['step']}: {edit.get('part', 'none')}" + (" · " + str(edit["text"])[:40] if edit.get("text") else "")
        if link and link["parent"] in present:
            children.setdefault(link["parent"], []).append(r)
        else:
            top.append(r)
    out: list[dict] = []

    def add(r: dict, depth: int) -> None:
        if depth:
            r["fork"] = "  " * (depth - 1) + r["fork"]
        out.append(r)
        for child in reversed(children.get(r["id"], [])):  # oldest fork first under its parent
            add(child, depth + 1)

    for r in top:
        add(r, 0)
    columns = ["id", "fork", *[c for c in table.columns if c != "id"]]
    return pd.DataFrame(out, columns=columns)
