"""How faithful an attribution map is: does it predict what removing parts of the prompt actually does?

Three measures, each computed from the model on the same step, features and target:

- **LDS** (linear datamodeling score; Park et al., 2023, as ContextCite reports it): draw held-out
  random keep-masks (each feature kept with probability 1/2, seeded, never used to fit anything),
  predict the target's log-probability under each as the sum of the kept features' scores, and
  take the Spearman correlation with the log-probability the model actually gives. 1 means the map
  orders every ablation as the model does; 0 means it says nothing about them.
- **Top-k deletion**: how far the target's log-probability falls when the k highest-scored
  features are removed, against removing k features at random (the mean over a few seeded draws).
- **Top-k sufficiency**: the target's log-probability when only the k highest-scored features
  are kept.

Their cost (forward passes) is counted apart from the method's own. Each pass reuses the keys and
values of the unchanged prefix (PrefixScorer), so it recomputes only from the first removed feature.

    >>> f = measure(scorer, result.scores, n_masks=16, seed=0)          # doctest: +SKIP
    >>> f.lds, f.deletion[1]                                           # doctest: +SKIP
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Faithfulness", "measure", "heldout_ablations", "spearman"]


def _ranks(values: list[float]) -> list[float]:
    """Average ranks (ties share the mean of their positions), 0-based."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def spearman(x: list[float], y: list[float]) -> float | None:
    """Spearman's rank correlation; None when either side is constant (no order to compare)."""
    if len(x) != len(y):
        raise ValueError(f"spearman: {len(x)} values against {len(y)}; pass two lists of the same length.")
    rx, ry = _ranks(x), _ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx, syy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return None
    return sxy / (sxx * syy) ** 0.5


@dataclass
class Faithfulness:
    """The faithfulness of one map, with what it took to measure it (reproducible from ``seed``)."""

    lds: float | None  # Spearman(predicted, actual) over the held-out masks; None if either is constant
    n_masks: int  # held-out random keep-masks (each feature kept with probability 1/2)
    seed: int  # the masks' and the random deletions' seed
    full_logprob: float  # the target's log-probability with every feature present
    deletion: dict[int, float] = field(default_factory=dict)  # k -> log p fall when the top-k are removed
    random_deletion: dict[int, float] = field(default_factory=dict)  # k -> mean fall when k random ones are
    sufficiency: dict[int, float] = field(default_factory=dict)  # k -> log p with only the top-k kept
    forward_passes: int = 0  # the cost of these checks, apart from the method's own passes
    masks: list[list[int]] = field(default_factory=list)  # the held-out masks (1 = kept), for reproduction

    def summary(self) -> str:
        """One line for the app and the CLI."""
        lds = "n/a (no variation)" if self.lds is None else f"{self.lds:.2f}"
        parts = [f"LDS {lds} on {self.n_masks} held-out ablations (seed {self.seed})"]
        for k in sorted(self.deletion):
            parts.append(f"removing the top {k}: log p {-self.deletion[k]:+.2f} (random {k}: "
                         f"{-self.random_deletion.get(k, 0.0):+.2f})")
        parts.append(f"{self.forward_passes} check passes")
        return " · ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Faithfulness":
        data = dict(data)
        for key in ("deletion", "random_deletion", "sufficiency"):  # JSON turns int keys into strings
            data[key] = {int(k): float(v) for k, v in (data.get(key) or {}).items()}
        return cls(**data)


def heldout_ablations(scorer: Any, *, n_masks: int = 16, seed: int = 0) -> tuple[list[list[int]], list[float]]:
    """The held-out random keep-masks (1 = kept; each feature kept with probability 1/2, from
    ``random.Random(seed)``) and the target's total log-probability the model gives under each.
    Computed once per step, they can measure any number of maps on the same features."""
    k_features = len(scorer.features)
    rng = random.Random(seed)
    masks = [[rng.randint(0, 1) for _ in range(k_features)] for _ in range(n_masks if k_features > 1 else 0)]
    variants = [[i for i, keep in enumerate(m) if not keep] for m in masks]
    many = getattr(scorer, "score_many", None)
    scored = many(variants) if many is not None else [scorer.score(v) if v else scorer.baseline for v in variants]
    return masks, [float(s.sum()) for s in scored]


def measure(scorer: Any, scores: list[float], *, n_masks: int = 16, seed: int = 0, ks: tuple[int, ...] = (1, 3),
            n_random: int = 4, heldout: tuple[list[list[int]], list[float]] | None = None) -> Faithfulness:
    """Faithfulness of ``scores`` (one per feature of ``scorer``) against the model, through ``scorer``.

    ``scorer``: a PrefixScorer on the same step and features (``score(absent) -> per-token log p``).
    ``heldout``: the masks and log-probabilities of :func:`heldout_ablations` when already computed
    (their passes are then not counted again).
    """
    k_features = len(scores)
    if k_features != len(scorer.features):
        raise ValueError(f"measure: {len(scores)} scores for {len(scorer.features)} features; expected one each.")
    before = scorer.passes
    full = float(scorer.baseline.sum())

    def logp(absent: list[int]) -> float:
        return full if not absent else float(scorer.score(sorted(absent)).sum())

    if heldout is None:
        heldout = heldout_ablations(scorer, n_masks=n_masks, seed=seed)
    masks, actual = heldout
    predicted = [sum(s for s, keep in zip(scores, mask) if keep) for mask in masks]
    rng = random.Random(seed + 1_000_003)  # the random deletions' own stream (the masks may be shared)
    lds = spearman(predicted, actual) if masks else None

    order = sorted(range(k_features), key=lambda i: -scores[i])
    deletion, random_deletion, sufficiency = {}, {}, {}
    for k in ks:
        if k >= k_features:
            continue
        top = order[:k]
        deletion[k] = full - logp(top)
        draws = [rng.sample(range(k_features), k) for _ in range(n_random)]
        random_deletion[k] = sum(full - logp(d) for d in draws) / n_random
        sufficiency[k] = logp([i for i in range(k_features) if i not in set(top)])
    return Faithfulness(lds, len(masks), seed, full, deletion, random_deletion, sufficiency,
                        scorer.passes - before, masks)
