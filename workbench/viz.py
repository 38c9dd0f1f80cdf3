"""Plotly figures of traces. Pure functions: they return a Figure and never call ``.show()``.

The notebook displays what they return; the app hands it to ``gr.Plot``.

    >>> fig = step_timeline(trace)       # doctest: +SKIP
    >>> fig.data[0].name                 # doctest: +SKIP
    'prefill'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .types import Step, Trace

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

__all__ = ["step_timeline", "token_confidence", "mode_bars", "compare_evals", "attribution_heatmap", "segment_bars",
           "grounding_chart", "diff_heatmap", "KIND_COLORS", "PHASE_COLORS"]

# One colour per segment kind, shared by every view so a reader learns them once.
KIND_COLORS = {
    "scaffold": "#9e9e9e",
    "instruction": "#6a3d9a",
    "tools": "#b15928",
    "example": "#1f78b4",
    "task": "#e31a1c",
    "thought": "#33a02c",
    "action": "#ff7f00",
    "observation": "#a6cee3",
    "answer": "#fb9a99",
}
PHASE_COLORS = {"prefill": "#1f78b4", "decode": "#33a02c", "tool": "#ff7f00"}


def _step_name(step: Step) -> str:
    if step.kind == "halt":
        return "halt"
    what = str(step.action) if step.action else ("answer" if step.answer is not None else "no action")
    return f"{step.index}: {what[:40]}"


def step_timeline(trace: Trace) -> "go.Figure":
    """Where the time of a run went: one bar per step, split into prefill, decode and tool time.

    Hover shows tokens reused from the cache, tokens prefilled and tokens generated.
    """
    import plotly.graph_objects as go

    steps = trace.steps
    names = [_step_name(s) for s in steps]
    durations = {"prefill": [s.t_prefill for s in steps], "decode": [s.t_decode for s in steps],
                 "tool": [s.t_tool for s in steps]}
    starts, t = [], 0.0
    for s in steps:
        starts.append(t)
        t += s.t_prefill + s.t_decode + s.t_tool
    fig = go.Figure()
    offset = list(starts)
    for phase, widths in durations.items():
        fig.add_trace(go.Bar(
            name=phase, y=names, x=widths, base=list(offset), orientation="h", marker_color=PHASE_COLORS[phase],
            customdata=[[s.reused_tokens, s.prefill_tokens, s.generated_tokens] for s in steps],
            hovertemplate=(f"{phase}: %{{x:.3f}} s<br>reused %{{customdata[0]}} tok, prefilled %{{customdata[1]}} tok, "
                           "generated %{customdata[2]} tok<extra></extra>"),
        ))
        offset = [o + w for o, w in zip(offset, widths)]
    fig.update_layout(
        barmode="overlay", title=f"Step timeline ({len(steps)} steps, {t:.2f} s)", xaxis_title="seconds since start",
        yaxis=dict(autorange="reversed"), height=max(240, 90 + 40 * len(steps)), margin=dict(l=10, r=10, t=70, b=40),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0),
    )
    return fig


def token_confidence(step: Step) -> "go.Figure":
    """The probability the model gave each token it generated in one step."""
    import math

    import plotly.graph_objects as go

    probs = [math.exp(lp) for lp in step.logprobs]
    labels = [f"{i}:{t!r}" for i, t in enumerate(step.tokens)]
    fig = go.Figure(go.Bar(x=labels, y=probs, marker_color=[KIND_COLORS["thought"] if p > 0.5 else "#e31a1c" for p in probs],
                           hovertemplate="%{x}<br>p = %{y:.3f}<extra></extra>"))
    fig.update_layout(title=f"Step {step.index}: probability of each generated token", yaxis=dict(range=[0, 1], title="p"),
                      xaxis=dict(showticklabels=len(probs) <= 40), height=300, margin=dict(l=10, r=10, t=40, b=30))
    return fig


def mode_bars(by_type: "pd.DataFrame", metric: str = "success") -> "go.Figure":
    """An evaluation's ``metric`` by mode (bars) and task type (groups), from aggregate(by mode, type)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    if by_type is None or len(by_type) == 0:
        fig.update_layout(title="No results yet")
        return fig
    types = list(dict.fromkeys(by_type["type"]))
    for mode in dict.fromkeys(by_type["mode"]):
        part = by_type[by_type["mode"] == mode].set_index("type")
        fig.add_trace(go.Bar(name=mode, x=types, y=[float(part[metric].get(t, 0.0)) for t in types],
                             customdata=[int(part["tasks"].get(t, 0)) for t in types],
                             hovertemplate=f"{mode} · %{{x}}<br>{metric} %{{y:.2f}} over %{{customdata}} tasks<extra></extra>"))
    fig.update_layout(barmode="group", title=f"{metric} by mode and task type", yaxis=dict(range=[0, 1], title=metric),
                      height=380, margin=dict(l=10, r=10, t=50, b=30), legend=dict(orientation="h", y=1.12))
    return fig


def compare_evals(a: "pd.DataFrame", b: "pd.DataFrame", label_a: str, label_b: str,
                  metric: str = "success") -> "go.Figure":
    """Two evaluations side by side: ``metric`` per mode (aggregate by mode of each)."""
    import plotly.graph_objects as go

    modes = list(dict.fromkeys([*a["mode"], *b["mode"]]))
    fig = go.Figure()
    for label, agg in ((label_a, a), (label_b, b)):
        part = agg.set_index("mode")
        fig.add_trace(go.Bar(name=label, x=modes, y=[float(part[metric].get(m, 0.0)) for m in modes]))
    fig.update_layout(barmode="group", title=f"{metric} by mode: {label_a} vs {label_b}", height=360,
                      yaxis=dict(range=[0, 1], title=metric), margin=dict(l=10, r=10, t=50, b=30))
    return fig


def _short(text: str, n: int = 60) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def attribution_heatmap(result: Any, max_rows: int = 80) -> "go.Figure":
    """Output tokens (rows) by input features (columns); hover shows the feature's text."""
    import plotly.graph_objects as go

    z = result.matrix[:max_rows]
    rows = [f"{i}:{t!r}" for i, t in enumerate(result.row_labels[:max_rows])]
    cols = [f.label for f in result.features]
    hover = [[f"{rows[i]} ← {f.label} ({f.kind})<br>{_short(f.text, 90)}<br>score {z[i][j]:+.4f}"
              for j, f in enumerate(result.features)] for i in range(len(z))]
    peak = max((abs(v) for row in z for v in row), default=1.0) or 1.0
    fig = go.Figure(go.Heatmap(z=z, x=cols, y=rows, colorscale="RdBu", reversescale=True, zmid=0, zmin=-peak,
                               zmax=peak, hovertext=hover, hoverinfo="text", colorbar=dict(title="Δ log p")))
    fig.update_layout(title=f"Step {result.step} {result.target}: {result.method} ({result.granularity})",
                      yaxis=dict(autorange="reversed"), height=max(300, 120 + 18 * len(rows)),
                      margin=dict(l=10, r=10, t=50, b=80))
    return fig


def segment_bars(result: Any) -> "go.Figure":
    """One bar per feature, coloured by segment kind; hover shows its text."""
    import plotly.graph_objects as go

    fig = go.Figure(go.Bar(
        x=[f.label for f in result.features], y=result.scores,
        marker_color=[KIND_COLORS.get(f.kind, "#999999") for f in result.features],
        hovertext=[f"{f.label} ({f.kind})<br>{_short(f.text, 120)}" for f in result.features],
        hovertemplate="%{hovertext}<br>score %{y:+.4f}<extra></extra>"))
    fig.update_layout(title=f"Which parts drove step {result.step}'s {result.target} "
                            f"(total log p {result.target_logprob:.2f})",
                      yaxis_title="effect on log p of the target", height=380, margin=dict(l=10, r=10, t=50, b=80))
    return fig


def grounding_chart(timeline: "pd.DataFrame") -> "go.Figure":
    """Stacked shares of positive attribution per step (from attribution.grounding_timeline)."""
    import plotly.graph_objects as go

    colors = {"observations": KIND_COLORS["observation"], "examples": KIND_COLORS["example"],
              "task": KIND_COLORS["task"], "own thoughts": KIND_COLORS["thought"],
              "instruction": KIND_COLORS["instruction"]}
    fig = go.Figure()
    for group in dict.fromkeys(timeline["group"]) if len(timeline) else []:
        part = timeline[timeline["group"] == group]
        fig.add_trace(go.Bar(name=group, x=part["step"], y=part["share"], marker_color=colors.get(group)))
    fig.update_layout(barmode="stack", title="Grounding: where each step's evidence came from", height=340,
                      xaxis=dict(title="step", dtick=1), yaxis=dict(title="share of positive attribution",
                                                                     range=[0, 1]),
                      margin=dict(l=10, r=10, t=50, b=30), legend=dict(orientation="h", y=1.15))
    return fig


def diff_heatmap(diff: "pd.DataFrame", label_a: str = "a", label_b: str = "b") -> "go.Figure":
    """Segment scores under two models or prompts, and their difference (from attribution_diff)."""
    import plotly.graph_objects as go

    z = [diff[label_a].tolist(), diff[label_b].tolist(), diff["diff"].tolist()]
    peak = max((abs(v) for row in z for v in row), default=1.0) or 1.0
    fig = go.Figure(go.Heatmap(z=z, x=diff["label"].tolist(), y=[label_a, label_b, f"{label_b} − {label_a}"],
                               colorscale="RdBu", reversescale=True, zmid=0, zmin=-peak, zmax=peak))
    fig.update_layout(title="Attribution diff by segment", height=300, margin=dict(l=10, r=10, t=50, b=80))
    return fig
