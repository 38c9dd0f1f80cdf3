"""The Prompt lab's comparisons: two versions (or two models) on one instruction, on a suite, and
zero-shot against few-shot over k examples. Handlers take the tab's values; the work is workbench.prompt_lab."""

from __future__ import annotations

import re
from typing import Any

from ..agent import validate_task
from ..errors import InputError
from ..eval_modes import EVAL_MODES, agent_modes
from ..prompt_lab import (
    Variant,
    batch_compare,
    compare_run,
    k_sweep,
    resolve_prompt_ref,
)
from ..prompts import PromptTemplate
from ..viz import diff_heatmap
from .context import AppContext
from .prompt_editor import dataframe
from .render import outcomes_markdown, step_diff_html

__all__ = ["compare_versions", "batch_versions", "sweep_k", "parse_ks", "sweep_figure"]


def parse_ks(text: str) -> list[int]:
    """'0, 1,2' -> [0, 1, 2] (duplicates dropped, order kept)."""
    parts = [p for p in re.split(r"[,\s]+", text or "") if p]
    if not parts:
        raise InputError("Give the k values to try, separated by commas, e.g. 0,1,2,3.")
    try:
        return list(dict.fromkeys(int(p) for p in parts))
    except ValueError as err:
        raise InputError(f"k values are whole numbers separated by commas, e.g. 0,1,2,3; got {text!r}.") from err


def sweep_figure(table: Any, title: str = "Success against the number of few-shot examples") -> Any:
    """A k_sweep table as a line chart: success and F1 against k."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for col, color in (("success", "#1f78b4"), ("f1", "#33a02c")):
        fig.add_trace(go.Scatter(x=table["k"].tolist(), y=table[col].tolist(), mode="lines+markers", name=col,
                                 line=dict(color=color)))
    fig.update_layout(title=title, xaxis_title="k (few-shot examples; 0 = zero-shot)", yaxis_title="rate",
                      yaxis=dict(range=[0, 1.05]), xaxis=dict(dtick=1), height=340, margin=dict(l=10, r=10, t=50, b=40))
    return fig


def compare_versions(ctx: AppContext, instruction: str, version_a: str, version_b: str, model_a: str, model_b: str,
                     max_steps: float, attribution: bool, knowledge: str | None = None) -> tuple[Any, ...]:
    """Run the instruction under versions A and B: (outcomes, step diff html, "id, id", id A, id B,
    attribution diff figure or None, attribution diff table)."""
    task = validate_task(instruction)
    corpus = ctx.get_corpus(knowledge)
    (pa, _), (pb, _) = resolve_prompt_ref(ctx.store, version_a), resolve_prompt_ref(ctx.store, version_b)
    lm_a, lm_b = ctx.models.get(model_a), ctx.models.get(model_b or model_a)
    # Distinct labels: they name the attribution diff's columns, even when A and B are the same version.
    la, lb = (f"{side}: {p.name}@{p.hash[:6]}" + (f" · {lm.name}" if lm_a is not lm_b else "")
              for side, p, lm in (("A", pa, lm_a), ("B", pb, lm_b)))
    cmp = compare_run(task, [Variant(pa, lm_a, la), Variant(pb, lm_b, lb)], lm_a, corpus=corpus,
                      max_steps=int(max_steps), attribution=bool(attribution), store=ctx.store)
    ids = (cmp.traces[0].id, cmp.traces[1].id)
    diff = cmp.attribution
    table = step_diff_html([d.row() for d in cmp.steps], la[3:], lb[3:])  # its legend says which is A
    if diff is None:  # attribution off, or no step both runs have
        return (outcomes_markdown(cmp.outcomes(), cmp.labels, ids), table, ", ".join(ids), *ids, None,
                dataframe([], ["label", "kind", la, lb, "diff"]))
    return (outcomes_markdown(cmp.outcomes(), cmp.labels, ids), table, ", ".join(ids), *ids,
            diff_heatmap(diff, la, lb), diff.round(4))


def _usable(prompt: PromptTemplate, mode: str, side: str) -> PromptTemplate:
    if prompt.mode not in agent_modes(mode):  # a batch compare refuses a prompt the mode would never use
        fits = ", ".join(m for m in EVAL_MODES if prompt.mode in agent_modes(m))
        raise InputError(f"Version {side} is a {prompt.mode} prompt, which the {mode} mode never uses. "
                         f"Pick a mode that runs {prompt.mode}: {fits}.")
    return prompt


def batch_versions(ctx: AppContext, suite: str, limit: float, version_a: str, version_b: str, mode: str,
                   model: str) -> tuple[Any, ...]:
    """Versions A and B over a suite in one mode: (status, by mode, by task type, flipped tasks)."""
    pa = _usable(resolve_prompt_ref(ctx.store, version_a)[0], mode, "A")
    pb = _usable(resolve_prompt_ref(ctx.store, version_b)[0], mode, "B")
    out = batch_compare(suite, pa, pb, ctx.models.get(model), modes=[mode], limit=int(limit), store=ctx.store)
    a, b = out["runs"]
    status = (f"{suite} · {int(limit)} tasks · {mode} · A = `{pa.name}@{pa.hash[:6]}` (evaluation `{a}`), "
              f"B = `{pb.name}@{pb.hash[:6]}` (evaluation `{b}`) · {len(out['flipped'])} flipped")
    return status, out["by_mode"], out["by_type"], out["flipped"]


def sweep_k(ctx: AppContext, suite: str, limit: float, ks: str, version_a: str, model: str) -> tuple[Any, Any]:
    """Version A over a suite with k = each of ``ks`` few-shot examples: (table, figure)."""
    prompt = resolve_prompt_ref(ctx.store, version_a)[0]
    table = k_sweep(suite, ctx.models.get(model), parse_ks(ks), mode=prompt.mode, prompt=prompt, limit=int(limit),
                    store=ctx.store)
    return table, sweep_figure(table, f"{prompt.name}@{prompt.hash[:6]} on {suite}: success against k")
