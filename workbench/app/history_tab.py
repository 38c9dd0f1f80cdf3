"""The History tab: every stored run, searchable; selecting one reopens it in the Run tab."""

from __future__ import annotations

from typing import Any

import gradio as gr  # this module is imported only by build_app, never by `import workbench`

from ..types import Trace
from .context import AppContext, describe_error
from .run_tab import trace_outputs

__all__ = ["build_history_tab", "history_table", "open_run"]


def history_table(ctx: AppContext, search: str = "") -> Any:
    return ctx.store.runs_dataframe(limit=200, search=search or "")


def open_run(ctx: AppContext, run_id: str) -> tuple[Any, ...]:
    """The Run tab's outputs for a stored run (raises gr.Error with the store's message)."""
    try:
        trace: Trace = ctx.store.get_trace((run_id or "").strip())
    except Exception as err:
        raise gr.Error(describe_error(err)) from err
    return trace_outputs(trace)


def build_history_tab(ctx: AppContext, run_outputs: list[Any], tabs: Any) -> None:
    with gr.Row():
        search = gr.Textbox(label="Search tasks", scale=4, elem_id="wb-history-search")
        refresh = gr.Button("Refresh", scale=1, elem_id="wb-history-refresh")
    table = gr.Dataframe(history_table(ctx), label="Runs (newest first) — click a row to reopen it", interactive=False,
                         wrap=True, elem_id="wb-history")
    with gr.Row():
        run_id = gr.Textbox(label="Run id", scale=4, elem_id="wb-open-id")
        open_btn = gr.Button("Open in Run tab", scale=1, elem_id="wb-open")

    def _select(df, evt: gr.SelectData):
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        return str(df.iloc[row]["id"]) if df is not None and len(df) > row else ""

    def _open(run_id):
        return (*open_run(ctx, run_id), gr.Tabs(selected="run"))

    refresh.click(lambda q: history_table(ctx, q), [search], [table], api_name="history")
    search.submit(lambda q: history_table(ctx, q), [search], [table], api_name=False)
    table.select(_select, [table], [run_id], api_name=False).then(_open, [run_id], [*run_outputs, tabs], api_name=False)
    open_btn.click(_open, [run_id], [*run_outputs, tabs], api_name="open_run")
    return table
