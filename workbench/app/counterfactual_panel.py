"""The Evaluate tab's counterfactual panel: swap the fact each answer came from and see whether it follows.

Wiring only: the work is workbench.counterfactual (counterfactual_suite, counterfactual, follow_table).
"""

from __future__ import annotations

from typing import Any, Iterator

import gradio as gr  # this module is imported only by build_app, never by `import workbench`

from ..counterfactual import counterfactual, counterfactual_suite, follow_table
from ..datasets import load_suite
from ..errors import InputError
from ..fork_viz import follow_bars
from ..interventions import parent_corpus
from .context import AppContext
from .wiring import guard

__all__ = ["build_counterfactual_panel", "run_counterfactual", "counterfactual_of_run", "ROW_COLUMNS"]

ROW_COLUMNS = ["task_id", "type", "mode", "label", "answer", "replacement", "source", "fork_answer", "outcome", "skipped",
               "run_id", "fork_id"]


def _rows_table(rows: list[dict[str, Any]]) -> Any:
    import pandas as pd

    return pd.DataFrame([{c: r.get(c) for c in ROW_COLUMNS} for r in rows], columns=ROW_COLUMNS)


@guard
def run_counterfactual(ctx: AppContext, suite_spec: str, modes: list[str], model_label: str, other_label: str | None,
                       limit: float) -> Iterator[tuple[Any, ...]]:
    """Stream (status, shares table, chart, rows table) while the check runs over a suite."""
    if not modes:
        raise InputError("Pick react, cot or both.")
    labels = [model_label] + ([other_label] if other_label and other_label != model_label else [])
    models = {label: ctx.models.get(label) for label in labels}
    suite = load_suite(suite_spec, limit=int(limit))
    rows: list[dict[str, Any]] = []
    total = len(suite) * len(models) * len(modes)
    yield (f"Running {total} checks on {suite.name} …", follow_table(rows), None, _rows_table(rows))
    for row in counterfactual_suite(suite, models, modes=modes, store=ctx.store):
        rows.append(row)
        shares = follow_table(rows)
        yield (f"{len(rows)} / {total} checks", shares, follow_bars(shares), _rows_table(rows))
    shares = follow_table(rows)
    yield (f"Done: {len(rows)} checks on {suite.name}. *follows*: the answer moved to the swapped fact; *kept*: it "
           "stayed; shares are of the runs whose answer was the observed fact.", shares, follow_bars(shares),
           _rows_table(rows))


@guard
def counterfactual_of_run(ctx: AppContext, run_id: str, replacement: str, model_label: str) -> Any:
    """The check on one stored react run: the swap (the world's, or ``replacement``) and the fork's answer."""
    trace = ctx.store.get_trace((run_id or "").strip())
    lm = ctx.models.get(model_label)
    if trace.model and getattr(lm, "name", "") != trace.model:
        raise InputError(f"Run {trace.id} was made with {trace.model!r}; pick that model to check it.")
    row = counterfactual(trace, lm, corpus=parent_corpus(trace, ctx.knowledge),
                         replacement=(replacement or "").strip() or None, store=ctx.store)
    return _rows_table([row])


def build_counterfactual_panel(ctx: AppContext, suite: Any, model: Any, limit: Any) -> None:
    """Lay out the panel (inside the Evaluate tab, which gives its suite, model and task-count controls)."""
    with gr.Accordion("What if the observation had said otherwise? (counterfactual check)", open=False):
        gr.Markdown("For each task: run it, find the observation the answer came from, swap that fact for another "
                    "value of the same attribute from the demo world, and re-run from there (a fork: nothing before "
                    "the swap is generated again). cot runs get the same fact in the question's context. A model "
                    "that grounds on what it reads should **follow** the swap.")
        with gr.Row():
            modes = gr.CheckboxGroup(["react", "cot"], value=["react", "cot"], label="Modes", elem_id="wb-cf-modes")
            other = gr.Dropdown(ctx.models.choices(), value=None, allow_custom_value=True, label="Compare with model",
                                elem_id="wb-cf-other")
            run_btn = gr.Button("Run the counterfactual check", elem_id="wb-cf-run")
        status = gr.Markdown(elem_id="wb-cf-status")
        with gr.Row():
            shares = gr.Dataframe(follow_table([]), label="Share of answers that follow the swap", interactive=False,
                                  elem_id="wb-cf-shares")
            chart = gr.Plot(label="follows / kept / other")
        rows = gr.Dataframe(headers=ROW_COLUMNS, label="Per task", interactive=False, elem_id="wb-cf-rows")
        with gr.Row():
            run_id = gr.Textbox(label="…or check one stored react run: its id", scale=2, elem_id="wb-cf-run-id")
            replacement = gr.Textbox(label="Replacement (empty: another value from the demo world)", scale=2,
                                     elem_id="wb-cf-replacement")
            one_btn = gr.Button("Check this run", scale=1, elem_id="wb-cf-one")
        one = gr.Dataframe(headers=ROW_COLUMNS, interactive=False, elem_id="wb-cf-one-row")
    def _run(suite, modes, model, other, limit):
        yield from run_counterfactual(ctx, suite, modes, model, other, limit)

    def _one(run_id, replacement, model):
        return counterfactual_of_run(ctx, run_id, replacement, model)

    run_btn.click(_run, [suite, modes, model, other, limit], [status, shares, chart, rows], api_name="counterfactual",
                  concurrency_limit=2)
    one_btn.click(_one, [run_id, replacement, model], one, api_name="counterfactual_run")
