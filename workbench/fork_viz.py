"""Figures of interventions, as pure functions -> plotly Figure (never .show()): the entropy of each generated
token of a step, and the counterfactual check's share of answers that follow a swapped fact.

    >>> fig = entropy_chart(trace.steps[1])        # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .types import Step

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["entropy_chart", "follow_bars"]


def entropy_chart(step: Step) -> "go.Figure":
    """The entropy (nats) of the distribution each generated token of ``step`` came from, as a line, with the
    token's own probability on hover: where the model hesitated."""
    import plotly.graph_objects as go

    g = step.generation
    n = min(len(g.entropy), len(g.tokens))
    x = list(range(n))
    probs = [math.exp(lp) for lp in g.logprobs[:n]]
    fig = go.Figure(go.Scatter(x=x, y=g.entropy[:n], mode="lines+markers", name="entropy",
                               customdata=[[repr(t), p] for t, p in zip(g.tokens[:n], probs)],
                               hovertemplate="token %{x}: %{customdata[0]}<br>entropy %{y:.2f} nats · "
                                             "p = %{customdata[1]:.3f}<extra></extra>"))
    fig.update_layout(title=f"Step {step.index}: entropy of each generated token" if n else "No entropy recorded",
                      xaxis=dict(title="token"), yaxis=dict(title="entropy (nats)", rangemode="tozero"), height=280,
                      margin=dict(l=10, r=10, t=40, b=30))
    return fig


def follow_bars(summary: Any) -> "go.Figure":
    """Counterfactual check: the share of answers that follow the swapped fact, per mode and model (a DataFrame
    with ``mode``, ``model``, ``follows``, ``kept``, ``other`` shares and ``tasks``)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    if summary is None or len(summary) == 0:
        fig.update_layout(title="No counterfactual results yet")
        return fig
    labels = [f"{r['mode']} · {r['model']}" for _, r in summary.iterrows()]
    for column, color in (("follows", "#2e7d32"), ("kept", "#c62828"), ("other", "#9e9e9e")):
        fig.add_trace(go.Bar(name=column, x=labels, y=list(summary[column]), marker_color=color,
                             customdata=list(summary["tasks"]),
                             hovertemplate=f"%{{x}}<br>{column} %{{y:.0%}} of %{{customdata}} tasks<extra></extra>"))
    fig.update_layout(barmode="stack", title="Does the answer follow the swapped observation?", height=360,
                      yaxis=dict(range=[0, 1], title="share of tasks", tickformat=".0%"),
                      margin=dict(l=10, r=10, t=50, b=30), legend=dict(orientation="h", y=1.12))
    return fig
