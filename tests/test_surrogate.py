"""The ContextCite-style surrogate, sentence features, prefix-sharing mask order, the dependency map,
progress and cancel, and the fast token-level integrated gradients."""

import importlib.util
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench import Agent
from workbench.attribution import METHODS, attribute_step, dependency_map
from workbench.attribution.engine import PrefixScorer, build_sequence, sentence_spans
from workbench.attribution.surrogate import draw_masks, surrogate_fit
from workbench.errors import Cancelled, ConfigError
from workbench.models import tiny_model


class LinearScorer:
    """An oracle: the target's log p (one token) falls by exactly w[i] when feature i is removed."""

    def __init__(self, weights, full=-3.0):
        self.features = list(range(len(weights)))
        self.weights, self.full = weights, full
        self.baseline = torch.tensor([full])

    def score(self, absent):
        return torch.tensor([self.full - sum(self.weights[i] for i in absent)])


@pytest.fixture(scope="module")
def lm():
    return tiny_model(seed=0, chat_template=True)


@pytest.fixture(scope="module")
def trace(lm):
    from workbench.corpus import Corpus, Document

    corpus = Corpus([Document("Varnholt", "Varnholt is a city in Quessaland. It lies on the river Drume. It was "
                              "founded in 1312. Its population is 48,200.")])
    return Agent(lm, corpus=corpus, max_steps=2, max_new_tokens=6, n_examples=1).run("When was Varnholt founded?")


def _bench_module(name):
    path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_masks_are_drawn_as_the_context_cite_package_draws_them():
    from context_cite.utils import _create_mask  # noqa: PLC2701 - the package's own mask function

    masks = draw_masks(9, n_masks=5, keep_prob=0.5, seed=3)
    assert all((masks[i] == _create_mask(9, 0.5, 3 + i)).all() for i in range(5))
    assert masks.dtype == bool and 0 < masks.mean() < 1


def test_the_surrogate_recovers_a_linear_model():
    weights = [2.0, 0.0, 0.7, -0.4, 0.0, 1.3]
    fit = surrogate_fit(LinearScorer(weights), n_ablations=48, mask_seed=0, keep_prob=0.5, lasso_alpha=1e-5,
                        output="log_prob")
    assert np.allclose(fit["weights"], weights, atol=1e-3)
    assert fit["r2"] == pytest.approx(1.0, abs=1e-6)
    assert fit["bias"] == pytest.approx(-3.0 - sum(weights), abs=1e-2)  # log p with every feature removed


def test_the_surrogate_sees_redundant_features_that_leave_one_out_misses():
    """Two copies of one fact: removing either alone changes nothing, removing both costs 2."""

    class Redundant(LinearScorer):
        def score(self, absent):
            return torch.tensor([self.full - (2.0 if {0, 1} <= set(absent) else 0.0)])

    scorer = Redundant([0.0] * 5)
    leave_one_out = [float(scorer.full - scorer.score([i])[0]) for i in range(5)]
    fit = surrogate_fit(scorer, n_ablations=64, mask_seed=0, keep_prob=0.5, lasso_alpha=1e-3, output="log_prob")
    assert leave_one_out[:2] == [0.0, 0.0]
    assert min(fit["weights"][:2]) > 0.5 and max(abs(w) for w in fit["weights"][2:]) < 0.3


def test_our_surrogate_equals_the_context_cite_package_on_the_same_masks(lm, trace):
    package_scores = _bench_module("_contextcite").package_scores
    step = trace.steps[-1].index
    seq = build_sequence(trace, step, lm.tokenizer, "thought")
    features = seq.features("sentence", None, lm.tokenizer)
    theirs = package_scores(lm, seq, features, n_ablations=32, lasso_alpha=1e-4, output="logit_prob")
    ours = surrogate_fit(PrefixScorer(lm, seq, features), n_ablations=32, mask_seed=0, keep_prob=0.5,
                         lasso_alpha=1e-4, output="logit_prob")
    assert (theirs["masks"] == ours["masks"]).all()
    assert np.abs(theirs["outputs"] - ours["outputs"]).max() < 1e-4  # the same log-odds of the target per mask
    assert np.abs(np.array(theirs["weights"]) - ours["weights"]).max() < 1e-4
    assert np.abs(ours["weights"]).max() > 1e-3  # not an all-zero fit that would agree trivially
    assert ours["outputs"].std() > 0


def test_masks_in_prefix_order_score_the_same_and_recompute_less(lm, trace):
    step = trace.steps[-1].index
    seq = build_sequence(trace, step, lm.tokenizer, "step")
    features = seq.features("sentence", None, lm.tokenizer)
    masks = draw_masks(len(features), n_masks=24, keep_prob=0.5, seed=1)
    variants = [[j for j in range(len(features)) if not m[j]] for m in masks]
    alone = PrefixScorer(lm, seq, features)
    one_by_one = []
    for v in variants:  # a fresh scorer per variant: each starts from the full sequence's cache
        alone._prev = None
        one_by_one.append(alone.score(v) if v else alone.baseline)
    ordered = PrefixScorer(lm, seq, features)
    together = ordered.score_many(variants)
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(one_by_one, together))
    assert ordered.counter.tokens < alone.counter.tokens  # sharing prefixes between variants saves work
    assert ordered.counter.tokens_full == alone.counter.tokens_full


def test_sentence_features_tile_each_segment(lm, trace):
    seq = build_sequence(trace, trace.steps[-1].index, lm.tokenizer, "step")
    segments = seq.features("segment", None, lm.tokenizer)
    sentences = seq.features("sentence", None, lm.tokenizer)
    assert len(sentences) > len(segments)
    for seg in segments:
        inside = [f for f in sentences if f.segment == seg.label]
        assert inside and inside[0].start == seg.start and inside[-1].end == seg.end
        assert all(a.end == b.start for a, b in zip(inside, inside[1:]))  # contiguous, no gap, no overlap
    observation = [f.text for f in sentences if f.segment == "observation 1"]
    whole = next(f.text for f in segments if f.label == "observation 1")
    assert len(observation) >= 2 and " ".join(observation).split() == whole.split()


def test_sentence_spans_split_at_sentence_ends_and_lines():
    pieces = ["The", " cat", " sat", ".", " It", " was", ' "big."', " Then", "\n", "Obs", " x", ".", " "]
    assert sentence_spans(pieces) == [(0, 4, "The cat sat."), (4, 7, 'It was "big."'), (7, 8, "Then"),
                                      (8, 13, "Obs x.")]
    assert sentence_spans(["one piece"]) == [(0, 1, "one piece")]


def test_sentence_attribution_has_a_two_level_view(lm, trace):
    result = attribute_step(trace, trace.steps[-1].index, target="action", granularity="sentence", model=lm,
                            check_masks=4)
    totals = result.segment_scores()
    assert set(totals) == {f.segment for f in result.features}
    for seg, total in totals.items():
        assert total == pytest.approx(sum(s for _, s in result.inside(seg)))
    page = result.text_map_html(leave_out_own=True)
    assert "own thought and action left out" in page and 'title="observation 1' in page
    assert result.tokens_full > result.tokens_run > 0 and "tokens recomputed" in result.cost()


@pytest.mark.parametrize("method", ["surrogate", "kernel_shap", "lime"])
def test_surrogate_methods_run_through_the_table_and_are_seeded(lm, trace, method):
    step = trace.steps[-1].index
    small = {"surrogate": {"n_ablations": 8}, "kernel_shap": {"n_perturbations": 8}, "lime": {"n_perturbations": 8}}
    a = attribute_step(trace, step, method=method, granularity="sentence", model=lm, check_masks=0, **small[method])
    b = attribute_step(trace, step, method=method, granularity="sentence", model=lm, check_masks=0, **small[method])
    assert a.scores == b.scores and len(a.scores) == len(a.features)
    assert 8 <= a.forward_passes <= METHODS[method].passes(len(a.features), len(a.target_ids), a.settings)


def test_surrogate_settings_are_checked(lm, trace):
    with pytest.raises(ConfigError, match="output must be one of log_prob, logit_prob"):
        attribute_step(trace, 1, method="surrogate", output="prob", model=lm)
    with pytest.raises(ConfigError, match="keep_prob must be between 0 and 1"):
        attribute_step(trace, 1, method="surrogate", keep_prob=1.5, model=lm)


def test_integrated_gradients_on_late_segments_reuses_the_prefix_and_reports_its_delta(lm, trace):
    step = trace.steps[-1].index
    ig = attribute_step(trace, step, target="thought", method="layer_integrated_gradients", granularity="token",
                        segments=["observation 1"], model=lm, n_steps=8, check_masks=0)
    full = attribute_step(trace, step, target="thought", model=lm, check_masks=0)
    assert ig.settings["reused_prefix_tokens"] > 0 and ig.tokens_run < ig.tokens_full
    assert ig.target_logprob == pytest.approx(full.target_logprob, abs=1e-3)  # the cached prefix changes nothing
    # completeness: the scores add up to the target's change from the baseline, up to the reported delta
    seq = build_sequence(trace, step, lm.tokenizer, "thought")
    feats = [f for f in seq.features("token", ["observation 1"], lm.tokenizer)]
    ids = list(seq.ids)
    for f in feats:
        ids[f.start] = lm.pad_token_id
    with torch.no_grad():
        logp = torch.log_softmax(lm.model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
    baseline = float(sum(logp[t - 1, seq.ids[t]] for t in seq.targets))
    assert sum(ig.scores) - (ig.target_logprob - baseline) == pytest.approx(ig.settings["convergence_delta"], abs=1e-3)


def test_progress_is_reported_and_cancel_stops_the_work(lm, trace):
    seen = []
    attribute_step(trace, 1, model=lm, check_masks=4, progress=lambda done, total, phase: seen.append((done, phase)))
    method = [d for d, p in seen if p == "method"]
    assert method == sorted(method) and method[-1] >= 2 and any(p == "checks" for _, p in seen)
    stop = threading.Event()

    def halt(done, total, phase):
        if done >= 2:
            stop.set()

    with pytest.raises(Cancelled, match="cancelled"):
        attribute_step(trace, 1, model=lm, method="surrogate", n_ablations=16, progress=halt, cancel=stop)


def test_the_dependency_map_lays_out_steps_against_earlier_parts(lm, trace):
    dep = dependency_map(trace, model=lm)
    steps = [s.index for s in trace.steps if s.kind != "halt" and s.generation.token_ids]
    assert dep.steps == steps
    df = dep.to_dataframe()
    assert list(df.index) == steps and "task" in df.columns and "observation 1" in df.columns
    first, last = steps[0], steps[-1]
    assert np.isnan(df.loc[first, "observation 1"])  # the first step had no observation yet
    assert not np.isnan(df.loc[last, "observation 1"])
    direct = attribute_step(trace, last, model=lm, check_masks=0)
    assert df.loc[last, "observation 1"] == pytest.approx(dict(zip([f.label for f in direct.features],
                                                                   direct.scores))["observation 1"])
    assert set(dep.strongest()) == set(steps)
