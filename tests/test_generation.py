"""Incremental decoding on a tiny random model: cache reuse, exactness against the naive loop, stops."""

import math

import pytest
import torch

from workbench.agent import Agent
from workbench.errors import ConfigError
from workbench.generation import ContextFull, DecodeSession, GenerationConfig, PrefixCache
from workbench.naive import NaiveSession
from workbench.parsing import react_stop
from workbench.sampling import draft_from_context, pick_token, sampling_rng, top_k_filter, top_p_filter, trim_to_cut


def test_second_generate_prefills_only_what_was_appended(tiny):
    s = DecodeSession(tiny)
    s.feed("Question: what?\nThought:", "task", "task")
    g1 = s.generate(max_new_tokens=8)
    assert g1.reused_tokens == 0 and g1.prefill_tokens == g1.prompt_tokens
    s.feed("\nObservation: abc\nThought:", "observation", "observation 1")
    g2 = s.generate(max_new_tokens=8)
    # The cache holds the prompt and the generated ids (all but the last one, which was never fed back).
    assert g1.prompt_tokens + len(g1.token_ids) - 1 <= g2.reused_tokens <= g1.prompt_tokens + len(g1.token_ids)
    assert g2.prefill_tokens <= len(s.tokenizer("\nObservation: abc\nThought:")["input_ids"]) + 1
    assert g2.prompt_tokens == g2.reused_tokens + g2.prefill_tokens


def test_ids_are_appended_never_retokenized(tiny):
    s = DecodeSession(tiny)
    s.feed("abc", "task", "task")
    g = s.generate(max_new_tokens=6)
    ids_before = list(s.ids)
    s.feed("def", "observation", "o")
    assert s.ids[: len(ids_before)] == ids_before
    assert s.ids[len(ids_before):] == tiny.tokenizer("def", add_special_tokens=False)["input_ids"]
    assert ids_before[-len(g.token_ids):] == g.token_ids


def test_logprobs_match_a_full_forward_pass(tiny):
    s = DecodeSession(tiny)
    s.feed("Question: 2 + 3?\nThought:")
    prompt = list(s.ids)
    g = s.generate(max_new_tokens=6)
    with torch.no_grad():
        logits = tiny.model(torch.tensor([prompt + g.token_ids])).logits[0]  # (seq, vocab)
    logp = torch.log_softmax(logits.float(), -1)
    expected = [float(logp[len(prompt) - 1 + i, t]) for i, t in enumerate(g.token_ids)]
    assert g.logprobs == pytest.approx(expected, abs=1e-4)
    assert all(lp <= 0 for lp in g.logprobs)
    assert [int(logp[len(prompt) - 1 + i].argmax()) for i in range(len(g.token_ids))] == g.token_ids  # greedy


def test_agent_with_cache_matches_the_naive_loop_exactly(tiny, corpus):
    kwargs = dict(corpus=corpus, max_steps=4, max_new_tokens=24)
    for task in ("What is the population of Varnholt?",):
        fast = Agent(tiny, **kwargs).run(task)
        slow = Agent(tiny, reuse_cache=False, **kwargs).run(task)
        assert [s.generation.token_ids for s in fast.steps] == [s.generation.token_ids for s in slow.steps]
        assert [s.completion for s in fast.steps] == [s.completion for s in slow.steps]
        for a, b in zip(fast.steps, slow.steps):
            assert a.generation.logprobs == pytest.approx(b.generation.logprobs, abs=1e-3)
        assert all(s.generation.reused_tokens > 0 for s in fast.steps[1:])
        assert all(s.generation.reused_tokens == 0 for s in slow.steps)


def test_segments_cover_the_ids_contiguously(tiny_chat, corpus):
    agent = Agent(tiny_chat, corpus=corpus, max_steps=2, max_new_tokens=12)
    trace = agent.run("When was Varnholt founded?")
    segs = trace.steps[-1].prompt_segments
    assert segs[0].start == 0
    for a, b in zip(segs, segs[1:]):
        assert a.end == b.start
    assert segs[0].text.startswith("<|im_start|>system\n")
    assert any(s.text.startswith("<|im_end|>\n<|im_start|>user\n") for s in segs)


def test_stop_function_cuts_and_the_cache_is_cropped(tiny):
    s = DecodeSession(tiny)
    s.feed("x")
    g = s.generate(max_new_tokens=20, stop=lambda text: 3 if len(text) >= 6 else None)
    assert g.stop == "stop_string" and len(g.text) <= 4 and len(s.ids) == 1 + len(g.token_ids)
    s.feed("y")
    g2 = s.generate(max_new_tokens=3)
    assert g2.prompt_tokens == len(s.ids) - len(g2.token_ids)


def test_sampling_is_reproducible_with_a_seed(tiny):
    def sample(seed):
        s = DecodeSession(tiny)
        s.feed("Question:")
        return s.generate(config=GenerationConfig(max_new_tokens=10, temperature=1.0, top_p=0.9, top_k=50, seed=seed)).token_ids

    assert sample(1) == sample(1)
    assert any(sample(1) != sample(seed) for seed in range(2, 6))


def test_context_full(tiny):
    s = DecodeSession(tiny)
    s.ids = [1] * tiny.max_length
    with pytest.raises(ContextFull):
        s.generate(max_new_tokens=2)


def test_naive_session_refuses_sampling(tiny):
    s = NaiveSession(tiny)
    s.feed("x")
    with pytest.raises(ConfigError, match="greedy baseline"):
        s.generate(config=GenerationConfig(temperature=0.7))


@pytest.mark.parametrize("kw", [{"max_new_tokens": 0}, {"temperature": 9}, {"top_p": 0}, {"top_k": -1}])
def test_generation_config_is_validated(kw):
    with pytest.raises(ConfigError):
        GenerationConfig(**kw)


def test_trim_to_cut_keeps_a_straddling_token_only_for_whitespace():
    pieces = ["Action:", "Action: search[X", "Action: search[X]\n", "Action: search[X]\nObs"]
    assert trim_to_cut(pieces, len("Action: search[X]")) == 3
    assert trim_to_cut(["ab", "abcd"], 3) == 1
    assert trim_to_cut(["ab", "abc"], 3) == 2


def test_react_stop_in_a_live_session(tiny):
    s = DecodeSession(tiny)
    s.feed("x")
    g = s.generate(max_new_tokens=5, stop=react_stop)
    assert g.stop in ("max_new_tokens", "stop_string", "eos")
    assert math.isfinite(sum(g.logprobs))


def test_greedy_lookahead_changes_nothing_but_the_number_of_passes(tiny):
    def run(lookahead):
        s = DecodeSession(tiny)
        s.feed("abcabcabcabcabcabcabc Question: abcabcabc")
        return s.generate(config=GenerationConfig(max_new_tokens=40, lookahead=lookahead))

    plain, fast = run(0), run(8)
    assert fast.token_ids == plain.token_ids
    assert fast.logprobs == pytest.approx(plain.logprobs, abs=1e-4)
    assert plain.draft_tokens == plain.accepted_tokens == 0
    assert fast.draft_tokens > 0 and 0 <= fast.accepted_tokens <= fast.draft_tokens


def test_draft_finds_the_latest_earlier_continuation():
    assert draft_from_context([1, 2, 3, 9, 1, 2, 3, 7, 8, 5, 1, 2, 3], 3) == [7, 8, 5]  # the latest match wins
    assert draft_from_context([1, 2, 3, 9, 1, 2, 3, 7, 8, 5, 1, 2, 3], 2) == [7, 8]  # at most n
    assert draft_from_context([4, 5, 6], 3) == []  # no earlier occurrence: nothing
    assert draft_from_context([1, 2, 3, 4, 2, 3], 3) == [4, 2, 3]  # no earlier 3-gram: the last 2 ids match
    assert draft_from_context([1, 2, 1, 2], 0) == []


def test_top_k_keeps_the_k_highest_scores():
    scores = torch.tensor([0.5, 3.0, -1.0, 2.0, 1.0])
    kept = top_k_filter(scores, 2)
    assert torch.isfinite(kept).tolist() == [False, True, False, True, False]
    assert kept[1] == 3.0 and kept[3] == 2.0  # kept scores are unchanged
    assert torch.isfinite(top_k_filter(scores, 10)).all()  # k beyond the vocabulary keeps all


def test_top_p_keeps_the_nucleus():
    scores = torch.log(torch.tensor([0.1, 0.5, 0.3, 0.1]))
    assert torch.isfinite(top_p_filter(scores, 0.4)).tolist() == [False, True, False, False]  # 0.5 alone passes p
    assert torch.isfinite(top_p_filter(scores, 0.7)).tolist() == [False, True, True, False]  # the one crossing p stays
    assert torch.isfinite(top_p_filter(scores, 1.0)).all()


def test_greedy_is_the_argmax_and_sampling_follows_the_seed_and_the_filters():
    logits = torch.tensor([0.0, 2.0, 5.0, 1.0])
    assert pick_token(logits, GenerationConfig()) == 2  # greedy needs no generator
    hot = GenerationConfig(temperature=1.0, top_k=2)
    draws = [pick_token(logits, hot, sampling_rng(seed)) for seed in range(40)]
    assert set(draws) <= {1, 2} and draws == [pick_token(logits, hot, sampling_rng(seed)) for seed in range(40)]
    only = GenerationConfig(temperature=1.0, top_p=0.5)  # p(2) > 0.9: the nucleus is that one token
    assert {pick_token(logits, only, sampling_rng(seed)) for seed in range(10)} == {2}


def test_the_prefix_cache_copies_in_and_out_and_forgets_the_least_recently_used():
    cache = PrefixCache(size=2)
    stored = [1, 2]
    cache.put(("m", (1,)), stored)
    stored.append(3)  # the caller's object changing later does not change the stored copy
    assert cache.get(("m", (1,))) == [1, 2]
    cache.get(("m", (1,))).append(9)  # nor does changing what get returned
    cache.put(("m", (2,)), [2])
    cache.get(("m", (1,)))  # (1,) is now the most recently used
    cache.put(("m", (3,)), [3])
    assert len(cache) == 2 and cache.get(("m", (2,))) is None and cache.get(("m", (1,))) == [1, 2]
    cache.clear()
    assert len(cache) == 0


def test_the_prompt_prefix_is_shared_across_runs_without_changing_outputs(tiny, corpus):
    from workbench.generation import clear_prefix_cache

    clear_prefix_cache()
    kwargs = dict(corpus=corpus, max_steps=2, max_new_tokens=10, mode="act")  # act: one generation per step
    first = Agent(tiny, **kwargs).run("When was Varnholt founded?")
    second = Agent(tiny, **kwargs).run("How long is the Drume?")
    alone = Agent(tiny, share_prefix=False, **kwargs).run("How long is the Drume?")
    task_start = next(s.start for s in second.steps[0].prompt_segments if s.kind == "task")
    assert first.steps[0].generation.reused_tokens == 0  # nothing to share yet: the prefix is computed and kept
    assert second.steps[0].generation.reused_tokens == task_start  # everything before the task came from the store
    assert second.steps[0].generation.prefill_tokens == second.steps[0].generation.prompt_tokens - task_start
    assert alone.steps[0].generation.reused_tokens == 0
    assert [s.generation.token_ids for s in second.steps] == [s.generation.token_ids for s in alone.steps]
