"""The Evaluate tab: run a suite in several modes with progress, see the tables and the chart,
open any task's trace in the Run tab, and compare two evaluations side by side."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Iterator

import gradio as gr  # this module is imported only by build_app, never by `import workbench`

from ..datasets import list_builtin_suites, load_suite
from ..errors import InputError
from ..evaluation import (
    EVAL_MODES,
    EvalConfig,
    aggregate,
    merge_aggregates,
    stored_aggregate,
    stream_evaluate,
)
from ..knowledge import DEMO_KEY
from ..viz import compare_evals, mode_bars
from .context import MAX_UPLOAD_MB, AppContext, check_upload
from .corpus_panel import source_examples
from .counterfactual_panel import build_counterfactual_panel
from .history_tab import open_run
from .wiring import guard, pick_row, refresh_models, shown_errors

__all__ = ["build_eval_tab", "run_evaluation", "per_task_table", "compare_tables"]

_TASK_COLUMNS = ["task_id", "type", "mode", "success", "answer", "gold", "steps", "invalid_actions", "tool_errors",
                 "wall_time", "trace"]


def per_task_table(rows: list[dict[str, Any]]) -> Any:
    """The per-task rows as shown: one line per (task, mode), its first trace id to open."""
    import pandas as pd

    table = pd.DataFrame([{**r, "trace": (r.get("trace_ids") or [""])[0]} for r in rows], columns=_TASK_COLUMNS)
    return table.round({"wall_time": 2})


def run_evaluation(ctx: AppContext, suite_spec: str, upload: str | None, modes: list[str], model_label: str,
                   limit: float, k: float, progress: Any = None) -> Iterator[tuple[Any, ...]]:
    """Stream (status, aggregate, chart, per-task table, eval id) while the evaluation runs.

    ``progress``: a gr.Progress (or any callable taking (done, total)) for the progress bar."""
    with shown_errors():
        suite = load_suite(check_upload(upload) or suite_spec, limit=int(limit))
        lm = ctx.models.get(model_label)
        config = EvalConfig(sc_samples=int(k))
        if not modes:
            raise ValueError(f"Pick at least one mode: {', '.join(EVAL_MODES)}.")
    total = len(suite) * len(modes)
    yield (f"Running {total} runs of {suite.name} …", None, None, None, "")
    with shown_errors("The evaluation stopped: "):  # shown to the user; the app keeps serving
        for result in stream_evaluate(suite, modes, lm, config=config, store=ctx.store):
            if result.finished:
                break
            row = result.rows[-1]
            if progress is not None:
                progress((result.done, result.todo), desc="evaluating", unit="runs")
            yield (f"{result.done} / {result.todo} runs done · last: {row['task_id']} in {row['mode']} → "
                   f"{'✓' if row['success'] else '✗'}", result.aggregate(), None, per_task_table(result.rows), "")
    yield (f"Done: evaluation `{result.run_id}` · {len(result.rows)} results · model `{result.model}`",
           result.aggregate(), mode_bars(result.aggregate(by_type=True)), per_task_table(result.rows), result.run_id)


@guard
def compare_tables(ctx: AppContext, first: str | None, second: str | None) -> tuple[Any, Any]:
    """Side-by-side aggregate of two stored evaluations (as workbench.evaluation.compare_results), and a bar chart."""
    if not first or not second:
        raise InputError("Pick two evaluations to compare.")
    a, b = stored_aggregate(ctx.store, first), stored_aggregate(ctx.store, second)  # each read once
    return merge_aggregates(a, b, first, second), compare_evals(a, b, first, second)


def _eval_choices(ctx: AppContext) -> list[tuple[str, str]]:
    return [(f"{e['id']} · {e['suite']} · {e['modes']} · {e['model']} · {e['done']}/{e['items']}", e["id"])
            for e in ctx.store.list_evals()]


@guard
def suite_tasks(ctx: AppContext, suite_spec: str, upload: str | None) -> Any:
    """The task menu of a suite: (id: question) labels, so any task can be run live in the Run tab."""
    suite = load_suite(check_upload(upload) or suite_spec)
    choices = [(f"{t.id}: {t.question[:80]}", t.id) for t in suite.tasks]
    return gr.update(choices=choices, value=choices[0][1] if choices else None)


@guard
def open_task(ctx: AppContext, suite_spec: str, upload: str | None, task_id: str | None) -> tuple[str, str]:
    """(instruction, knowledge source key) to run one task of a suite live, on the corpus it is answered from:
    its own paragraphs for a HotpotQA question (offered as a new knowledge source), else its world's (demo2's
    for a demo2 suite; a world's key is its name), else the demo world's."""
    suite = load_suite(check_upload(upload) or suite_spec)
    task = next((t for t in suite.tasks if t.id == (task_id or "").strip()), None)
    if task is None:
        raise InputError(f"No task {task_id!r} in {suite.name}; pick one from the list.")
    if task.id in suite.task_corpora:
        suite_name = Path(suite.name).name  # an uploaded file's name, not where the server keeps it
        return task.question, ctx.knowledge.add_task(task, suite.task_corpora[task.id], suite=suite_name)
    return task.question, suite.meta.get("world") or DEMO_KEY  # a file suite without paragraphs: the demo world


def build_eval_tab(ctx: AppContext, run_outputs: list[Any], tabs: Any, run: dict[str, Any] | None = None) -> None:
    with gr.Row():
        with gr.Column(scale=2):
            suite = gr.Dropdown(list_builtin_suites(), value="demo:dev", label="Suite", elem_id="wb-eval-suite")
            upload = gr.File(label=f"…or upload a suite (up to {MAX_UPLOAD_MB} MB): HotpotQA JSON, FEVER JSONL, or JSONL of "
                                   "{question, answer}",
                             file_types=[".json", ".jsonl"], type="filepath", elem_id="wb-eval-upload")
        with gr.Column(scale=2):
            modes = gr.CheckboxGroup(list(EVAL_MODES), value=["react", "cot", "act", "direct"], label="Modes",
                                     elem_id="wb-eval-modes")
            model = gr.Dropdown(ctx.models.choices(), value=ctx.models.default, allow_custom_value=True, label="Model")
            refresh_models(ctx, model)  # new fine-tunes
            with gr.Row():
                limit = gr.Slider(1, 200, value=10, step=1, label="Tasks (spread over task types)")
                k = gr.Slider(1, 10, value=5, step=1, label="k samples (cot_sc and hybrids)")
    run_btn = gr.Button("Evaluate", variant="primary", elem_id="wb-eval-run")
    status = gr.Markdown(elem_id="wb-eval-status")
    eval_id = gr.Textbox(label="Evaluation id", interactive=False, elem_id="wb-eval-id")
    with gr.Row():
        agg = gr.Dataframe(aggregate(None), label="By mode", interactive=False, elem_id="wb-eval-agg")
        chart = gr.Plot(label="Success by mode and task type")
    tasks = gr.Dataframe(headers=_TASK_COLUMNS, label="Per task — click a row to open its trace in the Run tab",
                         interactive=False,
                         wrap=True, elem_id="wb-eval-tasks")
    trace_id = gr.Textbox(visible=False)
    with gr.Accordion("Compare two evaluations", open=False):
        with gr.Row():
            first = gr.Dropdown(_eval_choices(ctx), label="First evaluation", elem_id="wb-cmp-a", allow_custom_value=True)
            second = gr.Dropdown(_eval_choices(ctx), label="Second evaluation", elem_id="wb-cmp-b",
                                 allow_custom_value=True)
            refresh = gr.Button("Refresh list", scale=0)
        compare_btn = gr.Button("Compare", elem_id="wb-compare")
        cmp_table = gr.Dataframe(headers=["mode", "success (first)", "success (second)"], label="Side by side",
                                 interactive=False)
        cmp_chart = gr.Plot()

    build_counterfactual_panel(ctx, suite, model, limit)  # swap the observed fact: does the answer follow?
    with gr.Accordion("Run one task live in the Run tab, on its own paragraphs", open=False):
        with gr.Row():
            task_pick = gr.Dropdown([], label="Task", scale=3, elem_id="wb-eval-task", allow_custom_value=True)
            list_btn = gr.Button("List the suite's tasks", scale=1, elem_id="wb-eval-list-tasks")
            open_btn = gr.Button("Open in Run →", scale=1, elem_id="wb-eval-open-task")
    list_btn.click(functools.partial(suite_tasks, ctx), [suite, upload], [task_pick], api_name="suite_tasks")
    if run is not None:
        def _open(suite, upload, task_id):
            question, key = open_task(ctx, suite, upload, task_id)
            return (question, gr.update(choices=ctx.knowledge.choices(), value=key), source_examples(ctx, key),
                    gr.Tabs(selected="run"))

        open_btn.click(_open, [suite, upload, task_pick], [run["instruction"], run["knowledge"], run["examples"], tabs],
                       api_name="open_task")

    def _run(suite, upload, modes, model, limit, k, progress=gr.Progress()):
        yield from run_evaluation(ctx, suite, upload, modes, model, limit, k, progress)

    def _refresh():
        choices = _eval_choices(ctx)
        return gr.update(choices=choices), gr.update(choices=choices)

    run_btn.click(_run, [suite, upload, modes, model, limit, k], [status, agg, chart, tasks, eval_id],
                  api_name="evaluate", concurrency_limit=1).then(_refresh, None, [first, second], api_name=False)
    tasks.select(pick_row("trace"), [tasks], [trace_id], api_name=False).then(
        lambda t: (*open_run(ctx, t), gr.Tabs(selected="run")), [trace_id], [*run_outputs, tabs], api_name=False)
    refresh.click(_refresh, None, [first, second], api_name=False)
    compare_btn.click(functools.partial(compare_tables, ctx), [first, second], [cmp_table, cmp_chart],
                      api_name="compare_evals")
