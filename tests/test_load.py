"""Load: 8 concurrent sessions through gradio_client against the real app on 127.0.0.1, 3 runs each
on the tiny model: no errors, every trace stored, no session sees another's runs (bench/load.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("gradio_client")

BENCH = Path(__file__).resolve().parents[1] / "bench" / "load.py"
pytestmark = pytest.mark.load


@pytest.fixture(scope="module")
def load():
    spec = importlib.util.spec_from_file_location("bench_load", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_eight_sessions_each_running_three_runs(load, tmp_path):
    report = load.run_load("tiny", sessions=8, runs=3, mode="react", max_steps=2, store_path=tmp_path / "runs.db",
                           deadline_s=240)
    summary = report.summary()
    assert summary["errors"] == 0, report.errors[:3]
    assert summary["runs"] == 24 and summary["stored"] == 24 and not summary["timed_out"]
    assert summary["sessions_isolated"], report.mismatched
    assert {r.session for r in report.records} == set(range(8))
    assert len({r.run_id for r in report.records}) == 24
    assert 0 < summary["p50_s"] <= summary["p95_s"] <= summary["max_s"]


def test_the_load_test_refuses_any_address_but_loopback(load):
    with pytest.raises(ValueError, match="only to 127.0.0.1"):
        load.drive("http://10.0.0.1:7860/", 1, 1, "tiny")
    assert load.HOST == "127.0.0.1"


def test_percentiles(load):
    report = load.LoadReport("m", 1, 1, "react", 1,
                             records=[load.RunRecord(0, "q", float(s)) for s in range(1, 21)])
    assert report.percentile(50) == 10.0 and report.percentile(95) == 19.0 and report.percentile(100) == 20.0
