"""Attribution: how much each labelled part of the prompt drove a step's thought, action or answer.

The parts are the prompt's segments (instruction, tools, each few-shot example, the task, each
earlier thought, action and observation) or their single tokens. The target is the exact ids the
model generated in that step, scored by teacher forcing; nothing is re-tokenized.

    >>> result = attribute_step(trace, 2, target="action")          # doctest: +SKIP
    >>> result.to_dataframe().nlargest(3, "score")                  # doctest: +SKIP
    >>> result.grounding()                                          # doctest: +SKIP
    {'observations': 0.61, 'examples': 0.22, 'task': 0.09, 'own thoughts': 0.05, 'instruction': 0.03}

Methods, all through Captum: ``feature_ablation`` (FeatureAblation) and ``shapley``
(ShapleyValueSampling), driven by a forward function that scores every target token in one
teacher-forced pass and reuses the keys and values of the unchanged prefix; and
``layer_integrated_gradients`` (LayerIntegratedGradients on the input embeddings).
:func:`captum_reference` runs Captum's own LLMAttribution with its defaults on the same features.
"""

from __future__ import annotations

import html
import json
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ..deps import require
from ..errors import ConfigError, InputError
from ..types import Trace
from .engine import TARGETS, Feature, PrefixScorer, StepSequence, build_sequence, captum_forward, segment_input

__all__ = ["AttributionResult", "attribute_step", "attribute_cached", "cache_key", "captum_reference", "grounding_timeline", "attribution_diff",
           "randomized_copy", "rank_correlation", "ATTRIBUTION_METHODS", "GRANULARITIES", "TARGETS", "GROUNDING_GROUPS", "Feature"]

ATTRIBUTION_METHODS = ("feature_ablation", "shapley", "layer_integrated_gradients")
GRANULARITIES = ("segment", "token")
# Where a step's evidence came from: segment kinds grouped the way a reader asks the question.
GROUNDING_GROUPS = {
    "observations": ("observation",),
    "examples": ("example",),
    "task": ("task",),
    "own thoughts": ("thought", "action", "answer"),
    "instruction": ("instruction", "tools"),
}


@dataclass
class AttributionResult:
    """Scores of input features for one step's target, with how they were computed and what it cost.

    ``scores[j]`` is feature j's effect on the total log-probability of the target tokens (for
    ablation: the log-probability with everything present minus with feature j removed).
    ``matrix[i][j]`` is the same for target token i alone (gradient methods without
    ``per_token`` have one row, the total).
    """

    trace_id: str
    step: int
    target: str  # thought | action | answer | step
    method: str
    granularity: str
    features: list[Feature]
    scores: list[float]  # (n_features,)
    matrix: list[list[float]]  # (n_rows, n_features)
    row_labels: list[str]  # the target tokens, or ["(all target tokens)"]
    target_ids: list[int]
    target_logprob: float  # total log-probability of the target with nothing removed
    model: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    forward_passes: int = 0
    backward_passes: int = 0
    seconds: float = 0.0

    def __post_init__(self) -> None:
        k = len(self.features)
        if len(self.scores) != k:
            raise ValueError(f"AttributionResult: {len(self.scores)} scores for {k} features; expected shape ({k},).")
        if len(self.matrix) != len(self.row_labels):
            raise ValueError(f"AttributionResult: matrix has {len(self.matrix)} rows but {len(self.row_labels)} row "
                             "labels; expected shape (n_rows, n_features).")
        bad = [i for i, row in enumerate(self.matrix) if len(row) != k]
        if bad:
            raise ValueError(f"AttributionResult: matrix row {bad[0]} has {len(self.matrix[bad[0]])} columns; "
                             f"expected {k} (one per feature).")

    # ------------------------------------------------------------------ views
    def grounding(self) -> dict[str, float]:
        """The share of positive attribution per GROUNDING_GROUPS group (sums to 1, or all 0)."""
        positive = {g: 0.0 for g in GROUNDING_GROUPS}
        for f, s in zip(self.features, self.scores):
            for group, kinds in GROUNDING_GROUPS.items():
                if f.kind in kinds and s > 0:
                    positive[group] += s
        total = sum(positive.values())
        return {g: (v / total if total > 0 else 0.0) for g, v in positive.items()}

    def to_dataframe(self) -> Any:
        """Tidy: one row per feature (step, target, feature, label, kind, score, text)."""
        import pandas as pd

        return pd.DataFrame([{"run": self.trace_id, "step": self.step, "target": self.target, "method": self.method,
                              "feature": i, "label": f.label, "kind": f.kind, "score": s, "text": f.text}
                             for i, (f, s) in enumerate(zip(self.features, self.scores))])

    def top(self, n: int = 5) -> list[tuple[str, float]]:
        order = sorted(range(len(self.scores)), key=lambda i: -abs(self.scores[i]))[:n]
        return [(self.features[i].label, self.scores[i]) for i in order]

    def to_html(self, title: str | None = None) -> str:
        """A standalone HTML page: the prompt with each feature shaded by its score, and the table."""
        peak = max((abs(s) for s in self.scores), default=0.0) or 1.0
        spans = []
        for f, s in zip(self.features, self.scores):
            alpha = min(1.0, abs(s) / peak)
            color = f"rgba(214,39,40,{alpha:.2f})" if s > 0 else f"rgba(31,119,180,{alpha:.2f})"
            spans.append(f'<span title="{html.escape(f.label)}: {s:+.4f}" style="background:{color};'
                         f'white-space:pre-wrap">{html.escape(f.text or f.label)}</span>')
        rows = "".join(f"<tr><td>{html.escape(f.label)}</td><td>{f.kind}</td><td>{s:+.4f}</td></tr>"
                       for f, s in sorted(zip(self.features, self.scores), key=lambda x: -x[1]))
        shares = "".join(f"<li>{g}: {v:.0%}</li>" for g, v in self.grounding().items())
        head = html.escape(title or f"Attribution of step {self.step} ({self.target}) of run {self.trace_id}")
        return (f"<!doctype html><html><head><meta charset='utf-8'><title>{head}</title>"
                "<style>body{font-family:sans-serif;max-width:1000px;margin:auto}td{padding:2px 8px}"
                ".prompt{font-family:monospace;font-size:13px;border:1px solid #ccc;padding:8px}</style></head><body>"
                f"<h2>{head}</h2><p>method {self.method}, {self.granularity} features, model {html.escape(self.model)}, "
                f"{self.forward_passes} forward / {self.backward_passes} backward passes, {self.seconds:.1f} s. "
                "Red raised the target's log-probability, blue lowered it.</p>"
                f"<h3>Grounding</h3><ul>{shares}</ul><h3>Prompt</h3><div class='prompt'>{''.join(spans)}</div>"
                f"<h3>Scores</h3><table><tr><th>feature</th><th>kind</th><th>score</th></tr>{rows}</table>"
                "</body></html>")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AttributionResult":
        data = dict(data)
        data["features"] = [Feature(**f) for f in data["features"]]
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


# ------------------------------------------------------------------ computing


def _check(method: str, granularity: str) -> None:
    if method not in ATTRIBUTION_METHODS:
        aliases = {"ig": "layer_integrated_gradients", "fa": "feature_ablation", "shap": "shapley"}
        hint = f" Did you mean {aliases[method]!r}?" if method in aliases else ""
        raise InputError(f"Unknown attribution method {method!r}.{hint} Available: {', '.join(ATTRIBUTION_METHODS)}.")
    if granularity not in GRANULARITIES:
        raise InputError(f"Unknown granularity {granularity!r}. Available: {', '.join(GRANULARITIES)}.")


def _model_for(trace: Trace, model: Any) -> Any:
    if model is not None:
        return model
    from ..models import load_model

    source = trace.meta.get("model_source") or trace.model
    return load_model(None if source in ("", "embedded") else source)


def _step_index(trace: Trace, step: Any) -> int:
    return int(step.index if hasattr(step, "index") else step)


def attribute_step(trace: Trace, step: int | Any, target: str = "step", method: str = "feature_ablation",
                   granularity: str = "segment", model: Any = None, *, segments: list[str] | None = None,
                   n_samples: int = 8, n_steps: int = 16, per_token: bool = False, seed: int = 0) -> AttributionResult:
    """Attribute step ``step`` of ``trace`` (an index or the Step) to the labelled parts of its prompt.

    ``segments`` limits the features to these segment labels (at token granularity the default
    is every segment, which for perturbation methods means one model pass per token: narrow it).
    ``n_samples``: permutations for shapley. ``n_steps`` and ``per_token``: integrated gradients.
    ``model``: the LoadedModel to score with (default: the run's own model, loaded).
    """
    _check(method, granularity)
    if n_samples < 1 or n_steps < 2:
        raise ConfigError(f"n_samples must be >= 1 and n_steps >= 2 (got {n_samples}, {n_steps}).")
    require("captum.attr", "Attribution")
    lm = _model_for(trace, model)
    index = _step_index(trace, step)
    t0 = time.perf_counter()
    seq = build_sequence(trace, index, lm.tokenizer, target)
    features = seq.features(granularity, segments, lm.tokenizer)
    if not features:
        raise InputError(f"Step {index} has no prompt segments before its {target} to attribute to.")
    settings: dict[str, Any] = {"segments": segments, "ablation": "removal"}
    if method == "layer_integrated_gradients":
        scores, matrix, rows, logprob, fwd, bwd = _integrated_gradients(lm, seq, features, n_steps, per_token)
        settings.update(n_steps=n_steps, per_token=per_token, baseline="pad token embeddings")
    else:
        scores, matrix, rows, logprob, fwd = _perturbation(lm, seq, features, method, n_samples, seed)
        bwd = 0
        if method == "shapley":
            settings.update(n_samples=n_samples, seed=seed)
    return AttributionResult(trace.id, index, target, method, granularity, features, scores, matrix, rows,
                             [seq.ids[t] for t in seq.targets], logprob, model=lm.name, settings=settings,
                             forward_passes=fwd, backward_passes=bwd, seconds=time.perf_counter() - t0)


def _row_labels(lm: Any, seq: StepSequence) -> list[str]:
    return [lm.tokenizer.decode([seq.ids[t]]) for t in seq.targets]


def _perturbation(lm, seq: StepSequence, features: list[Feature], method: str, n_samples: int, seed: int):
    import torch
    from captum.attr import FeatureAblation, ShapleyValueSampling

    scorer = PrefixScorer(lm, seq, features)
    forward = captum_forward(scorer)
    k = len(features)
    inputs = torch.ones(1, k)
    mask = torch.arange(k).unsqueeze(0)
    if method == "feature_ablation":
        attr = FeatureAblation(forward).attribute(inputs, baselines=0.0, feature_mask=mask, perturbations_per_eval=1)
    else:
        torch.manual_seed(seed)
        attr = ShapleyValueSampling(forward).attribute(inputs, baselines=0.0, feature_mask=mask, n_samples=n_samples,
                                                       perturbations_per_eval=1)
    attr = attr.reshape(1 + len(seq.targets), k)  # row 0: total; rows 1..: each target token
    return (attr[0].tolist(), attr[1:].tolist(), _row_labels(lm, seq), float(scorer.baseline.sum()), scorer.passes)


def _integrated_gradients(lm, seq: StepSequence, features: list[Feature], n_steps: int, per_token: bool):
    import torch
    from captum.attr import LayerIntegratedGradients

    model = lm.model
    ids = torch.tensor([seq.ids[: seq.targets[-1] + 1]], device=lm.device)  # (1, L)
    keep = ids.shape[1] - seq.targets[0] + 1
    rows_of = torch.tensor([t - 1 - (ids.shape[1] - keep) for t in seq.targets])
    target_ids = torch.tensor([seq.ids[t] for t in seq.targets])
    baseline = ids.clone()
    for f in features:  # interpolate only the features; everything else stays as it was
        baseline[0, f.start:f.end] = lm.pad_token_id
    counts = {"fwd": 0, "bwd": 0}

    def forward(input_ids, which=None):  # (batch, L) -> (batch,)
        counts["fwd"] += input_ids.shape[0]
        logits = model(input_ids=input_ids, logits_to_keep=keep).logits.float()  # (batch, keep, vocab)
        logp = torch.log_softmax(logits, -1)[:, rows_of, target_ids]  # (batch, n_targets)
        return logp.sum(-1) if which is None else logp[:, which]

    lig = LayerIntegratedGradients(forward, model.get_input_embeddings())
    outputs = [None] + (list(range(len(seq.targets))) if per_token else [])
    results = []
    for which in outputs:
        attr = lig.attribute(ids, baselines=baseline, n_steps=n_steps, internal_batch_size=4,
                             additional_forward_args=(which,))  # (1, L, hidden)
        counts["bwd"] += n_steps
        per_position = attr.sum(-1)[0].detach()  # (L,)
        results.append([float(per_position[f.start:f.end].sum()) for f in features])
    with torch.no_grad():
        total = float(forward(ids)[0])
    rows = [lm.tokenizer.decode([t]) for t in target_ids.tolist()] if per_token else ["(all target tokens)"]
    matrix = results[1:] if per_token else results[:1]
    return results[0], matrix, rows, total, counts["fwd"], counts["bwd"]


def captum_reference(trace: Trace, step: int | Any, target: str = "action", model: Any = None,
                     method: str = "feature_ablation", n_samples: int = 8, seed: int = 0,
                     **captum_kwargs: Any) -> AttributionResult:
    """The same attribution by Captum's own LLMAttribution: by default with Captum's defaults
    (token-by-token decoding with its cache, for every perturbation), the reference the fast path is
    measured against. ``captum_kwargs`` go to ``LLMAttribution.attribute`` (``forward_in_tokens=False``
    is Captum's one-pass mode)."""
    import torch
    from captum.attr import FeatureAblation, LLMAttribution, ShapleyValueSampling

    require("captum.attr", "Attribution")
    lm = _model_for(trace, model)
    index = _step_index(trace, step)
    t0 = time.perf_counter()
    seq = build_sequence(trace, index, lm.tokenizer, target)
    features = seq.features("segment", None, lm.tokenizer)
    inp = segment_input(seq, features)
    calls = {"n": 0}
    real_forward = lm.model.forward

    def counting_forward(*args, **kwargs):
        calls["n"] += 1
        return real_forward(*args, **kwargs)

    lm.model.forward = counting_forward
    try:
        algorithm = FeatureAblation(lm.model) if method == "feature_ablation" else ShapleyValueSampling(lm.model)
        kwargs = {"n_samples": n_samples, **captum_kwargs} if method == "shapley" else dict(captum_kwargs)
        torch.manual_seed(seed)
        with torch.no_grad():
            result = LLMAttribution(algorithm, lm.tokenizer).attribute(
                inp, target=torch.tensor([seq.ids[t] for t in seq.targets]), **kwargs)
    finally:
        del lm.model.forward  # back to the class's forward
    seq_attr = result.seq_attr.tolist()
    token_attr = result.token_attr.tolist() if result.token_attr is not None else [seq_attr]
    return AttributionResult(trace.id, index, target, method, "segment", features, seq_attr, token_attr,
                             _row_labels(lm, seq), [seq.ids[t] for t in seq.targets], float("nan"), model=lm.name,
                             settings={"engine": "captum LLMAttribution", **captum_kwargs}, forward_passes=calls["n"],
                             seconds=time.perf_counter() - t0)


def cache_key(trace: Trace, step: int, target: str, method: str, granularity: str, model_name: str,
              **settings: Any) -> str:
    """What an attribution depends on, hashed: the run, the step, the request and the model."""
    import hashlib

    blob = json.dumps({"run": trace.id, "rendered": trace.rendered_hash, "step": step, "target": target,
                       "method": method, "granularity": granularity, "model": model_name, **settings},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def attribute_cached(store: Any, trace: Trace, step: int, target: str = "step", method: str = "feature_ablation",
                     granularity: str = "segment", model: Any = None, **kwargs: Any) -> tuple[AttributionResult, bool]:
    """attribute_step through the store: a result computed once is read back instantly.

    Returns (result, whether it came from the cache).
    """
    lm = _model_for(trace, model)
    key = cache_key(trace, int(step), target, method, granularity, lm.name, **kwargs)
    cached = store.get_attribution(key)
    if cached is not None:
        return AttributionResult.from_dict(cached), True
    result = attribute_step(trace, step, target, method, granularity, lm, **kwargs)
    store.save_attribution(key, result)
    return result, False


# ------------------------------------------------------------------ across steps, models, prompts


def grounding_timeline(results: list[AttributionResult]) -> Any:
    """One row per step and group: the share of positive attribution (a trace's grounding over time)."""
    import pandas as pd

    return pd.DataFrame([{"step": r.step, "target": r.target, "group": g, "share": v}
                         for r in sorted(results, key=lambda r: r.step) for g, v in r.grounding().items()])


def attribution_diff(a: AttributionResult, b: AttributionResult, label_a: str = "a", label_b: str = "b") -> Any:
    """Aligned segment scores of the same step under two models, adapters or prompt versions.

    Features are aligned by label (``example 2``, ``observation 1``, ...); a feature only one side
    has scores 0 on the other. Returns a DataFrame with both scores and ``diff`` = b - a.
    """
    import pandas as pd

    if a.target != b.target:
        raise InputError(f"Cannot diff a {a.target!r} attribution with a {b.target!r} one; use the same target.")
    left = {f.label: (f.kind, s) for f, s in zip(a.features, a.scores)}
    right = {f.label: (f.kind, s) for f, s in zip(b.features, b.scores)}
    labels = list(dict.fromkeys([*left, *right]))
    rows = [{"label": lab, "kind": (left.get(lab) or right.get(lab))[0], label_a: left.get(lab, ("", 0.0))[1],
             label_b: right.get(lab, ("", 0.0))[1]} for lab in labels]
    df = pd.DataFrame(rows)
    df["diff"] = df[label_b] - df[label_a]
    return df


def randomized_copy(lm: Any, seed: int = 0) -> Any:
    """A copy of ``lm`` with every weight re-initialised: the model-randomisation sanity check
    (Adebayo et al., 2018) compares attributions under it with the trained model's."""
    import copy

    import torch

    from ..models import LoadedModel

    clone = copy.deepcopy(lm.model)
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in clone.parameters():
            p.normal_(0.0, 0.02)
    return LoadedModel(model=clone, tokenizer=lm.tokenizer, name=f"{lm.name} (randomised)", source=lm.source,
                       device=lm.device, dtype=lm.dtype)


def rank_correlation(x: list[float], y: list[float]) -> float:
    """Spearman's rank correlation of two score lists (ties get their mean rank)."""
    def ranks(v: list[float]) -> list[float]:
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r

    rx, ry = ranks(x), ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sx = math.sqrt(sum((a - mx) ** 2 for a in rx))
    sy = math.sqrt(sum((b - my) ** 2 for b in ry))
    return cov / (sx * sy) if sx > 0 and sy > 0 else 0.0
