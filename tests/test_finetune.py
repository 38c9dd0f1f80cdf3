"""Fine-tuning: config, data masks, packing, the loop, checkpoints and resume, jobs, continual learning."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from workbench.errors import ConfigError, DatasetError
from workbench.finetune import (FineTuneConfig, build_example, export_trajectories, load_trajectories, pack,
                                parse_trajectories, preview, traces_to_trajectories)
from workbench.finetune.checkpoint import latest_checkpoint, load_checkpoint
from workbench.store import Store

torch = pytest.importorskip("torch")
pytest.importorskip("peft")


def tiny_cfg(tmp_path, **kw) -> FineTuneConfig:
    base = dict(base_model="tiny:3", steps=2, batch_tokens=4096, max_length=4096, max_train_examples=6,
                eval_data="", probe="", eval_interval=0, checkpoint_interval=0, warmup_steps=0, learning_rate=1e-3,
                output_dir=str(tmp_path / "out"))
    base.update(kw)
    return FineTuneConfig(**base).validate()


# ---------------------------------------------------------------- config


def test_config_toml_round_trip(tmp_path):
    cfg = FineTuneConfig(steps=7, learning_rate=3e-4, lora_targets=["q_proj", "v_proj"], data="x.jsonl")
    path = tmp_path / "run.toml"
    path.write_text(cfg.to_toml())
    assert FineTuneConfig.from_toml(path) == cfg
    assert FineTuneConfig.from_toml_text("[finetune]\nsteps = 3\n").steps == 3


@pytest.mark.parametrize("field, value, words", [
    ("steps", 0, "from 1"), ("learning_rate", -1.0, "(0, 1]"), ("learning_rate", float("nan"), "(0, 1]"),
    ("method", "qlora", "lora, full"), ("batch_tokens", 8, "from 32"), ("lora_dropout", 1.0, "[0, 1)"),
    ("reasoning_weight", -0.5, "0 or more"), ("device", "tpu", "auto, cpu"), ("grad_accum", 0, "from 1"),
])
def test_config_out_of_range_names_the_field(field, value, words):
    with pytest.raises(ConfigError) as err:
        FineTuneConfig(**{field: value}).validate()
    assert f"FineTuneConfig.{field}" in str(err.value) and words in str(err.value)


def test_config_unknown_key_and_both_weights_zero():
    with pytest.raises(ConfigError, match="Unknown fine-tune setting.*stepz"):
        FineTuneConfig.from_dict({"stepz": 3})
    with pytest.raises(ConfigError, match="cannot both be 0"):
        FineTuneConfig(reasoning_weight=0, action_weight=0).validate()
    with pytest.raises(ConfigError, match="not valid TOML"):
        FineTuneConfig.from_toml_text("steps = = 3")


# ---------------------------------------------------------------- data


def test_example_is_exactly_what_the_agent_sees(tiny_chat):
    from workbench.agent import Agent

    traj = load_trajectories("demo:train", limit=1)[0]
    ex = build_example(tiny_chat, traj)
    prompt_ids = Agent(tiny_chat, n_examples=0, share_prefix=False).open_session(traj.question).ids
    assert ex.ids[:len(prompt_ids)] == prompt_ids  # the same prompt, token for token
    assert set(ex.kinds[:len(prompt_ids)]) == {0}  # and none of it is trained
    tokens = preview(ex, tiny_chat.tokenizer)
    thought = "".join(t for t, k in tokens if k == "thought")
    action = "".join(t for t, k in tokens if k == "action")
    context = "".join(t for t, k in tokens if k == "context")
    for step in traj.steps:
        assert step.thought in thought
        assert f"{step.action}[{step.argument}]" in action
        if step.observation:
            assert step.observation in context and step.observation not in thought + action
    assert "Observation:" in action  # the header that ends an action is learned, the observation is not


def test_malformed_jsonl_names_line_and_field(tmp_path):
    good = {"question": "Q?", "trajectory": [{"thought": "t", "action": "finish", "argument": "a"}]}
    cases = [
        ("{not json", "line 2: not valid JSON"),
        (json.dumps({"trajectory": good["trajectory"]}), "line 2, field 'question'"),
        (json.dumps({"question": "Q", "trajectory": [{"thought": "t", "action": "teleport", "argument": "x"}]}),
         "line 2, field 'trajectory[0].action'"),
        (json.dumps({"question": "Q", "trajectory": [{"thought": "t", "action": "search", "argument": "x"}]}),
         "trajectory[0].observation"),
        (json.dumps({"question": "Q", "trajectory": [{"thought": "t", "action": "search", "argument": "x",
                                                       "observation": "o"}]}), "last step must be finish"),
    ]
    for line, words in cases:
        path = tmp_path / "t.jsonl"
        path.write_text(json.dumps(good) + "\n" + line + "\n")
        with pytest.raises(DatasetError) as err:
            load_trajectories(path)
        assert words in str(err.value) and str(path) in str(err.value), (line, str(err.value))
    with pytest.raises(DatasetError, match="No training data at"):
        load_trajectories(tmp_path / "missing.jsonl")


def test_malformed_data_trains_nothing(tmp_path):
    from workbench.finetune.jobs import run_job

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "Q", "trajectory": []}\n')
    store = Store(tmp_path / "runs.db")
    cfg = tiny_cfg(tmp_path, data=str(bad))
    store.create_job("j1", "agent", cfg.to_dict(), cfg.output_dir)
    job = run_job("j1", store)
    assert job["state"] == "failed" and "line 1, field 'trajectory'" in job["error"]
    assert store.job_metrics("j1") == [] and latest_checkpoint(cfg.output_dir) is None


def test_traces_export_round_trip(tmp_path):
    from workbench.agent import Agent
    from workbench.testing import ScriptedModel

    good = Agent(ScriptedModel(["Thought: add.\nAction: calculate[2+3]", "Thought: 5.\nAction: finish[5]"])).run("2+3?")
    unfinished = Agent(ScriptedModel(["Thought: hmm.\nAction: calculate[2+3]"]), max_steps=1).run("2+3?")
    cot = Agent(ScriptedModel(["Thought: 5.\nAnswer: 5"]), mode="cot").run("2+3?")
    recs = traces_to_trajectories([good, unfinished, cot])
    assert len(recs) == 1 and [s.action for s in recs[0].steps] == ["calculate", "finish"]
    assert recs[0].steps[0].observation == "5"
    path = tmp_path / "runs.jsonl"
    assert export_trajectories([good, unfinished, cot], path) == 1
    again = parse_trajectories(path.read_text().splitlines())
    assert again[0].to_dict() == recs[0].to_dict()
    with pytest.raises(DatasetError, match="did not end with finish"):
        traces_to_trajectories([unfinished], strict=True)
    with pytest.raises(DatasetError, match="cot run"):
        traces_to_trajectories([cot], strict=True)


def test_traces_from_store_lists_react_runs_and_skips_unreadable_ones(tmp_path, monkeypatch):
    from workbench.agent import Agent
    from workbench.finetune import traces_from_store
    from workbench.testing import ScriptedModel

    store = Store(tmp_path / "runs.db")
    first, second = (Agent(ScriptedModel([f"Thought: {n}.\nAction: finish[{n}]"])).run(f"{n}?") for n in (1, 2))
    for trace in (first, second, Agent(ScriptedModel(["Thought: 5.\nAnswer: 5"]), mode="cot").run("2+3?")):
        store.save_trace(trace)
    assert {t.id for t in traces_from_store(store)} == {first.id, second.id}
    read = store.get_trace
    monkeypatch.setattr(store, "get_trace", lambda run_id: read(run_id) if run_id != first.id else 1 / 0)
    assert [t.id for t in traces_from_store(store)] == [second.id]


def test_preview_html_colours_trained_tokens_and_escapes_text(tiny_chat):
    from workbench.finetune import preview_html

    ex = build_example(tiny_chat, load_trajectories("demo:train", limit=1)[0])
    kinds = [k for _, k in preview(ex, tiny_chat.tokenizer)]
    html = preview_html(ex, tiny_chat.tokenizer, max_tokens=20)
    assert html.startswith(f"<p>{len(kinds)} tokens: <b style='background:#c7e9c0'>{kinds.count('thought')} thought")
    assert html.count('class="wb-tok"') == 20 and "showing the last 20" in html and "<script" not in html


def test_jobs_table_and_job_status_summarise_a_job(tmp_path):
    from workbench.finetune import job_status, jobs_table, refresh
    from workbench.finetune.jobs import JOB_COLUMNS, record_job

    store = Store(tmp_path / "runs.db")
    job_id, out = record_job(tiny_cfg(tmp_path, steps=4), store)
    store.log_metrics(job_id, 3, {"train_loss": 1.5})
    assert job_status(refresh(job_id, store), store.job_metrics(job_id)) == f"**queued** · job `{job_id}` · step 3 / 4"
    store.finish_job(job_id, "done", result={"steps": 4, "adapter_dir": str(out), "final": {"train_loss": 0.25}})
    status = job_status(refresh(job_id, store), store.job_metrics(job_id))
    assert status.startswith("**done**") and status.endswith(f"Result: `{out}`")
    table = jobs_table(store)
    assert list(table.columns) == JOB_COLUMNS and table.iloc[0]["final loss"] == "0.250"
    assert table.iloc[0][["id", "state", "steps"]].tolist() == [job_id, "done", 4]
    failed, _ = record_job(tiny_cfg(tmp_path), store)
    store.finish_job(failed, "failed", error="<b>out of memory</b>")
    assert "Error: &lt;b&gt;out of memory" in job_status(refresh(failed, store))


def test_packing_has_no_padding_and_keeps_every_token(tiny_chat):
    recs = load_trajectories("demo:train", limit=9)
    examples = [build_example(tiny_chat, r) for r in recs]
    batches = pack(examples, 4096, seed=1)
    assert sum(b.n_tokens for b in batches) == sum(len(e) for e in examples)
    assert sum(b.n_examples for b in batches) == len(examples)
    for b in batches:
        assert b.n_tokens <= 4096 and len(b.position_ids) == b.n_tokens == len(b.kinds)
        starts = [i for i, p in enumerate(b.position_ids) if p == 0]
        assert len(starts) == b.n_examples and all(b.kinds[s] == 0 for s in starts)
    assert len(batches) < len(examples)  # several examples share a row


def test_packed_rows_attend_only_within_each_example(tiny_chat):
    """Logits of an example packed after another equal its logits alone: no attention leaks across."""
    recs = load_trajectories("demo:train", limit=2)
    a, b = (build_example(tiny_chat, r) for r in recs)
    batch = pack([a, b], 100_000, shuffle=False)[0]
    model = tiny_chat.model
    with torch.no_grad():
        packed = model(input_ids=torch.tensor([batch.input_ids]), position_ids=torch.tensor([batch.position_ids]),
                       use_cache=False).logits[0]
        first_len = batch.position_ids.index(0, 1)
        second_ids = batch.input_ids[first_len:]
        alone = model(input_ids=torch.tensor([second_ids]), use_cache=False).logits[0]
    assert torch.allclose(packed[first_len:], alone, atol=1e-4)


# ---------------------------------------------------------------- the loop


def test_training_lowers_the_loss_and_weights_split_it(tmp_path):
    from workbench.finetune.loop import train

    seen: list[tuple[int, dict]] = []
    cfg = tiny_cfg(tmp_path, steps=12, max_train_examples=1, learning_rate=1e-2, lora_r=8, lora_dropout=0.0)
    result = train(cfg, on_metric=lambda s, m: seen.append((s, m)), log=lambda _: None)
    losses = [m["train_loss"] for _, m in seen if "train_loss" in m]
    assert len(losses) == 12 and losses[-1] < losses[0] - 0.5
    first = seen[0][1]
    assert first["train_loss"] == pytest.approx(first["train_loss_reasoning"] + first["train_loss_action"], rel=1e-5)
    assert result.trained_tokens > 0 and result.tokens > result.trained_tokens  # prompt/observations not trained
    seen.clear()
    cfg = tiny_cfg(tmp_path / "w", steps=1, max_train_examples=1, reasoning_weight=0.0, action_weight=2.0)
    train(cfg, on_metric=lambda s, m: seen.append((s, m)), log=lambda _: None)
    m = seen[0][1]
    assert m["train_loss"] == pytest.approx(2.0 * m["train_loss_action"], rel=1e-5)


def test_resume_from_a_checkpoint_gives_the_same_weights(tmp_path):
    from workbench.finetune.loop import Cancelled, train
    from workbench.models import load_model

    kw = dict(steps=4, checkpoint_interval=1, max_train_examples=8, batch_tokens=2048, max_length=2048)
    straight = tiny_cfg(tmp_path / "a", **kw)
    train(straight, log=lambda _: None)
    interrupted = tiny_cfg(tmp_path / "b", **kw)
    asked = {"n": 0}

    def stop_after_two() -> bool:
        asked["n"] += 1
        return asked["n"] > 2

    with pytest.raises(Cancelled):
        train(interrupted, should_stop=stop_after_two, log=lambda _: None)
    assert load_checkpoint(latest_checkpoint(interrupted.output_dir), _lora(interrupted), "lora")["step"] == 2
    resumed = train(interrupted, log=lambda _: None)  # same config, same folder: continues at step 3
    assert resumed.steps == 4
    a = load_model(straight.output_dir + "/adapter", cache=False)
    b = load_model(interrupted.output_dir + "/adapter", cache=False)
    sa, sb, base = a.model.state_dict(), b.model.state_dict(), load_model("tiny:3").model.state_dict()
    assert all(torch.allclose(sa[k], sb[k], atol=1e-6) for k in sa)
    assert not all(torch.equal(sa[k], base[k]) for k in sa)  # and it did train


def _lora(cfg):
    from workbench.finetune.loop import _prepare_model
    from workbench.models import tiny_model

    return _prepare_model(cfg, tiny_model(seed=3))


def test_nan_loss_stops_with_a_clear_error(tmp_path):
    from workbench.finetune.loop import TrainingError, train
    from workbench.models import tiny_model

    lm = tiny_model(seed=3)
    with torch.no_grad():
        lm.model.model.embed_tokens.weight[:] = float("nan")
    with pytest.raises(TrainingError, match="loss became nan at step 1.*Lower learning_rate"):
        train(tiny_cfg(tmp_path), lm=lm, log=lambda _: None)


def test_cancel_takes_effect_within_one_step(tmp_path):
    from workbench.finetune.jobs import run_job

    store = Store(tmp_path / "runs.db")
    cfg = tiny_cfg(tmp_path, steps=50, log_interval=1)
    store.create_job("c1", "agent", cfg.to_dict(), cfg.output_dir)
    calls = {"n": 0}
    real = store.cancel_requested

    def cancel_after_three(job_id):
        calls["n"] += 1
        return calls["n"] > 3 or real(job_id)

    store.cancel_requested = cancel_after_three  # the worker asks before each step
    job = run_job("c1", store)
    assert job["state"] == "cancelled"
    assert max(p["step"] for p in store.job_metrics("c1")) == 3


def test_adapter_loads_as_a_model_with_its_prompt_settings(tmp_path):
    from workbench.agent import Agent
    from workbench.finetune.loop import train
    from workbench.models import load_model

    result = train(tiny_cfg(tmp_path, steps=1), log=lambda _: None)
    lm = load_model(result.adapter_dir, cache=False)
    assert lm.source == result.adapter_dir and lm.meta["agent_defaults"]["n_examples"] == 0
    agent = Agent(lm, max_steps=1)
    assert agent.config.n_examples == 0 and agent.prompt.examples == []
    assert Agent(lm, max_steps=1, n_examples=2).config.n_examples == 2  # an explicit choice wins
    size = sum(p.stat().st_size for p in (tmp_path / "out" / "adapter").iterdir())
    assert size < 5_000_000


def test_continual_learning_reports_forgetting(tmp_path):
    from workbench.finetune.continual import continual

    cfg = tiny_cfg(tmp_path, steps=1, data="demo:train:arithmetic", continual_data="demo:train:single_hop",
                   replay_fraction=0.25, probe="demo:dev", probe_size=1, max_train_examples=3)
    points = []
    result = continual(cfg, on_metric=lambda s, m: points.append((s, m)), log=lambda _: None)
    assert result["forgetting"] == pytest.approx(result["first_success_before"] - result["first_success_after"])
    assert {s for s, _ in points} >= {1, 2}  # both phases on one step axis
    assert os.path.isdir(result["phase1_adapter"]) and os.path.isdir(result["adapter_dir"])


# ---------------------------------------------------------------- jobs in their own process


def _wait_for(pred, timeout=180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.3)
    return False


def test_job_runs_in_its_own_process_and_streams_metrics(tmp_path):
    from workbench.finetune import submit, wait

    store = Store(tmp_path / "runs.db")
    job_id = submit(tiny_cfg(tmp_path, steps=3), store)
    assert store.get_job(job_id)["pid"] != os.getpid()
    job = wait(job_id, store, timeout=300)
    assert job["state"] == "done", job["error"]
    names = {p["name"] for p in store.job_metrics(job_id)}
    assert {"train_loss", "train_loss_reasoning", "train_loss_action", "lr", "tokens_per_s"} <= names
    assert os.path.isdir(job["result"]["adapter_dir"])


def test_sigkill_marks_the_job_failed_and_keeps_the_checkpoint(tmp_path):
    from workbench.finetune import refresh, submit
    from workbench.finetune.loop import _prepare_model
    from workbench.models import tiny_model

    store = Store(tmp_path / "runs.db")
    cfg = tiny_cfg(tmp_path, steps=10_000, checkpoint_interval=1)
    job_id = submit(cfg, store)
    assert _wait_for(lambda: latest_checkpoint(cfg.output_dir) is not None and
                     len(store.job_metrics(job_id)) > 0), "the worker never wrote a checkpoint"
    os.kill(store.get_job(job_id)["pid"], signal.SIGKILL)
    assert _wait_for(lambda: refresh(job_id, store)["state"] == "failed", 30)
    job = store.get_job(job_id)
    assert "signal 9" in job["error"] and "resume" in job["error"]
    model = _prepare_model(cfg, tiny_model(seed=3))
    state = load_checkpoint(latest_checkpoint(cfg.output_dir), model, "lora")
    assert state["step"] >= 1 and state["config"]["steps"] == 10_000
    assert store.integrity_check() == "ok"


def test_two_processes_train_through_accelerate(tmp_path):
    store_path = tmp_path / "runs.db"
    cfg = tiny_cfg(tmp_path, steps=2, max_train_examples=8, batch_tokens=2048, max_length=2048)
    toml = tmp_path / "run.toml"
    toml.write_text(cfg.to_toml())
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-m", "workbench.cli", "--store", str(store_path), "finetune", "--config",
                          str(toml), "--processes", "2"], capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    store = Store(store_path)
    job = store.list_jobs()[0]
    assert job["state"] == "done"
    log = (tmp_path / "out" / "log.txt").read_text()
    assert "2 process(es)" in log
    assert max(p["step"] for p in store.job_metrics(job["id"])) == 2


def test_cli_trains_in_process_and_reports(tmp_path):
    from workbench.cli import main

    store_path = str(tmp_path / "runs.db")
    toml = tmp_path / "run.toml"
    assert main(["finetune", "--write-config", str(toml)]) == 0
    assert FineTuneConfig.from_toml(toml) == FineTuneConfig()
    code = main(["--store", store_path, "finetune", "--config", str(toml), "--set", "base_model=tiny:3", "--set",
                 "steps=2", "--set", "max_train_examples=2", "--set", "batch_tokens=4096", "--set", "max_length=4096",
                 "--set", 'probe=""', "--set", 'eval_data=""', "--set", f'output_dir="{tmp_path / "cli"}"'])
    assert code == 0
    job = Store(store_path).list_jobs()[0]
    assert job["state"] == "done" and len(Store(store_path).job_metrics(job["id"])) >= 2
    assert main(["--store", store_path, "finetune", "--set", "steps=0"]) == 2  # a clear error, exit 2


def test_exported_half_precision_adapter_loads_like_the_original(tmp_path):
    from workbench.finetune.checkpoint import export_adapter
    from workbench.finetune.loop import train
    from workbench.models import load_model

    result = train(tiny_cfg(tmp_path, steps=2, learning_rate=1e-2), log=lambda _: None)
    small = export_adapter(result.adapter_dir, tmp_path / "shipped")
    full_size = (tmp_path / "out" / "adapter" / "adapter_model.safetensors").stat().st_size
    assert (small / "adapter_model.safetensors").stat().st_size < 0.6 * full_size
    a, b = load_model(result.adapter_dir, cache=False), load_model(str(small), cache=False)
    ids = torch.tensor([list(range(40, 90))])
    with torch.no_grad():
        la, lb = a.model(input_ids=ids).logits, b.model(input_ids=ids).logits
    assert torch.allclose(la, lb, atol=1e-3) and b.meta["agent_defaults"] == a.meta["agent_defaults"]
