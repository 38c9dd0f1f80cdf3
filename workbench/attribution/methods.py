"""The attribution methods, registered once: name -> runner, settings, what each supports.

:data:`METHODS` is the one table (as inseq's registry is). The valid choices
(:data:`ATTRIBUTION_METHODS`), the dispatch in :func:`~workbench.attribution.attribute_step`, its
error messages, the CLI's ``--method`` help and the app's method picker and per-method settings
controls all read it. A new method is one :class:`AttributionMethod` entry plus its runner:

    >>> [(s.name, s.default, s.low) for s in METHODS["shapley"].settings]
    [('n_samples', 8, 1), ('seed', 0, 0)]

A runner takes ``(lm, seq, features, counter, **settings)``, with the settings its entry declares
as keyword-only parameters, calls the model only through ``counter`` (a
:class:`~workbench.attribution.counting.PassCounter`) and returns a :class:`MethodRun`. All three
runners are Captum underneath: FeatureAblation and ShapleyValueSampling over presence masks scored
by :class:`~workbench.attribution.engine.PrefixScorer`, and LayerIntegratedGradients on the input
embeddings.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import ConfigError, InputError
from .counting import PassCounter
from .engine import Feature, PrefixScorer, StepSequence, captum_forward

__all__ = ["MethodSetting", "AttributionMethod", "MethodRun", "METHODS", "ATTRIBUTION_METHODS", "GRANULARITIES",
           "resolve_method", "app_settings", "grounding_method"]

GRANULARITIES = ("segment", "sentence", "token")


@dataclass(frozen=True)
class MethodSetting:
    """One setting of a method: how it is checked, and how the app shows it."""

    name: str  # the keyword argument of attribute_step and of the runner
    type: type  # int | float | bool
    default: Any
    low: float | None = None  # the smallest valid value (checked)
    high: float | None = None  # the top of the app's slider (larger values are allowed from code and the CLI)
    help: str = ""  # one line: what it changes
    label: str = ""  # the app control's label
    in_app: bool = True  # a control in the app's Settings, and an input of its /attribute endpoint (table order)
    choices: tuple[str, ...] = ()  # for a str setting: its valid values

    def check(self, value: Any) -> None:
        """Raise ConfigError naming the setting, its valid range and what it does, if ``value`` is not valid."""
        if self.type is str:
            if value not in self.choices:
                raise ConfigError(f"{self.name} must be one of {', '.join(self.choices)} (got {value!r}): {self.help}.")
            return
        if self.type is bool:
            ok = isinstance(value, bool)
        elif self.type is int:
            ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        else:
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not ok:
            raise ConfigError(f"{self.name} must be {'an' if self.type is int else 'a'} {self.type.__name__} "
                              f"(got {value!r}): {self.help}.")
        if self.low is not None and value < self.low:
            raise ConfigError(f"{self.name} must be >= {self.low} (got {value}): {self.help}.")


@dataclass
class MethodRun:
    """What a runner returns: the scores, and fixed facts about how they were computed."""

    scores: list[float]  # (n_features,)
    matrix: list[list[float]]  # (n_rows, n_features)
    row_labels: list[str]  # (n_rows,): the target tokens, or ["(all target tokens)"]
    target_logprob: float  # total log-probability of the target with nothing removed
    notes: dict[str, Any] = field(default_factory=dict)  # recorded in AttributionResult.settings


Runner = Callable[..., MethodRun]  # (lm, seq, features, counter, **settings) -> MethodRun


@dataclass(frozen=True)
class AttributionMethod:
    """One entry of the table: a method's runner, its settings and what it supports."""

    name: str
    runner: Runner
    help: str  # one line, for the CLI and the app
    settings: tuple[MethodSetting, ...] = ()
    grounding: bool = True  # per-step grounding may use it (False: the grounding timeline falls back to one that does)
    granularities: tuple[str, ...] = GRANULARITIES  # the feature granularities it supports
    aliases: tuple[str, ...] = ()  # short names an unknown-method error suggests this one for
    captum: str = ""  # the Captum class underneath (captum_reference wraps it in LLMAttribution)
    passes: Callable[[int, int, dict], int] = lambda k, n_targets, v: k + 1  # expected forward passes (progress)

    def defaults(self) -> dict[str, Any]:
        return {s.name: s.default for s in self.settings}


# ------------------------------------------------------------------ runners


def _row_labels(lm: Any, seq: StepSequence) -> list[str]:
    return [lm.tokenizer.decode([seq.ids[t]]) for t in seq.targets]


def _perturb(lm: Any, seq: StepSequence, features: list[Feature], counter: PassCounter, algorithm: str,
             per_token: bool = True, **attribute_kwargs: Any) -> MethodRun:
    """A Captum perturbation method over presence masks, every variant scored by one PrefixScorer.

    ``per_token``: the method takes a vector output (each target token's row as well as the total);
    Captum's surrogate-model methods (KernelShap, Lime) explain one scalar, the total.
    """
    import captum.attr
    import torch

    scorer = PrefixScorer(lm, seq, features, counter)
    k = len(features)
    inputs = torch.ones(1, k)
    mask = torch.arange(k).unsqueeze(0)
    extra = {} if per_token else {"target": 0}
    attr = getattr(captum.attr, algorithm)(captum_forward(scorer)).attribute(
        inputs, baselines=0.0, feature_mask=mask, perturbations_per_eval=1, **extra, **attribute_kwargs)
    full = float(scorer.baseline.sum())
    if not per_token:
        scores = attr.reshape(k).tolist()
        return MethodRun(scores, [scores], ["(all target tokens)"], full)
    attr = attr.reshape(1 + len(seq.targets), k)  # row 0: total; rows 1..: each target token
    return MethodRun(attr[0].tolist(), attr[1:].tolist(), _row_labels(lm, seq), full)


def run_feature_ablation(lm: Any, seq: StepSequence, features: list[Feature], counter: PassCounter) -> MethodRun:
    """Each feature removed in turn (Captum FeatureAblation): one pass per feature."""
    return _perturb(lm, seq, features, counter, "FeatureAblation")


def run_shapley(lm: Any, seq: StepSequence, features: list[Feature], counter: PassCounter, *, n_samples: int,
                seed: int) -> MethodRun:
    """Shapley value sampling (Captum ShapleyValueSampling) over ``n_samples`` seeded permutations."""
    import torch

    torch.manual_seed(seed)
    return _perturb(lm, seq, features, counter, "ShapleyValueSampling", n_samples=n_samples)


def _captum_surrogate(algorithm: str, doc: str) -> Runner:
    """A runner for one of Captum's surrogate-model methods (KernelShap, Lime): seeded, one scalar (the total)."""

    def run(lm: Any, seq: StepSequence, features: list[Feature], counter: PassCounter, *, n_perturbations: int,
            seed: int) -> MethodRun:
        import torch

        torch.manual_seed(seed)
        return _perturb(lm, seq, features, counter, algorithm, per_token=False, n_samples=n_perturbations)

    run.__doc__ = doc
    return run


run_kernel_shap = _captum_surrogate("KernelShap", "Captum KernelShap: random coalitions, a Shapley-kernel-weighted "
                                                  "linear fit.")
run_lime = _captum_surrogate("Lime", "Captum Lime: random keep-masks (each feature kept with probability 1/2), a "
                                     "similarity-weighted LASSO fit (Captum's defaults).")


def run_surrogate(lm: Any, seq: StepSequence, features: list[Feature], counter: PassCounter, *, n_ablations: int,
                  keep_prob: float, lasso_alpha: float, output: str, mask_seed: int) -> MethodRun:
    """ContextCite's surrogate (see :mod:`.surrogate`): random keep-masks, one teacher-forced pass each
    (ordered for prefix reuse), a LASSO fit. The scores are the fitted weights: how much keeping each
    feature adds to the target's total log-probability (``output='log_prob'``); the matrix holds one
    fit per target token. Notes record the masks' seed, the fit's R² on its own masks and the intercept."""
    from .surrogate import surrogate_fit

    scorer = PrefixScorer(lm, seq, features, counter)
    fit = surrogate_fit(scorer, n_ablations=n_ablations, mask_seed=mask_seed, keep_prob=keep_prob,
                        lasso_alpha=lasso_alpha, output=output)
    notes = {"intercept": fit["bias"], "fit_r2": fit["r2"], "mask_seed": mask_seed}
    return MethodRun([float(w) for w in fit["weights"]], fit["token_weights"].tolist(), _row_labels(lm, seq),
                     float(scorer.baseline.sum()), notes=notes)


def run_layer_integrated_gradients(lm: Any, seq: StepSequence, features: list[Feature], counter: PassCounter, *,
                                   n_steps: int, per_token: bool) -> MethodRun:
    """Captum LayerIntegratedGradients on the input embeddings, from pad-token embeddings at the features.

    The part of the sequence before the first feature does not change along the path, so its keys
    and values are computed once (without gradients) and every interpolation point runs only what
    follows: picking late segments makes token-level attribution fast. The convergence delta
    (completeness: the scores' sum against the target's change from the baseline) is recorded.
    """
    import copy

    import torch
    from captum.attr import LayerIntegratedGradients

    from ..kvcache import cache_kwarg

    model = counter.wrap(lm.model)
    full = seq.ids[: seq.targets[-1] + 1]
    p0 = max(0, min(f.start for f in features))  # the prefix no feature touches
    prefix = None
    if p0 > 0:
        from transformers import DynamicCache

        prefix = DynamicCache(config=lm.model.config)
        with torch.no_grad():
            model(input_ids=torch.tensor([full[:p0]], device=lm.device), use_cache=True,
                  **{cache_kwarg(lm.model): prefix})
        counter.count_tokens(p0, p0)
    ids = torch.tensor([full[p0:]], device=lm.device)  # (1, L - p0)
    keep = ids.shape[1] - (seq.targets[0] - p0) + 1
    rows_of = torch.tensor([t - p0 - 1 - (ids.shape[1] - keep) for t in seq.targets])
    target_ids = torch.tensor([seq.ids[t] for t in seq.targets])
    baseline = ids.clone()
    for f in features:  # interpolate only the features; everything else stays as it was
        baseline[0, f.start - p0:f.end - p0] = lm.pad_token_id

    def forward(input_ids, which=None):  # (batch, L - p0) -> (batch,)
        extra = {}
        if prefix is not None:
            cache = copy.deepcopy(prefix)
            if input_ids.shape[0] > 1:
                cache.batch_repeat_interleave(input_ids.shape[0])
            extra = {cache_kwarg(lm.model): cache, "use_cache": True}
        counter.count_tokens(input_ids.numel(), input_ids.shape[0] * len(full))
        logits = model(input_ids=input_ids, logits_to_keep=keep, **extra).logits.float()  # (batch, keep, vocab)
        logp = torch.log_softmax(logits, -1)[:, rows_of, target_ids]  # (batch, n_targets)
        return counter.count_backward(logp.sum(-1) if which is None else logp[:, which])  # (batch,)

    lig = LayerIntegratedGradients(forward, lm.model.get_input_embeddings())
    outputs = [None] + (list(range(len(seq.targets))) if per_token else [])
    results, deltas = [], []
    for which in outputs:
        attr, delta = lig.attribute(ids, baselines=baseline, n_steps=n_steps, internal_batch_size=4,
                                    additional_forward_args=(which,), return_convergence_delta=True)  # (1, L', hidden)
        per_position = attr.sum(-1)[0].detach()  # (L - p0,)
        results.append([float(per_position[f.start - p0:f.end - p0].sum()) for f in features])
        deltas.append(float(delta.reshape(-1)[0]))  # sum of scores - (F(input) - F(baseline))
    with torch.no_grad():
        total = float(forward(ids)[0])
    rows = [lm.tokenizer.decode([t]) for t in target_ids.tolist()] if per_token else ["(all target tokens)"]
    matrix = results[1:] if per_token else results[:1]
    change = sum(results[0]) - deltas[0]  # F(input) - F(baseline): what the scores should add up to
    notes = {"baseline": "pad token embeddings", "convergence_delta": deltas[0],
             "convergence_delta_share": abs(deltas[0]) / abs(change) if change else 0.0,
             "reused_prefix_tokens": p0}
    return MethodRun(results[0], matrix, rows, total, notes=notes)


# ------------------------------------------------------------------ the table

_SAMPLED = (  # the settings of Captum's surrogate-model methods (KernelShap, Lime)
    MethodSetting("n_perturbations", int, 32, low=2, high=128, label="KernelShap / Lime: samples",
                  help="random perturbations the linear model is fitted on"),
    MethodSetting("seed", int, 0, low=0, in_app=False, label="Shapley: seed",
                  help="seed of the sampling, for repeatable scores"),
)

METHODS: dict[str, AttributionMethod] = {m.name: m for m in (
    AttributionMethod(
        "feature_ablation", run_feature_ablation, aliases=("fa", "ablation"), captum="FeatureAblation",
        help="remove each feature in turn; its score is how much the target's log-probability drops"),
    AttributionMethod(
        "shapley", run_shapley, aliases=("shap", "shapley_value_sampling"), captum="ShapleyValueSampling",
        passes=lambda k, n, v: v["n_samples"] * k + 1,
        help="each feature's removal effect averaged over random orders of removal (Shapley value sampling)",
        settings=(
            MethodSetting("n_samples", int, 8, low=1, high=50, label="Shapley: permutations",
                          help="random feature orders averaged over; more is slower and less noisy"),
            MethodSetting("seed", int, 0, low=0, in_app=False, label="Shapley: seed",
                          help="seed of the permutation sampling, for repeatable scores"),
        )),
    AttributionMethod(
        "surrogate", run_surrogate, aliases=("contextcite", "context_cite", "lasso"),
        passes=lambda k, n, v: v["n_ablations"] + 1,
        help="ContextCite: random ablations (each feature kept with probability 1/2), one pass each, a LASSO fit",
        settings=(
            MethodSetting("n_ablations", int, 32, low=2, high=128, label="Surrogate: random ablations",
                          help="random keep-masks scored to fit the surrogate; more is slower and more exact"),
            MethodSetting("keep_prob", float, 0.5, low=0.01, in_app=False, label="Surrogate: keep probability",
                          help="the chance each feature is kept in a random ablation (between 0 and 1)"),
            MethodSetting("lasso_alpha", float, 0.01, low=0.0, in_app=False, label="Surrogate: LASSO alpha",
                          help="the LASSO's L1 penalty; larger gives sparser maps"),
            MethodSetting("output", str, "log_prob", in_app=False, label="Surrogate: fitted output",
                          choices=("log_prob", "logit_prob"),
                          help="log_prob (the target's total log-probability) or logit_prob (ContextCite's)"),
            MethodSetting("mask_seed", int, 0, low=0, in_app=False, label="Surrogate: seed",
                          help="mask i is drawn from RandomState(mask_seed + i), as the context-cite package does"),
        )),
    AttributionMethod(
        "kernel_shap", run_kernel_shap, aliases=("kernelshap", "kshap"), captum="KernelShap",
        passes=lambda k, n, v: v["n_perturbations"] + 2, settings=_SAMPLED,
        help="Captum KernelShap: random coalitions, a Shapley-kernel-weighted linear fit (a surrogate baseline)"),
    AttributionMethod(
        "lime", run_lime, captum="Lime", passes=lambda k, n, v: v["n_perturbations"] + 2, settings=_SAMPLED,
        help="Captum Lime: random keep-masks, a similarity-weighted LASSO fit (a surrogate baseline)"),
    AttributionMethod(
        "layer_integrated_gradients", run_layer_integrated_gradients, aliases=("ig", "lig", "integrated_gradients"),
        captum="LayerIntegratedGradients", grounding=False,
        passes=lambda k, n, v: (v["n_steps"] + 2) * (1 + (n if v["per_token"] else 0)) + 2,
        help="gradients of the target along the path from pad-token embeddings to the features' embeddings",
        settings=(
            MethodSetting("n_steps", int, 16, low=2, high=64, label="Integrated gradients: steps",
                          help="points on the path from the baseline to the input; more is slower and more exact"),
            MethodSetting("per_token", bool, False, in_app=False, label="Integrated gradients: per target token",
                          help="also attribute each target token on its own (one more integration per token)"),
        )),
)}

ATTRIBUTION_METHODS = tuple(METHODS)


def _available() -> str:
    return ", ".join(METHODS)


def _all_settings() -> dict[str, MethodSetting]:
    """Every setting of the table by name (the first method to declare a name defines it)."""
    out: dict[str, MethodSetting] = {}
    for m in METHODS.values():
        for s in m.settings:
            out.setdefault(s.name, s)
    return out


def resolve_method(method: str, granularity: str, given: dict[str, Any]) -> tuple[AttributionMethod, dict[str, Any]]:
    """The table's entry for ``method`` and the values of its settings (``given`` over the defaults).

    Every given setting is checked, also one another method owns (it is then ignored), so a bad
    value never passes silently. Raises InputError / ConfigError naming the valid choices.
    """
    entry = METHODS.get(method)
    if entry is None:
        suggest = next((m.name for m in METHODS.values() if method in m.aliases), None)
        hint = f" Did you mean {suggest!r}?" if suggest else ""
        raise InputError(f"Unknown attribution method {method!r}.{hint} Available: {_available()}.")
    if granularity not in GRANULARITIES:
        raise InputError(f"Unknown granularity {granularity!r}. Available: {', '.join(GRANULARITIES)}.")
    if granularity not in entry.granularities:
        able = [m.name for m in METHODS.values() if granularity in m.granularities]
        raise InputError(f"{method} does not support {granularity} features (it does: "
                         f"{', '.join(entry.granularities)}). Methods that do: {', '.join(able)}.")
    known = _all_settings()
    own = {s.name: s for s in entry.settings}
    for name, value in given.items():
        spec = own.get(name) or known.get(name)
        if spec is None:
            listing = "; ".join(f"{', '.join(s.name for s in m.settings)} ({m.name})" for m in METHODS.values()
                                if m.settings)
            raise ConfigError(f"Unknown attribution setting {name!r}. Settings: {listing}.")
        spec.check(value)
    return entry, {name: given.get(name, s.default) for name, s in own.items()}


def app_settings() -> list[MethodSetting]:
    """The settings the app shows as controls, one per name, in table order (the /attribute endpoint's
    inputs after the segments, in this order)."""
    return [s for s in _all_settings().values() if s.in_app]


def grounding_method(method: str) -> str:
    """The method a grounding timeline uses when ``method`` is chosen: itself if it gives grounding,
    else the first table entry that does. An unknown name is returned as it is (the API then says
    what is available)."""
    entry = METHODS.get(method)
    if entry is None or entry.grounding:
        return method
    return next(m.name for m in METHODS.values() if m.grounding)
