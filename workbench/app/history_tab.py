"""The History tab: every stored run, searchable; selecting one reopens it in the Run tab."""

from __future__ import annotations

from typing import Any

import gradio as gr  # this module is imported only by build_app, never by `import workbench`

from .context import AppContext
from .run_tab import trace_outputs
from .wiring import guard, pick_row

__all__ = ["build_history_tab", "history_table", "open_run"]


def history_table(ctx: AppContext, search: str = "") -> Any:
    return ctx.store.runs_tree_dataframe(limit=200, search=search or "")  # each fork right under its parent


@guard
def open_run(ctx: AppContext, run_id: str) -> tuple[Any, ...]:
    """The Run tab's outputs for a stored run (raises gr.Error with the store's message)."""
    return trace_outputs(ctx.store.get_trace((run_id or "").strip()))


def build_history_tab(ctx: AppContext, run_outputs: list[Any], tabs: Any) -> dict[str, Any]:
    """Lay out the tab and wire its events; returns the components build_app refreshes (search, table)."""
    with gr.Row():
        search = gr.Textbox(label="Search tasks", scale=4, elem_id="wb-history-search")
        refresh = gr.Button("Refresh", scale=1, elem_id="wb-history-refresh")
    table = gr.Dataframe(history_table(ctx), label="Runs (newest first) — click a row to reopen it", interactive=False,
                         wrap=True, elem_id="wb-history")
    with gr.Row():
        run_id = gr.Textbox(label="Run id", scale=4, elem_id="wb-open-id")
        open_btn = gr.Button("Open in Run tab", scale=1, elem_id="wb-open")

    def _search(search):
        return history_table(ctx, search)

    def _open(run_id):
        return (*open_run(ctx, run_id), gr.Tabs(selected="run"))

    refresh.click(_search, [search], [table], api_name="history")
    search.submit(_search, [search], [table], api_name=False)
    table.select(pick_row("id"), [table], [run_id], api_name=False).then(_open, [run_id], [*run_outputs, tabs],
                                                                          api_name=False)
    open_btn.click(_open, [run_id], [*run_outputs, tabs], api_name="open_run")
    return {"search": search, "table": table}
