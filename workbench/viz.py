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
           "grounding_chart", "diff_heatmap", "training_curves", "forgetting_chart", "KIND_COLORS", "PHASE_COLORS"]

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
    durations = {"prefill": [s.generation.t_prefill for s in steps], "decode": [s.generation.t_decode for s in steps],
                 "tool": [s.t_tool for s in steps]}
    starts, t = [], 0.0
    for s in steps:
        starts.append(t)
        t += s.generation.t_prefill + s.generation.t_decode + s.t_tool
    fig = go.Figure()
    offset = list(starts)
    for phase, widths in durations.items():
        fig.add_trace(go.Bar(
            name=phase, y=names, x=widths, base=list(offset), orientation="h", marker_color=PHASE_COLORS[phase],
            customdata=[[s.generation.reused_tokens, s.generation.prefill_tokens, s.generation.generated_tokens] for s in steps],
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

    probs = [math.exp(lp) for lp in step.generation.logprobs]
    labels = [f"{i}:{t!r}" for i, t in enumerate(step.generation.tokens)]
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


def segment_level_bars(result: Any) -> "go.Figure":
    """The first level of the two-level view: one bar per segment, the total of its sentences (or
    tokens); hover names how many features it holds and its strongest one."""
    import plotly.graph_objects as go

    totals = result.segment_scores()
    kinds = {f.segment: f.kind for f in result.features}
    hover = []
    for seg in totals:
        inside = result.inside(seg)
        best = max(inside, key=lambda fs: abs(fs[1]))
        hover.append(f"{seg}: {len(inside)} feature(s)<br>strongest: {_short(best[0].text or best[0].label, 80)} "
                     f"({best[1]:+.3f})")
    fig = go.Figure(go.Bar(x=list(totals), y=list(totals.values()),
                           marker_color=[KIND_COLORS.get(kinds[s], "#999999") for s in totals], hovertext=hover,
                           hovertemplate="%{hovertext}<br>total %{y:+.4f}<extra></extra>"))
    fig.update_layout(title=f"Step {result.step}'s {result.target}: segment totals (pick a segment to see its "
                            "sentences)", yaxis_title="effect on log p of the target", height=360,
                      margin=dict(l=10, r=10, t=50, b=80))
    return fig


def dependency_heatmap(dep: Any) -> "go.Figure":
    """Steps (rows) by the parts of their prompts (columns): which earlier step drove each step."""
    import plotly.graph_objects as go

    z = [[None if v is None else v for v in row] for row in dep.matrix]
    peak = max((abs(v) for row in z for v in row if v is not None), default=1.0) or 1.0
    rows = [f"step {s}" for s in dep.steps]
    hover = [[f"{rows[i]} ← {c}: " + ("not in its prompt" if v is None else f"{v:+.4f}") for c, v in
              zip(dep.columns, row)] for i, row in enumerate(z)]
    fig = go.Figure(go.Heatmap(z=z, x=dep.columns, y=rows, colorscale="RdBu", reversescale=True, zmid=0,
                               zmin=-peak, zmax=peak, hovertext=hover, hoverinfo="text",
                               colorbar=dict(title="Δ log p")))
    fig.update_layout(title=f"Which earlier part drove each step ({dep.method}, target {dep.target})",
                      yaxis=dict(autorange="reversed"), height=max(300, 140 + 40 * len(rows)),
                      margin=dict(l=10, r=10, t=50, b=100))
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


# ---------------------------------------------------------------------- fine-tuning

_LOSS_LINES = (("train_loss", "train (weighted sum)", "solid"), ("train_loss_reasoning", "train: reasoning", "dot"),
               ("train_loss_action", "train: action", "dash"), ("eval_loss", "eval (weighted sum)", "solid"),
               ("eval_loss_reasoning", "eval: reasoning", "dot"), ("eval_loss_action", "eval: action", "dash"))


def training_curves(points: list[dict[str, Any]], title: str = "") -> "go.Figure":
    """Loss (both parts, train and evaluation), learning rate, probe success and tokens/s against step.

    ``points`` are metric rows ``{"step", "name", "value"}`` as ``Store.job_metrics`` returns them."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    series: dict[str, tuple[list[int], list[float]]] = {}
    for p in points:
        xs, ys = series.setdefault(p["name"], ([], []))
        xs.append(p["step"])
        ys.append(p["value"])
    fig = make_subplots(rows=2, cols=2, subplot_titles=("loss", "learning rate", "probe success rate", "tokens / s"),
                        vertical_spacing=0.14, horizontal_spacing=0.08)
    for name, label, dash in _LOSS_LINES:
        if name in series:
            color = "#1f78b4" if name.startswith("train") else "#e31a1c"
            fig.add_trace(go.Scatter(x=series[name][0], y=series[name][1], name=label, mode="lines+markers"
                                     if name.startswith("eval") else "lines", line={"dash": dash, "color": color}),
                          row=1, col=1)
    for name, label, row, col in (("lr", "learning rate", 1, 2), ("probe_success", "probe success", 2, 1),
                                  ("eval_accuracy", "eval accuracy", 2, 1), ("tokens_per_s", "tokens/s", 2, 2),
                                  ("examples_per_s", "examples/s", 2, 2)):
        if name in series:
            fig.add_trace(go.Scatter(x=series[name][0], y=series[name][1], name=label,
                                     mode="lines+markers" if row == 2 and col == 1 else "lines"), row=row, col=col)
    fig.update_yaxes(range=[0, 1.05], row=2, col=1)
    fig.update_xaxes(title_text="step", row=2)
    fig.update_layout(title=title or None, height=520, margin={"l": 40, "r": 10, "t": 60, "b": 40},
                      legend={"orientation": "h", "y": -0.15})
    return fig


def forgetting_chart(result: dict[str, Any]) -> "go.Figure":
    """Continual learning: the first family's success before and after training on the second."""
    import plotly.graph_objects as go

    labels = [f"{result['first_family']}<br>after phase 1", f"{result['first_family']}<br>after phase 2",
              f"{result['second_family']}<br>after phase 2"]
    values = [result["first_success_before"], result["first_success_after"], result["second_success"]]
    fig = go.Figure(go.Bar(x=labels, y=values, marker_color=["#1f78b4", "#e31a1c", "#33a02c"],
                           text=[f"{v:.0%}" for v in values], textposition="outside"))
    fig.update_layout(title=f"forgetting: {result['forgetting']:+.0%} (replay {result.get('replay_fraction', 0):.0%})",
                      yaxis={"range": [0, 1.1], "title": "success rate"}, height=380)
    return fig
