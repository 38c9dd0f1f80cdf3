"""Faults: an evaluation killed with SIGKILL resumes with no task run twice or lost; writers in
several processes (one of them killed mid-write) leave the store whole."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from workbench.store import Store

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL")

N_TASKS, MODES = 20, ("direct", "cot")


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}


def _results(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM eval_results").fetchone()[0]
    except sqlite3.OperationalError:  # the tables are not made yet
        return 0


def test_an_evaluation_killed_mid_way_resumes_with_no_task_run_twice_or_lost(tmp_path):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps({"id": f"t{i:02d}", "question": f"What is {i} + {i}?", "answer": str(2 * i)})
                             + "\n" for i in range(N_TASKS)))
    db = tmp_path / "runs.db"
    command = [sys.executable, "-m", "workbench.cli", "--store", str(db), "eval", "--suite", f"jsonl:{tasks}",
               "--modes", ",".join(MODES), "--model", "tiny", "--max-new-tokens", "48", "--quiet"]
    first = subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while _results(db) < 4 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)  # no clean-up of any kind: the process just stops
    first.wait(10)
    assert first.returncode == -signal.SIGKILL, first.stdout.read().decode()

    store = Store(db)
    (evaluation,) = store.list_evals()
    run_id, total = evaluation["id"], N_TASKS * len(MODES)
    before = {(r["task_id"], r["mode"]): r["trace_ids"] for r in store.eval_rows(run_id)}
    assert 4 <= len(before) < total, "the kill must land in the middle of the evaluation"
    assert store.get_eval(run_id)["status"] == "running"

    second = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=240)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"evaluation {run_id}" in second.stdout and f"{total} results" in second.stdout  # the same one, resumed

    rows = store.eval_rows(run_id)
    keys = [(r["task_id"], r["mode"]) for r in rows]
    assert len(keys) == len(set(keys)) == total  # none lost, none twice
    assert set(keys) == {(f"t{i:02d}", m) for i in range(N_TASKS) for m in MODES}
    after = {(r["task_id"], r["mode"]): r["trace_ids"] for r in rows}
    assert all(after[k] == v for k, v in before.items())  # what was done before the kill was not run again
    trace_ids = [t for r in rows for t in r["trace_ids"]]
    with sqlite3.connect(db) as conn:
        stored = [r[0] for r in conn.execute("SELECT id FROM runs WHERE tags=?", (f"eval:{run_id}",))]
    assert sorted(stored) == sorted(trace_ids) and len(stored) == total  # one trace per item, no half-saved ones
    assert store.get_eval(run_id)["status"] == "done" and store.integrity_check() == "ok"


_WRITER = textwrap.dedent("""
    import sys, time
    from workbench.store import Store
    from workbench.types import Step, Trace

    store, name, n = Store(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    store.start_eval("shared", "suite", ["direct"], "m", {}, 10_000)
    for i in range(n):
        trace = Trace(task=f"{name}-{i}", steps=[Step(index=1, answer="a" * 2000, run_end="finished")],
                      answer="a", stop_reason="finished")
        if i % 2:
            store.save_trace(trace)
        else:
            row = {"task_id": f"{name}-{i}", "mode": "direct", "trace_ids": [trace.id], "success": 1.0}
            store.save_eval_item("shared", row, [trace])
    print("done", flush=True)
""")


def test_writers_in_several_processes_one_killed_mid_write_leave_the_store_whole(tmp_path):
    db = tmp_path / "runs.db"
    Store(db)
    n = 40
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(db), f"w{k}", str(n)], env=_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(4)]
    victim = subprocess.Popen([sys.executable, "-c", _WRITER, str(db), "victim", "100000"], env=_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    store = Store(db)
    deadline = time.monotonic() + 60
    while store.count_runs() < 30 and time.monotonic() < deadline:  # the victim is writing in a loop by now
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    for w in writers:
        out, err = w.communicate(timeout=120)
        assert w.returncode == 0 and out.strip() == "done", err

    assert store.integrity_check() == "ok"
    runs = store.list_runs(limit=100_000)
    for k in range(4):  # every write of the survivors landed, whole
        assert sum(r.task.startswith(f"w{k}-") for r in runs) == n
    for r in runs:  # and every stored row, the victim's included, reads back complete
        trace = store.get_trace(r.id)
        assert trace.steps[0].answer == "a" * 2000
    done = store.eval_done("shared")
    victim_items = {t for t, _ in done if t.startswith("victim-")}
    victim_runs = {r.task for r in runs if r.task.startswith("victim-")}
    assert victim_items <= victim_runs  # a result is never stored without its trace
    assert len([t for t, _ in done if t.startswith("w")]) == 4 * n // 2
