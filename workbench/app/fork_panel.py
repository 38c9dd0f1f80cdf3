"""The Run tab's interventions: "Fork from here" on any step, the fork beside the original, the attribution
diff of the first step after the fork, and each generated token's alternatives (a click forks at it).

Wiring only: the work is workbench.interventions' (fork, compare_fork, token_alternatives).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator

import gradio as gr  # this module is imported only by build_app, never by `import workbench`

from ..errors import InputError
from ..fork_viz import entropy_chart
from ..interventions import compare_fork, first_step_after, parent_corpus, stream_fork, token_alternatives
from ..types import Step, Trace
from .context import AppContext, describe_error
from .render import fork_html, outcomes_markdown
from .wiring import guard

__all__ = ["build_fork_panel", "fork_from_here", "fork_text", "alternatives_view", "FORK_PARTS", "ALT_COLUMNS"]

FORK_PARTS = ["observation", "action", "thought", "task", "no change"]
ALT_COLUMNS = ["#", "token", "p", "entropy", "alt 1", "alt 2", "alt 3", "alt 4", "alt 5"]


def _step(trace_dict: dict | None, step_choice: Any) -> tuple[Trace, Step]:
    if not trace_dict or not step_choice:
        raise InputError("Run something (or open a run from History), then pick a step to fork from.")
    trace = Trace.from_dict(trace_dict)
    step = next((s for s in trace.steps if str(s.index) == str(step_choice) and s.kind != "halt"), None)
    if step is None:
        raise InputError(f"No step {step_choice} in this run; pick one of the steps listed.")
    return trace, step


def fork_text(trace_dict: dict | None, step_choice: Any, part: str) -> str:
    """The text a fork of ``part`` starts from: the step's current thought, action, observation or the task."""
    try:
        trace, step = _step(trace_dict, step_choice)
    except InputError:
        return ""
    return {"observation": step.observation, "action": str(step.action) if step.action else "",
            "thought": step.thought, "task": trace.task}.get(part) or ""


@guard
def fork_from_here(ctx: AppContext, trace_dict: dict | None, step_choice: Any, part: str, text: str,
                   model_label: str, token: tuple[int, int] | None = None, session: str = "") -> Iterator[tuple[Any, ...]]:
    """Stream a fork of the shown run at the chosen step: (outcomes markdown, side-by-side html, fork trace dict,
    fork run id). The fork is stored with its parent; History lists it under the parent."""
    parent, step = _step(trace_dict, step_choice)
    if part not in FORK_PARTS:
        raise InputError(f"Unknown part {part!r}. Available: {', '.join(FORK_PARTS)}.")
    lm = ctx.models.get(model_label)
    if parent.model and getattr(lm, "name", "") != parent.model:
        raise InputError(f"This run was made with {parent.model!r}; pick that model in the Model menu to fork it.")
    change: dict[str, Any] = {"token": token} if token is not None else (
        {} if part == "no change" else {part: text})
    corpus = parent_corpus(parent, ctx.knowledge)
    cancel = ctx.cancel_event(session)
    child = None
    for child in stream_fork(parent, step.index, lm, corpus=corpus, cancel=cancel, **change):
        cmp = compare_fork(parent, child)
        yield (f"Forking… {len(child.steps)} step(s)", fork_html(cmp, child.meta["fork"]["step"]), None, "")
    assert child is not None
    try:
        ctx.store.save_trace(child, tags="fork")
    except Exception as err:  # the fork is still shown; only its saving failed
        gr.Warning(f"The fork could not be saved: {describe_error(err)}")
    cmp = compare_fork(parent, child)
    at = child.meta["fork"]["step"]
    yield (outcomes_markdown(cmp.outcomes(), cmp.labels, (parent.id, child.id)), fork_html(cmp, at), child.to_dict(),
           child.id)


@guard
def fork_attribution(ctx: AppContext, parent_dict: dict | None, fork_dict: dict | None, model_label: str) -> Any:
    """The attribution diff (feature ablation over segments) of the first step after the fork, original vs fork."""
    if not parent_dict or not fork_dict:
        raise InputError("Fork a run first; then its attribution diff can be computed.")
    parent, child = Trace.from_dict(parent_dict), Trace.from_dict(fork_dict)
    if (child.meta.get("fork") or {}).get("parent") != parent.id:
        raise InputError("The run shown is not this fork's parent; open the parent run, or fork it again.")
    cmp = compare_fork(parent, child, attribution=True, model=ctx.models.get(model_label))
    if cmp.attribution is None:
        raise InputError(f"One of the runs has no step {first_step_after(child)} to attribute (it ended before).")
    return cmp.attribution.sort_values("diff", key=abs, ascending=False).round(4)


def alternatives_view(trace_dict: dict | None, step_choice: Any) -> tuple[Any, Any]:
    """(table of each generated token with its top 5 alternatives, entropy line) of the chosen step."""
    try:
        _, step = _step(trace_dict, step_choice)
    except InputError:
        return [], None
    rows = []
    for r in token_alternatives(step):
        alts = [f"{tok!r} {p:.2f}" for tok, _, p in r["alternatives"]] + [""] * (5 - len(r["alternatives"]))
        p = r["p"] if r["p"] is not None and not math.isnan(r["p"]) else None
        rows.append([r["position"], repr(r["token"]), None if p is None else round(p, 3),
                     None if r["entropy"] is None else round(r["entropy"], 2), *alts[:5]])
    return rows, (entropy_chart(step) if step.generation.entropy else None)


def _picked_token(trace_dict: dict | None, step_choice: Any, evt: gr.SelectData) -> tuple[int, int]:
    """The (position, token id) of a clicked alternative in the alternatives table."""
    _, step = _step(trace_dict, step_choice)
    row, col = (evt.index if isinstance(evt.index, (list, tuple)) else (evt.index, 0))
    k = int(col) - 4
    alts = step.generation.alternatives[int(row)] if int(row) < len(step.generation.alternatives) else []
    if not 0 <= k < len(alts):
        raise InputError("Click one of the alternatives (alt 1 … alt 5) to fork the run at that token.")
    return int(row), int(alts[k][1])


def build_fork_panel(ctx: AppContext, trace_state: Any, step_pick: Any, model: Any,
                     session: Callable[[Any], str]) -> dict[str, Any]:
    """Lay out the fork controls and the token alternatives inside the step inspector; wire their events."""
    gr.Markdown("**Token alternatives**: the 5 likeliest tokens at each position, recorded while decoding. "
                "Click an alternative to fork the run at that token.")
    with gr.Row():
        alt_table = gr.Dataframe(headers=ALT_COLUMNS, value=[], interactive=False, elem_id="wb-alternatives", scale=3)
        entropy = gr.Plot(label="Entropy per token", scale=2)
    with gr.Group():
        gr.Markdown("**Fork from here**: change this step's observation, action or thought (or the task) and let "
                    "the agent go on. Nothing before the change is generated again.")
        with gr.Row():
            part = gr.Radio(FORK_PARTS, value="observation", label="Change", elem_id="wb-fork-part", scale=2)
            text = gr.Textbox(label="New text", lines=2, elem_id="wb-fork-text", scale=4)
            fork_btn = gr.Button("Fork from here", variant="primary", elem_id="wb-fork", scale=1)
    outcomes = gr.Markdown(elem_id="wb-fork-outcomes")
    side = gr.HTML(elem_id="wb-fork-view")
    fork_id = gr.Textbox(label="Fork run id", interactive=False, elem_id="wb-fork-id")
    with gr.Row():
        attr_btn = gr.Button("Attribution diff of the first step after the fork", elem_id="wb-fork-attribution")
    attr_table = gr.Dataframe(label="Which parts of the prompt drive that step now (diff = fork − original)",
                              interactive=False, elem_id="wb-fork-attribution-table")
    fork_state = gr.State(None)
    outputs = [outcomes, side, fork_state, fork_id]

    def _fork(trace_dict, step_choice, part, text, model_label, request: gr.Request):
        yield from fork_from_here(ctx, trace_dict, step_choice, part, text, model_label, session=session(request))

    def _fork_token(trace_dict, step_choice, model_label, evt: gr.SelectData, request: gr.Request):
        with_errors = guard(lambda: _picked_token(trace_dict, step_choice, evt))
        token = with_errors()
        yield from fork_from_here(ctx, trace_dict, step_choice, "no change", "", model_label, token=token,
                                  session=session(request))

    fork_btn.click(_fork, [trace_state, step_pick, part, text, model], outputs, api_name="fork", concurrency_limit=4)
    alt_table.select(_fork_token, [trace_state, step_pick, model], outputs, api_name=False, concurrency_limit=4)
    for trigger in (step_pick.change, part.change):
        trigger(fork_text, [trace_state, step_pick, part], text, api_name=False)
    step_pick.change(alternatives_view, [trace_state, step_pick], [alt_table, entropy], api_name="alternatives")
    attr_btn.click(lambda p, f, m: fork_attribution(ctx, p, f, m), [trace_state, fork_state, model], attr_table,
                   api_name="fork_attribution")
    return {"fork_outputs": outputs, "fork_button": fork_btn}
