"""The Prompt lab tab: edit a prompt as structured data, validate it, keep each try as a named
version, and compare two versions (or two models) on one instruction, on a suite, or over k examples.

Wiring only: the editor's helpers are in prompt_editor, the comparisons in prompt_compare, and the
work in workbench.prompt_lab. The names tests and notebooks import from here are re-exported.
"""

from __future__ import annotations

import functools
from typing import Any

import gradio as gr  # this module is imported only by build_app, never by `import workbench`

from ..datasets import list_builtin_suites
from ..eval_modes import EVAL_MODES
from ..knowledge import DEMO_KEY
from ..prompt_lab import (
    delete_version,
    rename_prompt,
    resolve_prompt_ref,
    save_version,
    saved_version_id,
)
from ..prompts import MODES, PromptTemplate, load_prompt
from .context import AppContext
from .history_tab import open_run
from .prompt_compare import (
    batch_versions,
    compare_versions,
    parse_ks,
    sweep_figure,
    sweep_k,
)
from .prompt_editor import (
    EDITOR_FIELDS,
    PROBLEM_COLUMNS,
    STEP_COLUMNS,
    TOOL_COLUMNS,
    add_example,
    apply_editor,
    check_prompt,
    dataframe,
    delete_example,
    editor_view,
    example_number,
    example_view,
    export_yaml,
    import_yaml,
    move_example,
    problems_table,
    steps_from_table,
    steps_table,
    tool_overrides,
    tools_table,
    version_choices,
)
from .wiring import api_params, guard, refresh_choices, refresh_models

__all__ = ["build_prompt_tab", "tools_table", "tool_overrides", "steps_table", "steps_from_table", "example_view",
           "apply_editor", "add_example", "delete_example", "move_example", "version_choices", "resolve_prompt",
           "problems_table", "parse_ks", "sweep_figure", "TOOL_COLUMNS", "STEP_COLUMNS", "PROBLEM_COLUMNS"]

resolve_prompt = resolve_prompt_ref  # the one resolver of prompt references, under the name the tab had
_import = import_yaml  # the upload handler, unguarded (tests call it directly)


def build_prompt_tab(ctx: AppContext, run_outputs: list[Any], tabs: Any) -> dict[str, Any]:
    """Lay out the tab and wire its events (every one has an api_name for gradio_client)."""
    start = load_prompt("react").to_dict()
    choices, models = version_choices(ctx.store), ctx.models.choices()
    v = editor_view(start, 1)
    with gr.Row():
        source = gr.Dropdown(choices, value="preset:react", label="Prompt", allow_custom_value=True, scale=3,
                             elem_id="wb-prompt-source", info="a preset, or a saved version: name · id · note")
        load_btn = gr.Button("Load", variant="primary", scale=1, elem_id="wb-prompt-load")
        refresh_btn = gr.Button("Refresh list", scale=1, elem_id="wb-prompt-refresh")
        upload = gr.File(label="Import YAML", file_types=[".yaml", ".yml"], type="filepath", scale=2,
                         elem_id="wb-prompt-import")
        export_btn = gr.Button("Export YAML", scale=1, elem_id="wb-prompt-export")
        export_file = gr.File(label="Download", interactive=False, scale=2, elem_id="wb-prompt-export-file")
    state = gr.State(start)
    with gr.Accordion("Editor", open=True):
        with gr.Row():
            name = gr.Textbox(v[0], label="Name", elem_id="wb-prompt-name")
            mode = gr.Radio(list(MODES), value=v[1], label="Mode", elem_id="wb-prompt-mode")
            style = gr.Radio(["plain", "numbered"], value=v[2], label="Style", elem_id="wb-prompt-style")
        instruction = gr.Textbox(v[3], label="Instruction", lines=3, elem_id="wb-prompt-instruction")
        with gr.Row():
            system = gr.Textbox(v[4], label="System template", lines=4, elem_id="wb-prompt-system",
                                info="placeholders: {instruction} {tools} {examples} {task}")
            user = gr.Textbox(v[5], label="User template", lines=4, elem_id="wb-prompt-user")
        tools = gr.Dataframe(v[6], headers=TOOL_COLUMNS, label="Tool descriptions (edit one to override it)",
                             interactive=True, static_columns=[0], wrap=True, elem_id="wb-prompt-tools")
        with gr.Row():
            ex_pick = gr.Dropdown([str(i) for i in range(1, len(start["examples"]) + 1)], value="1",
                                  label="Few-shot example", scale=2, elem_id="wb-prompt-ex-pick")
            ex_shown = gr.Number(v[8], label="Editing example", precision=0, interactive=False, scale=1,
                                 elem_id="wb-prompt-ex-shown")
            add_btn = gr.Button("Add example", scale=1, elem_id="wb-prompt-ex-add")
            del_btn = gr.Button("Delete example", variant="stop", scale=1, elem_id="wb-prompt-ex-delete")
            up_btn = gr.Button("Move up", scale=1, elem_id="wb-prompt-ex-up")
            down_btn = gr.Button("Move down", scale=1, elem_id="wb-prompt-ex-down")
        with gr.Row():
            question = gr.Textbox(v[9], label="Question", scale=3, elem_id="wb-prompt-question")
            answer = gr.Textbox(v[10], label="Answer (cot / direct examples)", scale=1, elem_id="wb-prompt-answer")
        steps = gr.Dataframe(v[11], headers=STEP_COLUMNS, label="Steps", interactive=True, wrap=True,
                             elem_id="wb-prompt-steps")
        with gr.Row():
            apply_btn = gr.Button("Apply edits", elem_id="wb-prompt-apply")
            validate_btn = gr.Button("Validate", elem_id="wb-prompt-validate")
    status = gr.Markdown(elem_id="wb-prompt-status")
    problems = gr.Dataframe(problems_table([]), label="Problems (where | message)", interactive=False, wrap=True,
                            elem_id="wb-prompt-problems")
    with gr.Row():
        save_name = gr.Textbox(label="Save as (name)", elem_id="wb-prompt-save-name")
        note = gr.Textbox(label="Note", elem_id="wb-prompt-note")
        parent = gr.Textbox(label="Loaded from (parent of the next save)", interactive=False,
                            elem_id="wb-prompt-parent")
        save_btn = gr.Button("Save version", variant="primary", elem_id="wb-prompt-save")
    with gr.Accordion("Rename or delete versions", open=False):
        with gr.Row():
            old_name = gr.Textbox(label="Name", elem_id="wb-prompt-rename-old")
            new_name = gr.Textbox(label="New name (all its versions)", elem_id="wb-prompt-rename-new")
            rename_btn = gr.Button("Rename", elem_id="wb-prompt-rename")
            del_id = gr.Textbox(label="Version id", elem_id="wb-prompt-delete-id")
            delete_btn = gr.Button("Delete version", variant="stop", elem_id="wb-prompt-delete")
    gr.Markdown("### Compare two versions")
    with gr.Row():
        task = gr.Textbox(label="Instruction", scale=3, elem_id="wb-prompt-task",
                          placeholder="e.g. When was Skelnandun founded?")
        ver_a = gr.Dropdown(choices, value="preset:react", label="Version A", allow_custom_value=True,
                            elem_id="wb-prompt-a")
        ver_b = gr.Dropdown(choices, value="preset:react", label="Version B", allow_custom_value=True,
                            elem_id="wb-prompt-b")
    with gr.Row():
        model_a = gr.Dropdown(models, value=ctx.models.default, allow_custom_value=True, label="Model A",
                              elem_id="wb-prompt-model-a")
        model_b = gr.Dropdown(models, value=ctx.models.default, allow_custom_value=True, label="Model B",
                              elem_id="wb-prompt-model-b")
        max_steps = gr.Slider(1, 15, value=6, step=1, label="Max steps", elem_id="wb-prompt-max-steps")
        knowledge = gr.Dropdown(ctx.knowledge.choices(), value=DEMO_KEY, label="Knowledge source",
                                elem_id="wb-prompt-knowledge")
    refresh_choices(ctx.knowledge.choices, knowledge)
    refresh_models(ctx, model_a, model_b)  # finished fine-tunes appear when the list is opened
    attribute = gr.Checkbox(True, label="Attribution diff of the last common step", elem_id="wb-prompt-attr")
    compare_btn = gr.Button("Compare", variant="primary", elem_id="wb-prompt-compare")
    outcomes = gr.Markdown(elem_id="wb-prompt-outcomes")
    diff_view = gr.HTML(elem_id="wb-prompt-diff")
    with gr.Row():
        runs = gr.Textbox(label="Stored runs (A, B)", interactive=False, scale=3, elem_id="wb-prompt-runs")
        run_a, run_b = gr.Textbox(visible=False), gr.Textbox(visible=False)
        open_a = gr.Button("Open A in the Run tab", scale=1)
        open_b = gr.Button("Open B in the Run tab", scale=1)
    with gr.Row():
        attr_plot = gr.Plot(label="Attribution diff by segment", elem_id="wb-prompt-attr-plot")
        attr_table = gr.Dataframe(dataframe([], ["label", "kind", "A", "B", "diff"]), label="Attribution diff",
                                  interactive=False, elem_id="wb-prompt-attr-table")
    with gr.Accordion("Batch compare on a suite", open=False):
        with gr.Row():
            suite = gr.Dropdown(list_builtin_suites(), value="demo:dev", label="Suite", allow_custom_value=True,
                                elem_id="wb-prompt-batch-suite")
            limit = gr.Slider(1, 200, value=10, step=1, label="Tasks", elem_id="wb-prompt-batch-limit")
            batch_mode = gr.Dropdown(list(EVAL_MODES), value="react", label="Mode", elem_id="wb-prompt-batch-mode")
        batch_btn = gr.Button("Batch compare A and B", elem_id="wb-prompt-batch")
        batch_status = gr.Markdown(elem_id="wb-prompt-batch-status")
        with gr.Row():
            by_mode = gr.Dataframe(headers=["mode", "success_a", "success_b", "difference"],
                                   label="By mode (difference = B − A)", interactive=False)
            by_type = gr.Dataframe(headers=["mode", "type", "success_a", "success_b", "difference"], label="By task type",
                                   interactive=False)
        flipped = gr.Dataframe(headers=["task_id", "type", "mode", "question", "gold", "answer_a", "answer_b", "success_a",
                                         "success_b"], label="Tasks whose outcome flipped", interactive=False, wrap=True,
                               elem_id="wb-prompt-flipped")
    with gr.Accordion("Zero-shot vs few-shot: sweep k (version A)", open=False):
        with gr.Row():
            ks = gr.Textbox("0,1,2,3", label="k values", elem_id="wb-prompt-ks")
            sweep_btn = gr.Button("Sweep k", elem_id="wb-prompt-sweep")
        with gr.Row():
            sweep_table = gr.Dataframe(headers=["k", "success", "f1", "steps", "invalid_action_rate", "run"],
                                       label="Success by k", interactive=False, elem_id="wb-prompt-sweep-table")
            sweep_plot = gr.Plot(label="Success against k")

    fields = [name, mode, style, instruction, system, user, tools, ex_shown, question, answer, steps]
    view = [name, mode, style, instruction, system, user, tools, ex_pick, ex_shown, question, answer, steps]
    pickers = [source, ver_a, ver_b]

    def refreshed() -> tuple[Any, ...]:
        c = version_choices(ctx.store)
        return tuple(gr.update(choices=c) for _ in pickers)

    # Handlers take the state, then the editor's fields (EDITOR_FIELDS), then their own inputs; api_params names
    # them for gradio_client, which hides the state.
    editor_params = ("prompt", *EDITOR_FIELDS)

    def load(ref):
        prompt, vid = resolve_prompt_ref(ctx.store, ref)
        d = prompt.to_dict()
        what = f"saved version `{vid}` of **{prompt.name}**" if vid else f"preset **{prompt.name}**"
        return (d, vid or "", problems_table([]), f"Loaded {what} · hash `{prompt.hash}`", *editor_view(d, 1))

    def edit(op):  # apply the editor's fields, then op(d, example shown) -> (d, example to show)
        @api_params(*editor_params)
        def handler(s, *f):
            d, index = op(apply_editor(s, *f), example_number(f[7]))
            return (d, *editor_view(d, index))
        return handler

    @api_params(*editor_params, "show_example")
    def pick(s, *f):  # the shown example's edits are kept before another is shown
        d = apply_editor(s, *f[:-1])
        return (d, *editor_view(d, example_number(f[-1])))

    @api_params(*editor_params, "model")
    def validate(s, *f):
        d = apply_editor(s, *f[:-1])
        found = check_prompt(ctx, d, f[-1])
        return d, problems_table(found), (f"**{len(found)} problem(s)**" if found else "No problems: ready to run.")

    @api_params(*editor_params, "save_as", "note", "parent", "model")
    def save(s, *f):
        *editor, wanted, note_text, parent_id, model = f
        d = apply_editor(s, *editor)
        found = check_prompt(ctx, d, model)
        if [p for p in found if p.where != "length"]:  # too long for this model is a warning, not a refusal
            gr.Warning(f"Not saved: {len(found)} problem(s); see the table.")
            return (d, gr.skip(), problems_table(found), "**Not saved**: fix the problems below.",
                    *(gr.skip(),) * 4)
        prompt = PromptTemplate.from_dict(d, source=d.get("name") or "prompt")
        ver = save_version(ctx.store, prompt, (wanted or "").strip() or None, note=note_text or "",
                           parent=parent_id or None)
        d = ver.prompt.to_dict()
        msg = (f"Saved **{ver.name}** as version `{ver.id}` · hash `{ver.hash}`"
               + (f" · parent `{ver.parent}`" if ver.parent else ""))
        return (d, ver.id, problems_table(found), msg, ver.name, *refreshed())

    def rename(old, new):
        n = rename_prompt(ctx.store, (old or "").strip(), new or "")
        return (f"Renamed {n} version(s) of **{old.strip()}** to **{new.strip()}**.", *refreshed())

    @api_params(*editor_params)
    def export(s, *f):
        d = apply_editor(s, *f)
        return d, export_yaml(d)

    def delete(version):  # an id, or a picker's "saved:id" value or "saved: NAME · id · note" label
        vid = saved_version_id(ctx.store, version or "")
        delete_version(ctx.store, vid)
        return (f"Deleted version `{vid}`.", *refreshed())

    def open_side(run_id):
        return (*open_run(ctx, run_id), gr.Tabs(selected="run"))

    load_btn.click(guard(load), [source], [state, parent, problems, status, *view], api_name="prompt_load")
    refresh_btn.click(refreshed, None, pickers, api_name="prompt_versions")
    upload.upload(guard(import_yaml), [upload], [state, parent, problems, status, *view], api_name="prompt_import")
    export_btn.click(guard(export), [state, *fields], [state, export_file], api_name="prompt_export")
    ex_pick.input(guard(pick), [state, *fields, ex_pick], [state, *view], api_name="prompt_example")
    apply_btn.click(guard(edit(lambda d, i: (d, i))), [state, *fields], [state, *view], api_name="prompt_apply")
    add_btn.click(guard(edit(lambda d, i: add_example(d))), [state, *fields], [state, *view],
                  api_name="prompt_add_example")
    del_btn.click(guard(edit(delete_example)), [state, *fields], [state, *view], api_name="prompt_delete_example")
    up_btn.click(guard(edit(lambda d, i: move_example(d, i, -1))), [state, *fields], [state, *view],
                 api_name="prompt_move_up")
    down_btn.click(guard(edit(lambda d, i: move_example(d, i, 1))), [state, *fields], [state, *view],
                   api_name="prompt_move_down")
    validate_btn.click(guard(validate), [state, *fields, model_a], [state, problems, status],
                       api_name="prompt_validate")
    save_btn.click(guard(save), [state, *fields, save_name, note, parent, model_a],
                   [state, parent, problems, status, name, *pickers], api_name="prompt_save")
    rename_btn.click(guard(rename), [old_name, new_name], [status, *pickers], api_name="prompt_rename")
    delete_btn.click(guard(delete), [del_id], [status, *pickers], api_name="prompt_delete")
    compare_btn.click(guard(functools.partial(compare_versions, ctx)),
                      [task, ver_a, ver_b, model_a, model_b, max_steps, attribute, knowledge],
                      [outcomes, diff_view, runs, run_a, run_b, attr_plot, attr_table], api_name="prompt_compare",
                      concurrency_limit=1)
    for button, run_id in ((open_a, run_a), (open_b, run_b)):
        button.click(open_side, [run_id], [*run_outputs, tabs], api_name=False)
    batch_btn.click(guard(functools.partial(batch_versions, ctx)), [suite, limit, ver_a, ver_b, batch_mode, model_a],
                    [batch_status, by_mode, by_type, flipped], api_name="prompt_batch_compare", concurrency_limit=1)
    sweep_btn.click(guard(functools.partial(sweep_k, ctx)), [suite, limit, ks, ver_a, model_a],
                    [sweep_table, sweep_plot], api_name="prompt_sweep", concurrency_limit=1)
    return {"state": state, "source": source, "version_a": ver_a, "version_b": ver_b}
