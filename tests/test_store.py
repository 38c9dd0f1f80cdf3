"""The SQLite run store: round trip, history, WAL, concurrency and clear errors on bad files."""

import sqlite3
import threading

import pytest

from workbench.errors import StoreError
from workbench.store import Store
from workbench.types import Step, Trace


def _trace(task="Q", answer="A") -> Trace:
    return Trace(task=task, steps=[Step(index=1, answer=answer, run_end="finished")], answer=answer,
                 stop_reason="finished", model="tiny")


def test_save_get_list_delete(store):
    a, b = _trace("first question"), _trace("second question")
    b.created_at = a.created_at + 1
    store.save_trace(a)
    store.save_trace(b)
    assert store.get_trace(a.id) == a
    assert [r.id for r in store.list_runs()] == [b.id, a.id]
    assert [r.id for r in store.list_runs(search="first")] == [a.id]
    assert store.count_runs() == 2
    df = store.runs_dataframe()
    assert list(df["task"]) == ["second question", "first question"]
    assert store.delete_run(a.id) and not store.delete_run(a.id)
    with pytest.raises(StoreError, match="No run with id"):
        store.get_trace(a.id)


def test_wal_mode_and_integrity(store):
    store.save_trace(_trace())
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.integrity_check() == "ok"


def test_reopening_keeps_runs_and_schema(tmp_path):
    path = tmp_path / "runs.db"
    trace = _trace()
    Store(path).save_trace(trace)
    assert Store(path).get_trace(trace.id).answer == "A"


def test_concurrent_writers_from_threads_and_processes(tmp_path):
    path = tmp_path / "runs.db"
    Store(path)
    errors = []

    def write(n):
        try:
            s = Store(path)
            for i in range(15):
                s.save_trace(_trace(f"t{n}-{i}"))
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    store = Store(path)
    assert store.count_runs() == 90 and store.integrity_check() == "ok"


def test_corrupt_file_gives_a_clear_error_and_is_left_untouched(tmp_path):
    path = tmp_path / "runs.db"
    path.write_bytes(b"this is not sqlite" * 100)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not a valid SQLite database.*Move the file aside"):
        Store(path)
    assert path.read_bytes() == before


def test_a_folder_that_cannot_be_created_is_a_store_error(tmp_path):
    # The store's folder cannot be made, for root too: its parent is a symbolic link that points at itself
    # (a permission bit would not do: CI runs as root, and root writes anywhere).
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(StoreError, match=r"Cannot create the folder for the run store at .*loop/sub: .*"
                                         r"Pass another path with --store PATH or set WORKBENCH_STORE") as err:
        Store(loop / "sub" / "runs.db")
    assert isinstance(err.value.__cause__, OSError) and loop.is_symlink()


def test_unwritable_path_is_a_store_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="Pass another path with --store PATH"):
        Store(blocker / "runs.db")  # a file where a folder must be


def test_damaged_row_is_reported_not_raised_raw(store):
    trace = _trace()
    store.save_trace(trace)
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE runs SET trace_json='{broken' WHERE id=?", (trace.id,))
    with pytest.raises(StoreError, match="damaged"):
        store.get_trace(trace.id)


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "runs.db"
    Store(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    with pytest.raises(StoreError, match="newer workbench"):
        Store(path)


def test_memory_store(tmp_path):
    s = Store(":memory:")
    s.save_trace(_trace())
    assert s.count_runs() == 1
