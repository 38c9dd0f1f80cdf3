"""Faithfulness of attribution maps: LDS on held-out ablations, top-k deletion and sufficiency."""

import pytest
import torch

from workbench.attribution import AttributionResult, attribute_step
from workbench.attribution.faithfulness import Faithfulness, measure, spearman


class LinearScorer:
    """An oracle: the target's log p falls by exactly w[i] when feature i is removed."""

    def __init__(self, weights, full=-3.0):
        self.features = list(range(len(weights)))
        self.weights, self.full, self.passes = weights, full, 1
        self.baseline = torch.tensor([full])

    def score(self, absent):
        self.passes += 1
        return torch.tensor([self.full - sum(self.weights[i] for i in absent)])


def test_spearman_orders_ties_and_constants():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 2], [1, 1, 2]) == pytest.approx(1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    with pytest.raises(ValueError, match="same length"):
        spearman([1, 2], [1])


def test_a_map_equal_to_the_true_effects_is_perfectly_faithful_and_its_reverse_is_not():
    weights = [2.0, 0.5, 0.0, 1.0, -0.3, 0.8]
    truth = measure(LinearScorer(weights), weights, n_masks=24, seed=3)
    assert truth.lds == pytest.approx(1.0)
    assert truth.deletion[1] == pytest.approx(2.0)  # removing the top feature costs exactly its effect
    assert truth.deletion[3] == pytest.approx(2.0 + 1.0 + 0.8)
    assert truth.sufficiency[1] == pytest.approx(-3.0 - (0.5 + 0.0 + 1.0 - 0.3 + 0.8))  # only the top one kept
    assert truth.deletion[1] > truth.random_deletion[1]
    reverse = measure(LinearScorer(weights), [-w for w in weights], n_masks=24, seed=3)
    assert reverse.lds == pytest.approx(-1.0)
    assert reverse.deletion[1] == pytest.approx(-0.3)  # its "top" feature hurt the target: removing it raises log p


def test_the_masks_are_seeded_and_the_cost_is_counted():
    weights = [1.0, 2.0, 3.0, 0.5]
    a, b = (measure(LinearScorer(weights), weights, n_masks=8, seed=7) for _ in range(2))
    assert a.masks == b.masks and len(a.masks) == 8 and all(len(m) == 4 for m in a.masks)
    assert a.masks != measure(LinearScorer(weights), weights, n_masks=8, seed=8).masks
    # 8 masks (all-kept ones cost nothing) + per k: 1 top-k and 4 random deletions, 1 sufficiency
    kept_all = sum(all(m) for m in a.masks)
    assert a.forward_passes == 8 - kept_all + 2 * (1 + 4 + 1)


def test_every_attribution_carries_its_faithfulness_and_its_cost_apart(tiny, corpus):
    from workbench.agent import Agent

    trace = Agent(tiny, corpus=corpus, max_steps=1, max_new_tokens=6).run("When was Varnholt founded?")
    plain = attribute_step(trace, 1, target="step", model=tiny, check_masks=0)
    checked = attribute_step(trace, 1, target="step", model=tiny, check_masks=12, check_seed=1)
    assert plain.faithfulness is None
    f = checked.faithfulness
    assert f.n_masks == 12 and f.seed == 1 and f.lds is not None and -1.0 <= f.lds <= 1.0
    assert f.full_logprob == pytest.approx(checked.target_logprob, abs=1e-4)
    assert checked.forward_passes == plain.forward_passes  # the checks' passes are counted apart
    assert f.forward_passes > 0 and set(f.deletion) == {1, 3}
    import json

    again = AttributionResult.from_dict(json.loads(checked.to_json()))  # stored as JSON and read back
    assert again.faithfulness == f
    assert "LDS" in checked.to_html() and "held-out ablations" in f.summary()
    with pytest.raises(Exception, match="check_masks must be 0"):
        attribute_step(trace, 1, model=tiny, check_masks=-1)


def test_faithfulness_roundtrip_keeps_int_keys():
    f = Faithfulness(0.5, 4, 0, -2.0, {1: 0.3}, {1: 0.1}, {1: -2.5}, 9, [[1, 0]])
    assert Faithfulness.from_dict({**f.to_dict(), "deletion": {"1": 0.3}}) == f
