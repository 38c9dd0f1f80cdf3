"""bench/vs_smolagents.py: its comparison runs both agents end to end on the tiny random model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("smolagents")

BENCH = Path(__file__).resolve().parents[1] / "bench" / "vs_smolagents.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("vs_smolagents", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_normalize_and_score(bench):
    from workbench.types import Task

    task = Task(id="t", question="On which river does Brark lie?", answer="Humouline", aliases=["the Humouline"])
    assert bench.normalize_answer("  The  Humouline. ") == "humouline"
    assert bench.is_correct("the humouline!", task) and bench.is_correct("Humouline", task)
    assert not bench.is_correct("Drume", task) and not bench.is_correct(None, task) and not bench.is_correct("", task)
    assert bench.normalize_answer("271,200") == bench.normalize_answer("271200")


def test_pick_tasks_spreads_over_types(bench):
    from workbench.types import TASK_TYPES

    tasks = bench.pick_tasks(10)
    assert [t.type for t in tasks] == [k for k in TASK_TYPES for _ in range(2)]


def test_smolagents_model_wraps_the_same_objects(bench):
    from workbench.models import tiny_model

    lm = tiny_model(seed=2, chat_template=True)
    model = bench.smolagents_model(lm, max_new_tokens=4)
    assert model.model is lm.model and model.tokenizer is lm.tokenizer
    assert model.kwargs["do_sample"] is False and model.kwargs["max_new_tokens"] == 4


def test_compare_runs_both_agents_on_two_tasks(bench):
    from workbench.models import tiny_model

    lm = tiny_model(seed=2, chat_template=True)  # smolagents needs a chat template
    tasks = bench.pick_tasks(2)
    rows = bench.compare(lm, tasks, max_steps=2, max_new_tokens=32, log=None, warm_up=False)
    assert [r["task"] for r in rows] == [t.id for t in tasks]
    for row in rows:
        for name in bench.AGENTS:
            r = row[name]
            assert {"success", "seconds", "steps", "answer", "error", "finished", "model_calls"} <= set(r), name
            assert r["seconds"] > 0 and isinstance(r["success"], bool)
            assert r["steps"] >= 1 or r["error"], (name, r)  # the agent really ran
    summary = bench.summarize(rows)
    assert summary["tasks"] == 2 and set(bench.AGENTS) <= set(summary)
    assert "| solved" in bench.markdown_table(summary)


def test_a_second_model_adds_our_agents_third_column(bench):
    from workbench.models import tiny_model
    from workbench.testing import ScriptedModel

    lm = tiny_model(seed=2, chat_template=True)
    tasks = bench.pick_tasks(1)
    tuned = ScriptedModel(lambda prompt: f" I know it.\nAction: finish[{tasks[0].answer}]")  # the adapter's stand-in
    rows = bench.compare(lm, tasks, max_steps=2, max_new_tokens=16, log=None, warm_up=False, tuned=tuned)
    third = rows[0][bench.TUNED]
    assert third["steps"] == 1 and third["answer"] == tasks[0].answer and third["success"] is True
    assert rows[0]["workbench"]["success"] is False  # the tiny model's own run, not the second model's
    table = bench.markdown_table(bench.summarize(rows))
    header = table.split("\n")[0]
    assert header.count("|") == 5 and "shipped adapter" in header
    assert all(line.count("|") == 5 for line in table.split("\n"))  # every measure has the third cell
