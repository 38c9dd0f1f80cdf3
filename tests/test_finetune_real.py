"""Fine-tuning on the real embedded model (marked real_model; runs in CI on the CPU)."""

from __future__ import annotations

import pytest

from workbench import Agent, load_model, load_tasks
from workbench.finetune import FineTuneConfig, build_example, load_trajectories, preview

pytestmark = pytest.mark.real_model
SOLVED_TASK = "test-bridge-0001"  # a two-hop task the shipped adapter solves greedily (the base model does not)
pytest.importorskip("peft")


def test_trained_tokens_are_the_thoughts_and_actions_on_the_real_tokenizer():
    lm = load_model()
    traj = load_trajectories("demo:train", limit=3)[2]
    tokens = preview(build_example(lm, traj, prompt="react-tuned"), lm.tokenizer)
    thought = "".join(t for t, k in tokens if k == "thought")
    action = "".join(t for t, k in tokens if k == "action")
    assert thought.strip().startswith(traj.steps[0].thought.split()[0])
    for step in traj.steps:
        assert step.thought in thought and f"{step.action}[{step.argument}]" in action
    assert "<|im_start|>" not in thought + action  # the chat markers are never trained


def test_one_lora_step_on_the_real_model_then_the_adapter_runs(tmp_path):
    from workbench.finetune.loop import train

    cfg = FineTuneConfig(steps=1, max_train_examples=2, batch_tokens=1024, max_length=1024, eval_data="", probe="",
                         prompt="react-tuned", warmup_steps=0, output_dir=str(tmp_path / "out"))
    result = train(cfg, log=lambda _: None)
    assert result.steps == 1 and 0 < result.final["train_loss"] < 10
    tuned = load_model(result.adapter_dir, cache=False)
    assert tuned.meta["base_model"] == "embedded" and tuned.n_parameters == load_model().n_parameters
    trace = Agent(tuned, max_steps=2).run(load_tasks("test", types=["single_hop"])[0].question)
    assert trace.prompt_name == "react-tuned" and trace.steps


def test_the_shipped_adapter_loads_runs_zero_shot_and_solves_a_test_task():
    from workbench.evaluation import exact_match
    from workbench.models import SHIPPED_ADAPTER, shipped_adapter

    folder = shipped_adapter()
    assert folder is not None and folder.name == SHIPPED_ADAPTER
    assert sum(p.stat().st_size for p in folder.iterdir()) <= 20 * 2**20  # the 20 MB
    tuned = load_model(str(folder))
    agent = Agent(tuned, max_steps=8)
    assert agent.prompt.name == "react-tuned" and agent.prompt.examples == []
    task = next(t for t in load_tasks("test") if t.id == SOLVED_TASK)
    trace = agent.run(task.question)
    assert exact_match(trace.answer, [task.answer, *task.aliases]) == 1.0, [str(s.action) for s in trace.steps]
    assert [s.action.name for s in trace.steps if s.action][-1] == "finish"
