"""Attribution on a tiny random model: exact sequences, agreement with Captum's own LLMAttribution,
the model-randomisation sanity check, grounding, diffs, exports and the store cache."""

import math

import pytest

from workbench import Agent
from workbench.attribution import (attribute_cached, attribute_step, attribution_diff, captum_reference,
                                   grounding_timeline, randomized_copy, rank_correlation)
from workbench.attribution.engine import PrefixScorer, build_sequence
from workbench.errors import ConfigError, InputError
from workbench.models import tiny_model


@pytest.fixture(scope="module")
def lm():
    return tiny_model(seed=0, chat_template=True)


@pytest.fixture(scope="module")
def trace(lm):
    from workbench.corpus import Corpus, Document

    corpus = Corpus([Document("Varnholt", "Varnholt is a city. It was founded in 1312.")])
    # zero-shot keeps the byte-level prompt short, so Captum's slow reference stays quick
    return Agent(lm, corpus=corpus, max_steps=2, max_new_tokens=6, n_examples=0).run("When was Varnholt founded?")


def test_the_rebuilt_sequence_is_exactly_what_the_model_saw(lm, trace):
    for step in trace.steps:
        seq = build_sequence(trace, step.index, lm.tokenizer, "step")
        assert seq.prompt_len == step.generation.prompt_tokens
        assert [seq.ids[t] for t in seq.targets] == step.generation.token_ids
        scorer = PrefixScorer(lm, seq, seq.features())
        assert scorer.baseline.tolist() == pytest.approx(step.generation.logprobs, abs=1e-4)  # same ids, same log-probs


def test_fast_feature_ablation_matches_captums_llmattribution(lm, trace):
    fast = attribute_step(trace, 2, target="action", model=lm)
    ref = captum_reference(trace, 2, target="action", model=lm)
    assert [f.label for f in fast.features] == [f.label for f in ref.features]
    assert max(abs(a - b) for a, b in zip(fast.scores, ref.scores)) < 5e-3
    assert max(abs(a - b) for ra, rb in zip(fast.matrix, ref.matrix) for a, b in zip(ra, rb)) < 5e-3
    assert fast.forward_passes < ref.forward_passes


def test_feature_ablation_scores_are_exact_log_probability_differences(lm, trace):
    result = attribute_step(trace, 2, target="step", model=lm)
    seq = build_sequence(trace, 2, lm.tokenizer, "step")
    scorer = PrefixScorer(lm, seq, result.features)
    for j in (0, len(result.features) - 1):
        expected = float(scorer.baseline.sum() - scorer.score([j]).sum())
        assert result.scores[j] == pytest.approx(expected, abs=1e-4)
    for j in range(len(result.features)):  # the total is the sum of the per-token rows
        assert result.scores[j] == pytest.approx(sum(row[j] for row in result.matrix), abs=1e-3)
    assert len(result.matrix) == len(result.row_labels) == len(result.target_ids)


def test_removing_the_feature_right_before_the_target(lm, trace):
    """This step's thought directly precedes its action: without it, the action follows the prompt."""
    import torch

    seq = build_sequence(trace, 2, lm.tokenizer, "action")
    features = seq.features()
    j = next(i for i, f in enumerate(features) if f.label == "thought 2 (this step)")
    got = PrefixScorer(lm, seq, features).score([j])
    drop = set(range(features[j].start, features[j].end))
    kept = [p for p in range(seq.targets[-1] + 1) if p not in drop]
    with torch.no_grad():
        logp = torch.log_softmax(lm.model(input_ids=torch.tensor([[seq.ids[p] for p in kept]])).logits[0].float(), -1)
    where = {p: i for i, p in enumerate(kept)}
    assert got.tolist() == pytest.approx([float(logp[where[t] - 1, seq.ids[t]]) for t in seq.targets], abs=1e-4)


def test_targets_and_features(lm, trace):
    thought = attribute_step(trace, 2, target="thought", model=lm)
    action = attribute_step(trace, 2, target="action", model=lm)
    labels = [f.label for f in action.features]
    assert "thought 2 (this step)" in labels and "thought 2 (this step)" not in [f.label for f in thought.features]
    assert {"instruction", "tools", "task", "thought 1", "action 1", "observation 1"} <= set(labels)
    assert len(thought.target_ids) + len(action.target_ids) == len(trace.steps[1].generation.token_ids)


def test_token_granularity_scores_single_tokens(lm, trace):
    result = attribute_step(trace, 2, target="action", granularity="token", segments=["task"], model=lm)
    task = next(s for s in trace.steps[1].prompt_segments if s.kind == "task")
    assert len(result.features) == task.end - task.start
    assert all(f.end - f.start == 1 and f.label.startswith("task#") for f in result.features)


def test_shapley_runs_and_is_seeded(lm, trace):
    a = attribute_step(trace, 2, target="action", method="shapley", n_samples=2, seed=3, model=lm)
    b = attribute_step(trace, 2, target="action", method="shapley", n_samples=2, seed=3, model=lm)
    assert a.scores == pytest.approx(b.scores) and a.settings["n_samples"] == 2


def test_integrated_gradients_is_complete(lm, trace):
    """IG's attributions add up to f(input) - f(baseline) (the completeness axiom), up to the Riemann error."""
    import torch

    result = attribute_step(trace, 2, target="action", method="layer_integrated_gradients", n_steps=32, model=lm)
    seq = build_sequence(trace, 2, lm.tokenizer, "action")
    ids = seq.ids[: seq.targets[-1] + 1]
    base = list(ids)
    for f in result.features:
        base[f.start:f.end] = [lm.pad_token_id] * (f.end - f.start)

    def total(x):
        with torch.no_grad():
            logp = torch.log_softmax(lm.model(input_ids=torch.tensor([x])).logits[0].float(), -1)
        return sum(float(logp[t - 1, seq.ids[t]]) for t in seq.targets)

    gap = total(ids) - total(base)
    assert sum(result.scores) == pytest.approx(gap, rel=0.15, abs=0.05)
    assert result.backward_passes == 32 and result.row_labels == ["(all target tokens)"]


def test_model_randomisation_changes_attributions(lm, trace):
    trained = attribute_step(trace, 2, target="action", model=lm)
    randomised = attribute_step(trace, 2, target="action", model=randomized_copy(lm, seed=1))
    assert max(abs(a - b) for a, b in zip(trained.scores, randomised.scores)) > 1e-3
    assert rank_correlation(trained.scores, randomised.scores) < 0.99


def test_grounding_shares(lm, trace):
    result = attribute_step(trace, 2, target="step", model=lm)
    shares = result.grounding()
    assert set(shares) == {"observations", "examples", "task", "own thoughts", "instruction"}
    assert sum(shares.values()) == pytest.approx(1.0) or sum(shares.values()) == 0
    timeline = grounding_timeline([result, attribute_step(trace, 1, target="step", model=lm)])
    assert list(timeline["step"].unique()) == [1, 2] and len(timeline) == 10


def test_diff_under_another_model_aligns_segments(lm, trace):
    a = attribute_step(trace, 2, target="action", model=lm)
    b = attribute_step(trace, 2, target="action", model=tiny_model(seed=5, chat_template=True))
    diff = attribution_diff(a, b, "seed0", "seed5")
    assert list(diff["label"]) == [f.label for f in a.features]
    assert diff["diff"].tolist() == pytest.approx([y - x for x, y in zip(a.scores, b.scores)])
    with pytest.raises(InputError, match="same target"):
        attribution_diff(a, attribute_step(trace, 2, target="thought", model=lm))


def test_exports_and_round_trip(lm, trace, tmp_path):
    result = attribute_step(trace, 2, target="action", model=lm)
    df = result.to_dataframe()
    assert list(df.columns) == ["run", "step", "target", "method", "feature", "label", "segment", "kind", "score",
                                "text"]
    assert len(df) == len(result.features)
    page = result.to_html()
    assert page.startswith("<!doctype html>") and "Grounding" in page and "<script" not in page
    again = type(result).from_dict(result.to_dict())
    assert again == result


def test_results_are_cached_in_the_store(lm, trace, store):
    first, cached = attribute_cached(store, trace, 2, "action", model=lm)
    second, cached_again = attribute_cached(store, trace, 2, "action", model=lm)
    assert not cached and cached_again and second == first
    assert store.list_attributions(trace.id)[0]["method"] == "feature_ablation"


@pytest.mark.parametrize("kw,error,message", [
    ({"method": "ig"}, InputError, "Did you mean 'layer_integrated_gradients'"),
    ({"granularity": "word"}, InputError, "Available: segment, sentence, token"),
    ({"target": "plan"}, InputError, "Available: thought, action, answer, step"),
    ({"target": "answer"}, InputError, "no answer tokens"),
    ({"n_samples": 0}, ConfigError, "n_samples"),
    ({"segments": ["nope"]}, InputError, "No segment"),
])
def test_bad_requests_name_the_fix(lm, trace, kw, error, message):
    with pytest.raises(error, match=message):
        attribute_step(trace, 1, model=lm, **kw)


def test_a_missing_step(lm, trace):
    with pytest.raises(InputError, match="has no step 9"):
        attribute_step(trace, 9, model=lm)


def test_rank_correlation():
    assert rank_correlation([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert not math.isnan(rank_correlation([1, 1], [2, 2]))


def test_the_method_table_drives_the_choices_and_the_errors(lm, trace):
    import inspect

    from workbench.attribution import ATTRIBUTION_METHODS, METHODS
    from workbench.attribution.methods import app_settings, grounding_method

    assert ATTRIBUTION_METHODS == tuple(METHODS) == ("feature_ablation", "shapley", "surrogate", "kernel_shap", "lime",
                                                     "layer_integrated_gradients")
    listed = f"Available: {', '.join(METHODS)}."
    with pytest.raises(InputError) as err:
        attribute_step(trace, 1, model=lm, method="nope")
    assert str(err.value) == f"Unknown attribution method 'nope'. {listed}"
    with pytest.raises(InputError, match="Did you mean 'layer_integrated_gradients'") as err:
        attribute_step(trace, 1, model=lm, method="ig")
    assert str(err.value).endswith(listed)
    with pytest.raises(ConfigError, match="Unknown attribution setting 'n_sample'.*n_samples, seed \\(shapley\\)"):
        attribute_step(trace, 1, model=lm, n_sample=3)
    for name, entry in METHODS.items():
        assert entry.name == name and entry.help and set(entry.granularities) <= {"segment", "sentence", "token"}
        runner_settings = [p.name for p in inspect.signature(entry.runner).parameters.values()
                           if p.kind is inspect.Parameter.KEYWORD_ONLY]
        assert runner_settings == [s.name for s in entry.settings]  # the runner takes exactly its settings
        for s in entry.settings:
            assert isinstance(s.default, s.type) and s.help and s.label
            assert (s.low is None or s.low <= s.default) and (s.high is None or s.default <= s.high)
            s.check(s.default)
    # the app's /attribute endpoint takes these after the segments, in this order
    assert [s.name for s in app_settings()] == ["n_samples", "n_ablations", "n_perturbations", "n_steps"]
    assert grounding_method("layer_integrated_gradients") == "feature_ablation"
    assert grounding_method("shapley") == "shapley"


def test_defaults_come_from_the_table_and_are_recorded(lm, trace):
    from workbench.attribution import METHODS

    shapley = attribute_step(trace, 1, target="action", method="shapley", model=lm)
    assert {k: shapley.settings[k] for k in ("n_samples", "seed")} == METHODS["shapley"].defaults()
    ablation = attribute_step(trace, 1, target="action", n_steps=5, model=lm)  # another method's setting: ignored
    assert "n_steps" not in ablation.settings


def test_concurrent_attributions_on_one_model_keep_their_own_counts(lm, trace):
    """Passes are counted through each attribution's own counter, never by patching the shared model."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    model = lm.model
    class_forward = type(model).forward
    jobs = {
        "ablation": lambda: attribute_step(trace, 2, target="action", model=lm),
        "shapley": lambda: attribute_step(trace, 2, target="action", method="shapley", n_samples=2, model=lm),
        "captum": lambda: captum_reference(trace, 2, target="action", model=lm),
    }
    alone = {name: job() for name, job in jobs.items()}
    start = threading.Barrier(len(jobs))

    def together(job):
        start.wait()
        return [job() for _ in range(2)]

    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = {name: pool.submit(together, job) for name, job in jobs.items()}
        runs = {name: future.result() for name, future in futures.items()}
    for name, results in runs.items():
        for r in results:
            assert (r.forward_passes, r.backward_passes) == (alone[name].forward_passes, alone[name].backward_passes), name
    assert runs["ablation"][0].scores == pytest.approx(alone["ablation"].scores, abs=1e-4)
    assert runs["captum"][1].scores == pytest.approx(alone["captum"].scores, abs=1e-4)
    assert type(model).forward is class_forward and "forward" not in vars(model)
    assert model.forward.__func__ is class_forward
