"""What an attribution gives back: :class:`AttributionResult` (scores per feature, checked
against its own shapes), its views and exports, and the comparisons across results: the grounding
timeline of a run and the diff of one step under two models.

    >>> result.grounding()                                          # doctest: +SKIP
    {'observations': 0.61, 'examples': 0.22, 'task': 0.09, 'own thoughts': 0.05, 'instruction': 0.03}
    >>> result.to_dataframe().nlargest(3, "score")                  # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import InputError
from .engine import Feature
from .faithfulness import Faithfulness

__all__ = ["AttributionResult", "GROUNDING_GROUPS", "grounding_timeline", "attribution_diff"]

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
    faithfulness: Faithfulness | None = None  # how well the map predicts held-out ablations (its own passes)
    tokens_run: int = 0  # tokens the method's passes computed (a reused cached prefix costs nothing)
    tokens_full: int = 0  # tokens the same passes would compute with nothing reused

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

    def cost(self) -> str:
        """One line: passes, time, and the tokens recomputed against recomputing every pass in full."""
        line = f"{self.forward_passes} forward"
        if self.backward_passes:
            line += f" / {self.backward_passes} backward"
        line += f" passes, {self.seconds:.1f} s"
        if self.tokens_full:
            line += (f"; {self.tokens_run:,} tokens recomputed of {self.tokens_full:,} without prefix reuse "
                     f"({self.tokens_run / self.tokens_full:.0%})")
        return line

    def segment_scores(self) -> dict[str, float]:
        """The first level of the two-level view: each segment's total over its sentences (or tokens),
        in prompt order. For segment features, the scores themselves."""
        out: dict[str, float] = {}
        for f, s in zip(self.features, self.scores):
            out[f.segment] = out.get(f.segment, 0.0) + s
        return out

    def inside(self, segment: str) -> list[tuple[Feature, float]]:
        """The second level: the features (sentences or tokens) inside ``segment`` with their scores."""
        return [(f, s) for f, s in zip(self.features, self.scores) if f.segment == segment]

    def to_dataframe(self) -> Any:
        """Tidy: one row per feature (step, target, feature, label, segment, kind, score, text)."""
        import pandas as pd

        return pd.DataFrame([{"run": self.trace_id, "step": self.step, "target": self.target, "method": self.method,
                              "feature": i, "label": f.label, "segment": f.segment, "kind": f.kind, "score": s,
                              "text": f.text}
                             for i, (f, s) in enumerate(zip(self.features, self.scores))])

    def text_map_html(self, leave_out_own: bool = False) -> str:
        """The map over the prompt's own text: every feature's text shaded by its score (red raised
        the target's log-probability, blue lowered it), the score on hover, grouped by segment with
        the segment's total. ``leave_out_own``: shade without this step's own thought and action
        (which an action mostly copies), so the rest of the map is readable; they are shown grey."""
        own = {f.segment for f in self.features if f.segment.endswith("(this step)")} if leave_out_own else set()
        shaded = [abs(s) for f, s in zip(self.features, self.scores) if f.segment not in own]
        peak = max(shaded, default=0.0) or 1.0
        totals = self.segment_scores()
        blocks, current = [], None
        for f, s in zip(self.features, self.scores):
            if f.segment != current:
                if current is not None:
                    blocks.append("</div>")
                current = f.segment
                blocks.append(f"<div class='wb-map-seg'><div class='wb-map-head'>{html.escape(current)} "
                              f"<b>{totals[current]:+.3f}</b></div>")
            if f.segment in own:
                style = "background:#e5e5e5;color:#777"
            else:
                alpha = min(1.0, abs(s) / peak)
                style = f"background:{'rgba(214,39,40,' if s > 0 else 'rgba(31,119,180,'}{alpha:.2f})"
            text = f.text or f.label
            blocks.append(f'<span class="wb-map-f" title="{html.escape(f.label)}: {s:+.4f}" '
                          f'style="{style};white-space:pre-wrap">{html.escape(text)}</span> ')
        if current is not None:
            blocks.append("</div>")
        note = " (own thought and action left out of the shading)" if own else ""
        return (f"<div class='wb-map' style='font-family:monospace;font-size:13px'>"
                f"<p style='font-family:sans-serif'>Red raised the target's log-probability, blue lowered it; "
                f"hover for the score{note}.</p>{''.join(blocks)}</div>")

    def top(self, n: int = 5) -> list[tuple[str, float]]:
        order = sorted(range(len(self.scores)), key=lambda i: -abs(self.scores[i]))[:n]
        return [(self.features[i].label, self.scores[i]) for i in order]

    def to_html(self, title: str | None = None) -> str:
        """A standalone HTML page: the prompt with each feature shaded by its score, and the table."""
        rows = "".join(f"<tr><td>{html.escape(f.label)}</td><td>{f.kind}</td><td>{s:+.4f}</td></tr>"
                       for f, s in sorted(zip(self.features, self.scores), key=lambda x: -x[1]))
        shares = "".join(f"<li>{g}: {v:.0%}</li>" for g, v in self.grounding().items())
        head = html.escape(title or f"Attribution of step {self.step} ({self.target}) of run {self.trace_id}")
        return (f"<!doctype html><html><head><meta charset='utf-8'><title>{head}</title>"
                "<style>body{font-family:sans-serif;max-width:1000px;margin:auto}td{padding:2px 8px}"
                ".prompt{font-family:monospace;font-size:13px;border:1px solid #ccc;padding:8px}</style></head><body>"
                f"<h2>{head}</h2><p>method {self.method}, {self.granularity} features, model {html.escape(self.model)}, "
                f"{html.escape(self.cost())}.</p>"
                f"<h3>Faithfulness</h3><p>{html.escape(self.faithfulness.summary() if self.faithfulness else 'not measured')}"
                "</p>"
                f"<h3>Grounding</h3><ul>{shares}</ul><h3>Prompt</h3><div class='prompt'>{self.text_map_html()}</div>"
                f"<h3>Scores</h3><table><tr><th>feature</th><th>kind</th><th>score</th></tr>{rows}</table>"
                "</body></html>")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AttributionResult":
        data = dict(data)
        data["features"] = [Feature(**f) for f in data["features"]]
        if data.get("faithfulness") is not None:
            data["faithfulness"] = Faithfulness.from_dict(data["faithfulness"])
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


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
