"""A ContextCite-style surrogate: random ablations of the features, a sparse linear fit.

ContextCite (Cohen-Wang et al., 2024) scores the fixed response under random ablations of the
sources (each kept with probability 1/2, one teacher-forced pass each) and fits a LASSO whose
weights are the attributions. Unlike leave-one-out it sees features together, so two few-shot
examples that carry the same information are not both scored near zero.

This module does the same with this project's scorer: the masks are drawn exactly as the
``context-cite`` package draws them (``numpy.random.RandomState(seed + i)``, keep probability
``keep_prob``), so both can be run on the same masks; the fit is the package's (scikit-learn's
``Lasso`` behind a ``StandardScaler``, the weights rescaled back); and the masks are scored in the
order that shares the most cached prefix (``PrefixScorer.score_many``), so each pass
recomputes only from where it parts from the one before.

    >>> masks = draw_masks(4, n_masks=3, keep_prob=0.5, seed=0)
    >>> masks.shape, masks.dtype
    ((3, 4), dtype('bool'))
"""

from __future__ import annotations

from typing import Any

from ..deps import require

__all__ = ["draw_masks", "aggregate", "fit_lasso", "surrogate_fit", "OUTPUTS"]

OUTPUTS = ("log_prob", "logit_prob")


def draw_masks(n_features: int, *, n_masks: int, keep_prob: float, seed: int):
    """(n_masks, n_features) booleans, True = kept: mask i from ``RandomState(seed + i)``, as the
    context-cite package draws its ablation masks."""
    import numpy as np

    masks = np.zeros((n_masks, n_features), dtype=bool)
    for i in range(n_masks):
        masks[i] = np.random.RandomState(seed + i).choice([False, True], size=n_features,
                                                           p=[1 - keep_prob, keep_prob])
    return masks


def aggregate(token_logprobs, output: str = "log_prob"):
    """One number per mask from its per-token log-probabilities (n_masks, n_tokens).

    ``log_prob``: the total log-probability of the target (what this project's scores and LDS
    use). ``logit_prob``: ContextCite's default, log p - log(1 - p) of the whole target.
    """
    import numpy as np

    total = np.asarray(token_logprobs, dtype=np.float64).sum(axis=1)
    if output == "log_prob":
        return total
    return total - np.log1p(-np.exp(np.minimum(total, -1e-12)))


def fit_lasso(masks, outputs, num_output_tokens: int, alpha: float):
    """ContextCite's solver: LASSO on standardised masks; returns (weights, bias) on the original scale.

    ``outputs``: (n_masks,) or (n_masks, n_outputs); weights then have shape (n_features,) or
    (n_outputs, n_features).
    """
    require("sklearn", "The surrogate attribution method (its LASSO fit)")
    import numpy as np
    from sklearn.linear_model import Lasso
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(masks, dtype=np.float32)
    y = np.asarray(outputs, dtype=np.float64) / num_output_tokens
    scaler = StandardScaler()
    lasso = Lasso(alpha=alpha, random_state=0, fit_intercept=True)
    make_pipeline(scaler, lasso).fit(x, y)
    weight = lasso.coef_ / scaler.scale_
    bias = lasso.intercept_ - weight @ scaler.mean_
    return weight * num_output_tokens, bias * num_output_tokens


def surrogate_fit(scorer: Any, *, n_ablations: int, mask_seed: int, keep_prob: float, lasso_alpha: float,
                  output: str) -> dict[str, Any]:
    """Score ``n_ablations`` random keep-masks through ``scorer`` (``score_many`` when it has one: the
    order that shares the most prefix) and fit the LASSO. Returns the weights (n_features,), the
    per-token weights (n_targets, n_features), the intercept, the fit's R² on its own masks, the
    masks and the fitted outputs."""
    import numpy as np

    from ..errors import ConfigError

    if output not in OUTPUTS:
        raise ConfigError(f"output must be one of {', '.join(OUTPUTS)} (got {output!r}).")
    if not 0 < keep_prob < 1:
        raise ConfigError(f"keep_prob must be between 0 and 1, exclusive (got {keep_prob}): the chance each "
                          "feature is kept in a random ablation.")
    k = len(scorer.features)
    masks = draw_masks(k, n_masks=n_ablations, keep_prob=keep_prob, seed=mask_seed)
    variants = [[j for j in range(k) if not m[j]] for m in masks]
    many = getattr(scorer, "score_many", None)
    scored = many(variants) if many is not None else [scorer.score(v) for v in variants]
    per_token = np.stack([np.atleast_1d(s.detach().cpu().numpy()) for s in scored])  # (n_masks, n_targets)
    y = aggregate(per_token, output)
    weights, bias = fit_lasso(masks, y, per_token.shape[1], lasso_alpha)
    token_weights, _ = fit_lasso(masks, per_token, 1, lasso_alpha)
    predicted = masks.astype(np.float64) @ weights + bias
    ss = float(((y - y.mean()) ** 2).sum())
    r2 = 1 - float(((y - predicted) ** 2).sum()) / ss if ss > 0 else None
    return {"weights": weights, "token_weights": np.atleast_2d(token_weights).reshape(per_token.shape[1], k),
            "bias": float(bias), "r2": r2, "masks": masks, "outputs": y}
