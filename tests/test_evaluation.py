"""The evaluation harness: metrics, modes, the paper's hybrids, storage, resume and two processes."""

import json
import os
import re
import subprocess
import sys

import pytest

from workbench.datasets import load_suite
from workbench.errors import ConfigError, InputError
from workbench.evaluation import EvalConfig, evaluate, exact_match, f1_score, normalize_answer, run_item
from workbench.store import Store
from workbench.testing import ScriptedModel


def oracle(answers_by_question: dict[str, str], wrong: bool = False):
    """A model that answers every question right (or wrong), in whatever format the mode asks for."""

    def respond(prompt: str) -> str:
        question = re.findall(r"Question: (.*)", prompt)[-1].strip()
        answer = "nothing" if wrong else answers_by_question[question.removeprefix("Claim: ")]
        if prompt.endswith("Action:"):
            return f" finish[{answer}]"
        if prompt.endswith("Answer:"):
            return f" {answer}"
        return f" I know this one.\nAnswer: {answer}"

    return ScriptedModel(respond, name="oracle")


@pytest.fixture
def suite():
    return load_suite("demo:test", limit=5)


@pytest.fixture
def answers(suite):
    return {t.question: t.answer for t in suite.tasks}


@pytest.mark.parametrize("text,normal", [("The Drume.", "drume"), ("  An  Apple, Inc ", "apple inc"), (None, ""),
                                         ("1,312", "1312")])
def test_normalize_answer(text, normal):
    assert normalize_answer(text) == normal


def test_exact_match_and_f1():
    assert exact_match("the Drume", ["Drume"]) == 1.0
    assert exact_match("Drume river", ["Drume"]) == 0.0
    assert f1_score("Drume river", ["Drume"]) == pytest.approx(2 / 3)
    assert f1_score("x", ["Drume", "x"]) == 1.0
    assert f1_score("", ["Drume"]) == 0.0


def test_every_mode_scores_a_perfect_model_perfectly(suite, answers, store):
    modes = ["react", "cot", "act", "direct", "cot_sc", "react_cot_sc", "cot_sc_react"]
    result = evaluate(suite, modes, oracle(answers), store=store, config=EvalConfig(sc_samples=3))
    assert len(result.rows) == 5 * len(modes)
    agg = result.aggregate()
    assert list(agg["mode"]) == modes
    assert (agg["success"] == 1.0).all() and (agg["em"] == 1.0).all() and (agg["f1"] == 1.0).all()
    assert (agg["invalid_action_rate"] == 0).all()
    assert set(result.aggregate(by_type=True)["type"]) == {"single_hop", "bridge", "comparison", "numeric",
                                                          "arithmetic"}
    rows = {r["mode"]: r for r in result.rows if r["task_id"] == suite.tasks[0].id}
    assert len(rows["cot_sc"]["trace_ids"]) == 3 and rows["cot_sc"]["majority"] == 1.0
    assert not rows["react_cot_sc"]["backed_off"] and not rows["cot_sc_react"]["backed_off"]


def test_a_wrong_model_scores_zero_and_its_traces_are_stored(suite, answers, store):
    result = evaluate(suite, ["react", "direct"], oracle(answers, wrong=True), store=store)
    assert (result.aggregate()["success"] == 0).all()
    trace = store.get_trace(result.rows[0]["trace_ids"][0])
    assert trace.gold == suite.tasks[0].answer and trace.meta["task_id"] == suite.tasks[0].id
    assert store.list_evals()[0]["id"] == result.run_id and store.list_evals()[0]["status"] == "done"


def test_cot_sc_takes_the_majority_and_cot_sc_react_backs_off_when_it_is_weak(suite, store):
    task = suite.tasks[0]
    votes = iter(["A", "B", "A", "C", "A"] + ["A", "B", "C", "D", "E"])

    def respond(prompt):
        if prompt.endswith("Action:"):
            return f" finish[{task.answer}]"
        return f" hmm\nAnswer: {next(votes, task.answer)}"

    model = ScriptedModel(respond)
    config = EvalConfig(sc_samples=5)
    row, traces = run_item(model, suite, task, "cot_sc", config)
    assert row["answer"] == "A" and row["majority"] == pytest.approx(0.6) and len(traces) == 5
    row, traces = run_item(model, suite, task, "cot_sc_react", config)  # the votes now are all different
    assert row["backed_off"] and row["majority"] == pytest.approx(0.2) and traces[-1].mode == "react"
    assert row["answer"] == task.answer and row["success"] == 1.0


def test_react_cot_sc_backs_off_when_react_does_not_finish(suite):
    task = suite.tasks[0]

    searches = []

    def respond(prompt):
        if prompt.endswith("Action:"):
            searches.append(1)
            return f" search[Nowhere {len(searches)}]"  # never finishes, never repeats itself
        return f" thinking\nAnswer: {task.answer}"

    row, traces = run_item(ScriptedModel(respond), suite, task, "react_cot_sc", EvalConfig(max_steps=2, sc_samples=3))
    assert row["backed_off"] and traces[0].stop_reason == "max_steps" and len(traces) == 4
    assert row["success"] == 1.0


def test_a_killed_evaluation_resumes_with_nothing_run_twice_or_lost(suite, answers, store):
    calls = []
    inner = oracle(answers)

    def respond(prompt):
        calls.append(prompt)
        if len(calls) == 7:
            raise KeyboardInterrupt  # the process dies in the middle of an item
        return inner.respond(prompt)

    with pytest.raises(KeyboardInterrupt):
        evaluate(suite, ["direct", "cot"], ScriptedModel(respond), store=store)
    first = store.list_evals()[0]["id"]
    done_before = store.eval_done(first)
    assert 0 < len(done_before) < 10
    seen = []
    model = ScriptedModel(lambda p: seen.append(p) or inner.respond(p), name="scripted")
    result = evaluate(suite, ["direct", "cot"], model, store=store)
    assert result.run_id == first  # same settings: the same evaluation, resumed
    assert len(seen) == 10 - len(done_before)  # only what was missing ran
    assert sorted((r["task_id"], r["mode"]) for r in result.rows) == sorted(
        (t.id, m) for t in suite.tasks for m in ("direct", "cot"))
    fresh = evaluate(suite, ["direct"], model, store=store, fresh=True)
    assert fresh.run_id != first and len(fresh.rows) == 5


def test_export_csv_and_json(tmp_path, suite, answers, store):
    result = evaluate(suite, ["direct"], oracle(answers), store=store)
    csv = result.to_csv(tmp_path / "r.csv").read_text()
    assert csv.splitlines()[0].startswith("task_id,type,mode") and len(csv.splitlines()) == 6
    data = json.loads(result.to_json(tmp_path / "r.json").read_text())
    assert data["aggregate"][0]["success"] == 1.0 and len(data["rows"]) == 5


def test_compare_results_puts_two_stored_evaluations_side_by_side(suite, answers, store):
    from workbench.evaluation import compare_results, stored_aggregate

    right = evaluate(suite, ["direct", "cot"], oracle(answers), store=store)
    wrong = evaluate(suite, ["direct"], oracle(answers, wrong=True), store=store)
    table = compare_results(store, right.run_id, wrong.run_id)
    a, b = f"success ({right.run_id[-6:]})", f"success ({wrong.run_id[-6:]})"
    assert sorted(table["mode"]) == ["cot", "direct"]
    by_mode = table.set_index("mode")
    assert by_mode.loc["direct", a] == 1.0 and by_mode.loc["direct", b] == 0.0
    assert by_mode.loc["cot", a] == 1.0 and by_mode.loc["cot", b] != by_mode.loc["cot", b]  # only one ran cot: NaN
    assert stored_aggregate(store, wrong.run_id)["success"].tolist() == [0.0]
    with pytest.raises(InputError, match="Pick two evaluations to compare"):
        compare_results(store, right.run_id, "")


def test_fever_suites_score_label_accuracy(store):
    suite = load_suite("demo-fever:test", limit=6)
    labels = {t.question: t.answer for t in suite.tasks}
    result = evaluate(suite, ["direct", "react"], oracle(labels), store=store)
    assert (result.aggregate()["success"] == 1.0).all()
    wrong = evaluate(suite, ["direct"], oracle(labels, wrong=True), store=store)
    assert wrong.rows[0]["answer"] is None and wrong.aggregate()["success"][0] == 0.0


@pytest.mark.parametrize("kw,message", [({"modes": ["think"]}, "Available: react, cot"), ({"modes": []}, "no evaluation")])
def test_bad_modes(suite, store, kw, message):
    with pytest.raises(InputError, match=message):
        evaluate(suite, kw["modes"], ScriptedModel([]), store=store)


def test_bad_config():
    with pytest.raises(ConfigError, match="sc_samples"):
        EvalConfig(sc_samples=0)


def test_two_processes_share_an_evaluation_through_accelerate(tmp_path):
    store = tmp_path / "runs.db"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # --multi_gpu selects accelerate's torchrun launcher; without a GPU the processes run on the CPU.
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "workbench.cli", "--store", str(store), "eval",
           "--suite", "demo:test", "--limit", "3", "--modes", "direct,act", "--model", "tiny", "--max-steps", "1",
           "--max-new-tokens", "4", "--quiet"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    s = Store(store)
    evals = s.list_evals()
    assert len(evals) == 1 and evals[0]["status"] == "done"
    rows = s.eval_rows(evals[0]["id"])
    assert len(rows) == 6 and {r["process"] for r in rows} == {0, 1}
    assert len({(r["task_id"], r["mode"]) for r in rows}) == 6
    assert "direct" in out.stdout and "act" in out.stdout  # the main process printed the merged table


def test_the_loop_rate_counts_runs_that_ran_out_of_steps_or_repeated():
    import pandas as pd

    from workbench.evaluation import aggregate

    base = {"mode": "react", "type": "bridge", "em": 0.0, "f1": 0.0, "success": 0.0, "steps": 3, "invalid_actions": 0,
            "tool_errors": 0, "wall_time": 1.0, "tokens": 10, "supporting_recall": None}
    ends = ["finished", "max_steps", "repeated_action", "finished"]
    table = pd.DataFrame([{**base, "task_id": str(i), "stop_reason": e} for i, e in enumerate(ends)])
    assert aggregate(table)["loop_rate"].tolist() == [0.5]
