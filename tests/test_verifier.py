"""The answer verifier: pairs, the report, training through the job runner, and the agent option."""

from __future__ import annotations

import json
import math

import pytest

from workbench.agent import Agent, AgentConfig
from workbench.errors import ConfigError
from workbench.finetune import FineTuneConfig, run_job
from workbench.finetune import verifier as vmod
from workbench.finetune.loop import TrainingError
from workbench.finetune.verifier import Verifier, train_verifier
from workbench.finetune.verifier_data import Pair, build_pairs, classification_report, load_pairs, mentions
from workbench.store import Store
from workbench.testing import ScriptedModel
from workbench.types import Step, Trace


def _pairs_file(tmp_path, n: int = 8) -> str:
    """A tiny .jsonl set: half supported, half not."""
    rows = []
    for i in range(n // 2):
        obs = f"Town {i} was founded in {1800 + i}."
        rows += [{"observation": obs, "answer": str(1800 + i), "label": 1},
                 {"observation": obs, "answer": str(1900 + i), "label": 0}]
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return str(path)


def _cfg(tmp_path, **kw) -> FineTuneConfig:
    base = dict(task="verifier", base_model="tiny", data=_pairs_file(tmp_path), eval_data="", steps=4,
                learning_rate=1e-3, warmup_steps=0, batch_tokens=2048, max_length=64, eval_interval=0,
                output_dir=str(tmp_path / "out"))
    return FineTuneConfig(**{**base, **kw}).validate()


# ---------------------------------------------------------------- data and report
def test_demo_pairs_are_balanced_deterministic_and_labelled_right():
    a = load_pairs("demo:dev", seed=0)
    assert a == load_pairs("demo:dev", seed=0)
    assert a != load_pairs("demo:dev", seed=1)
    assert len(a) > 100 and sum(p.label for p in a) * 2 == len(a)
    for p in a:
        assert mentions(p.observation, p.answer) == bool(p.label), p
    assert len({(p.observation, p.answer) for p in a}) == len(a)
    limited = load_pairs("demo:dev", seed=0, limit=10)
    assert len(limited) == 10 and sum(p.label for p in limited) == 5


def test_negatives_come_from_the_same_subtype():
    from workbench.world import load_tasks

    tasks = load_tasks("dev")
    by_answer = {}
    for t in tasks:
        by_answer.setdefault(t.answer, set()).add(t.meta.get("subtype"))
    source = {t.id: t for t in tasks}
    for p in build_pairs(tasks, seed=3):
        if not p.label:
            assert source[p.source].meta.get("subtype") in by_answer[p.answer] or \
                source[p.source].type in {t.type for t in tasks if t.answer == p.answer}


def test_mentions_ignores_case_and_digit_commas_but_not_word_parts():
    assert mentions("It has a population of 2,315,000.", "2315000")
    assert mentions("Its founder was Tain Dehusov.", "tain dehusov")
    assert not mentions("It was founded in 1937.", "193")


def test_report_on_a_hand_made_confusion():
    # supported (1): 4 true, 3 found, plus 2 false alarms; unsupported (0): 6 true, 4 found
    y_true = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    y_pred = [1, 1, 1, 0, 1, 1, 0, 0, 0, 0]
    r = classification_report(y_true, y_pred)
    assert r["accuracy"] == pytest.approx(0.7)
    assert r["supported"] == pytest.approx({"precision": 3 / 5, "recall": 3 / 4, "f1": 2 / 3, "support": 4})
    assert r["unsupported"] == pytest.approx({"precision": 4 / 5, "recall": 4 / 6, "f1": 8 / 11, "support": 6})
    assert r["macro avg"]["f1"] == pytest.approx((2 / 3 + 8 / 11) / 2)
    assert classification_report([0, 0], [0, 0])["supported"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                                                    "support": 0}
    with pytest.raises(ValueError, match="3 true labels but 2 predictions"):
        classification_report([0, 1, 1], [0, 1])


def test_bad_data_specs_name_the_choices(tmp_path):
    with pytest.raises(ConfigError, match="demo:train"):
        load_pairs("hotpot:dev")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"observation": "x"}\n')
    with pytest.raises(ConfigError, match="line 1"):
        load_pairs(str(bad))


# ---------------------------------------------------------------- training
def test_a_few_steps_lower_the_loss_on_a_tiny_set(tmp_path):
    losses = []
    result = train_verifier(_cfg(tmp_path, steps=25, learning_rate=1e-2), on_metric=lambda s, m: losses.append(m.get("train_loss")),
                            log=lambda *_: None)
    losses = [x for x in losses if x is not None]
    assert len(losses) == 25 and all(math.isfinite(x) for x in losses)
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.3  # from ln 2 = 0.69 to about 0.02
    assert result["n_train"] == 8 and result["evaluated_on"].endswith("(training pairs: no eval_data)")
    assert set(result["report"]) >= {"supported", "unsupported", "macro avg", "accuracy"}
    info = json.loads((tmp_path / "out" / "verifier" / "workbench.json").read_text())
    assert info["kind"] == "workbench-verifier" and info["labels"] == ["unsupported", "supported"]
    assert not (tmp_path / "out" / "verifier.tmp").exists()


def test_a_non_finite_loss_names_the_fix(tmp_path, monkeypatch):
    def broken(spec, seed):
        model, tok = vmod.tiny_verifier_model()
        model.classifier.weight.data.fill_(float("nan"))
        return model, tok

    monkeypatch.setattr(vmod, "_load_base", broken)
    with pytest.raises(TrainingError, match="Lower learning_rate"):
        train_verifier(_cfg(tmp_path), log=lambda *_: None)


def test_the_job_runner_trains_evaluates_and_saves(tmp_path):
    store = Store(tmp_path / "runs.db")
    cfg = _cfg(tmp_path, data="demo:dev", max_train_examples=24, eval_data=_pairs_file(tmp_path), steps=3,
               eval_interval=2)
    store.create_job("v1", "verifier", cfg.to_dict(), cfg.output_dir)
    job = run_job("v1", store)
    assert job["state"] == "done", job["error"]
    names = {(m["step"], m["name"]) for m in store.job_metrics("v1")}
    assert {(s, n) for s in (1, 2, 3) for n in ("train_loss", "lr", "examples_per_s")} <= names
    assert {(s, n) for s in (2, 3) for n in ("eval_loss", "eval_accuracy", "eval_f1")} <= names
    result = job["result"]
    assert result["n_train"] == 24 and result["n_eval"] == 8 and 0 <= result["accuracy"] <= 1
    assert result["report"]["supported"]["support"] == 4 and result["seconds"] > 0

    verifier = Verifier.load(result["adapter_dir"])
    scores = verifier.score_many(["Town 1 was founded in 1801.", "It is 412 km long."], "1801")
    assert len(scores) == 2 and all(0 <= s <= 1 for s in scores)
    assert verifier.score("Town 1 was founded in 1801.", "1801") == pytest.approx(scores[0], abs=1e-5)

    # the agent loads the same folder and records its score on the finishing step
    agent = Agent(ScriptedModel(["Thought: add.\nAction: calculate[2+3]", "Thought: 5.\nAction: finish[5]"]),
                  verifier=result["adapter_dir"], verifier_threshold=0.0)
    trace = agent.run("What is 2 + 3?")
    assert trace.answer == "5" and trace.steps[-1].verifier_score is not None


def test_cancel_ends_the_job_cancelled(tmp_path):
    class CancelAtTwo(Store):
        def log_metrics(self, job_id, step, metrics):
            super().log_metrics(job_id, step, metrics)
            if step == 2:
                self.request_cancel(job_id)

    store = CancelAtTwo(tmp_path / "runs.db")
    cfg = _cfg(tmp_path, steps=50)
    store.create_job("v2", "verifier", cfg.to_dict(), cfg.output_dir)
    job = run_job("v2", store)
    assert job["state"] == "cancelled" and "before step 3" in job["error"]
    assert max(m["step"] for m in store.job_metrics("v2")) == 2
    assert not (tmp_path / "out" / "verifier").exists()


def test_load_refuses_a_folder_that_is_not_a_verifier(tmp_path):
    with pytest.raises(ConfigError, match="No verifier"):
        Verifier.load(tmp_path)
    (tmp_path / "workbench.json").write_text('{"kind": "workbench-finetune"}')
    with pytest.raises(ConfigError, match="not a verifier"):
        Verifier.load(tmp_path)


# ---------------------------------------------------------------- the agent option
class StubVerifier:
    """Supports an answer exactly when an observation mentions it."""

    def __init__(self) -> None:
        self.calls = []

    def score_many(self, observations, answer):
        self.calls.append((list(observations), answer))
        return [0.9 if mentions(o, answer) else 0.1 for o in observations]


@pytest.fixture
def stub(monkeypatch):
    v = StubVerifier()
    monkeypatch.setattr(Verifier, "shared", classmethod(lambda cls, path: v))
    return v


SEARCH = "Thought: look it up.\nAction: search[Varnholt]"


def test_an_unsupported_finish_is_refused_once_then_a_supported_one_ends_the_run(stub, corpus):
    model = ScriptedModel([SEARCH, "Thought: guess.\nAction: finish[1400]", "Thought: read it.\nAction: finish[1312]"])
    trace = Agent(model, corpus=corpus, verifier="some/folder").run("When was Varnholt founded?")
    s1, s2, s3 = trace.steps
    assert s1.verifier_score is None
    assert s2.answer is None and not s2.run_end and s2.verifier_score == pytest.approx(0.1)
    assert "'1400' is not supported by the observations so far" in s2.observation
    assert s3.answer == "1312" and s3.verifier_score == pytest.approx(0.9)
    assert trace.answer == "1312" and trace.stop_reason == "finished"
    assert stub.calls[0] == ([s1.observation], "1400")  # only tool observations are evidence
    assert trace.config["verifier"] == "some/folder"
    again = Trace.from_json(trace.to_json())
    assert again == trace and again.steps[2].verifier_score == pytest.approx(0.9)


def test_the_verifier_refuses_only_once_per_run(stub, corpus):
    model = ScriptedModel([SEARCH, "Thought: guess.\nAction: finish[1400]", "Thought: sure.\nAction: finish[1400]"])
    trace = Agent(model, corpus=corpus, verifier="v").run("When was Varnholt founded?")
    assert len(trace.steps) == 3 and trace.answer == "1400" and trace.stop_reason == "finished"
    assert trace.steps[2].verifier_score == pytest.approx(0.1)


def test_no_refusal_on_the_last_step_nor_without_the_option(stub, corpus):
    model = ScriptedModel([SEARCH, "Thought: guess.\nAction: finish[1400]"])
    trace = Agent(model, corpus=corpus, verifier="v", max_steps=2).run("When was Varnholt founded?")
    assert trace.answer == "1400" and trace.steps[-1].verifier_score == pytest.approx(0.1)

    model = ScriptedModel([SEARCH, "Thought: guess.\nAction: finish[1400]"])
    agent = Agent(model, corpus=corpus)
    trace = agent.run("When was Varnholt founded?")
    assert agent.verifier is None and trace.answer == "1400"
    assert all(s.verifier_score is None for s in trace.steps)


def test_a_finish_before_any_observation_is_unsupported(stub, corpus):
    model = ScriptedModel(["Thought: I know.\nAction: finish[1312]", SEARCH, "Thought: yes.\nAction: finish[1312]"])
    trace = Agent(model, corpus=corpus, verifier="v").run("When was Varnholt founded?")
    assert trace.steps[0].verifier_score == 0.0 and trace.steps[0].answer is None
    assert "no tool has returned an observation yet" in trace.steps[0].observation
    assert trace.answer == "1312" and trace.steps[-1].verifier_score == pytest.approx(0.9)


def test_threshold_is_checked():
    with pytest.raises(ConfigError, match="verifier_threshold must be between 0 and 1"):
        AgentConfig(verifier_threshold=1.5)


def test_step_round_trip_keeps_the_score():
    step = Step(index=2, answer="x", verifier_score=0.25)
    assert Step.from_dict(step.to_dict()) == step
    assert Step.from_dict({"index": 1}).verifier_score is None


def test_pair_is_a_plain_record():
    assert Pair("o", "a", 1).source == ""


def test_cli_run_takes_a_verifier(stub, tmp_path, capsys):
    from workbench.cli import main

    store = str(tmp_path / "r.db")
    assert main(["--store", store, "run", "What is 2 + 3?", "--model", "tiny", "--max-steps", "2",
                 "--max-new-tokens", "8", "--verifier", "v", "--verifier-threshold", "0.7", "--json"]) == 0
    trace = Trace.from_json(capsys.readouterr().out)
    assert trace.config["verifier"] == "v" and trace.config["verifier_threshold"] == 0.7


def test_cli_run_with_a_folder_that_is_not_a_verifier_says_so(tmp_path, capsys):
    from workbench.cli import main

    code = main(["--store", str(tmp_path / "r.db"), "run", "q", "--model", "tiny", "--verifier", str(tmp_path)])
    assert code == 2 and "No verifier" in capsys.readouterr().err


def test_extra_processes_under_accelerate_do_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    assert train_verifier(_cfg(tmp_path), log=lambda *_: None) == {}
    assert not (tmp_path / "out").exists()
