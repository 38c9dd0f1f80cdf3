"""The Prompt lab tab: edit a prompt as structured data, validate it, keep each try as a named
version, and compare two versions (or two models) on one instruction, on a suite, or over k examples.

The editor's prompt lives in a ``gr.State`` as ``PromptTemplate.to_dict()``; every action that
uses it first writes the editor's fields into it (:func:`apply_editor`), so nothing typed is lost.
The pure helpers here (tables <-> dict, example reordering, version references) need no server.
"""

from __future__ import annotations

import copy
import functools
import re
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr  # this module is imported only by build_app, never by `import workbench`

from ..agent import validate_task
from ..datasets import list_builtin_suites
from ..errors import InputError, PromptError, TemplateError
from ..eval_modes import EVAL_MODES, agent_modes
from ..knowledge import DEMO_KEY
from ..prompt_lab import (
    Problem,
    Variant,
    batch_compare,
    compare_run,
    delete_version,
    get_version,
    k_sweep,
    prompt_from_yaml,
    rename_prompt,
    save_version,
    validate_prompt,
)
from ..prompts import MODES, PromptTemplate, list_presets, load_prompt
from ..tools.core import default_tools
from ..viz import diff_heatmap
from .context import AppContext, check_upload, describe_error
from .history_tab import open_run
from .render import outcomes_markdown, step_diff_html

__all__ = ["build_prompt_tab", "tools_table", "tool_overrides", "steps_table", "steps_from_table", "example_view",
           "apply_editor", "add_example", "delete_example", "move_example", "version_choices", "resolve_prompt",
           "problems_table", "parse_ks", "sweep_figure", "TOOL_COLUMNS", "STEP_COLUMNS", "PROBLEM_COLUMNS"]

TOOL_COLUMNS = ["tool", "description"]
STEP_COLUMNS = ["thought", "action", "observation"]
PROBLEM_COLUMNS = ["where", "message"]


# ------------------------------------------------------------------ pure helpers


def _df(rows: list[list[Any]], columns: list[str]) -> Any:
    import pandas as pd

    return pd.DataFrame(rows, columns=columns)


def _records(table: Any, columns: list[str]) -> list[dict[str, str]]:
    """Rows of a Dataframe value (pandas, gradio's {"headers", "data"} or a list of lists) as string dicts."""
    if table is None:
        return []
    if isinstance(table, dict):
        headers, data = list(table.get("headers") or columns), list(table.get("data") or [])
    elif hasattr(table, "columns"):
        headers, data = [str(c) for c in table.columns], table.values.tolist()
    else:
        headers, data = list(columns), [list(r) for r in table]
    if not set(headers) & set(columns):  # unnamed columns: take them in order
        headers = list(columns)
    out = []
    for row in data:
        rec = dict.fromkeys(columns, "")
        for h, v in zip(headers, row):
            if h in rec and v is not None and v == v:  # v != v: a pandas NaN in a blank cell
                rec[h] = str(v)
        out.append(rec)
    return out


def tools_table(overrides: dict[str, str] | None = None) -> Any:
    """Every built-in tool with the description the prompt shows: its override, else the default."""
    defaults = {t.name: t.description for t in default_tools()}
    overrides = overrides or {}
    rows = [[name, overrides.get(name) or desc] for name, desc in defaults.items()]
    rows += [[name, desc] for name, desc in overrides.items() if name not in defaults]  # validation names these
    return _df(rows, TOOL_COLUMNS)


def tool_overrides(table: Any) -> dict[str, str]:
    """The rows of the tools table whose description differs from the tool's default."""
    defaults = {t.name: t.description for t in default_tools()}
    out = {}
    for row in _records(table, TOOL_COLUMNS):
        name, desc = row["tool"].strip(), row["description"].strip()
        if name and desc and desc != defaults.get(name, "").strip():
            out[name] = desc
    return out


def steps_table(example: dict[str, Any] | None) -> Any:
    return _df([[s.get(c, "") for c in STEP_COLUMNS] for s in (example or {}).get("steps") or []], STEP_COLUMNS)


def steps_from_table(table: Any) -> list[dict[str, str]]:
    """The steps of an example from its table; rows left wholly blank are dropped."""
    return [r for r in _records(table, STEP_COLUMNS) if any(v.strip() for v in r.values())]


def _index(value: Any) -> int:
    try:
        return int(float(value)) if value not in (None, "") else 0
    except (TypeError, ValueError):
        return 0


def example_view(prompt: dict[str, Any], index: Any) -> tuple[str, str, Any]:
    """(question, answer, steps table) of example ``index`` (1-based); blanks when there is none."""
    examples, i = prompt.get("examples") or [], _index(index)
    if not 1 <= i <= len(examples):
        return "", "", steps_table(None)
    ex = examples[i - 1]
    return ex.get("question", ""), str(ex.get("answer", "")), steps_table(ex)


def apply_editor(prompt: dict[str, Any] | None, name: str, mode: str, style: str, instruction: str, system: str,
                 user: str, tools: Any, index: Any, question: str, answer: str, steps: Any) -> dict[str, Any]:
    """A copy of the prompt's dict form with the editor's fields written in (example ``index`` is the one shown)."""
    d = copy.deepcopy(prompt or {})
    d.update(name=(name or "").strip() or d.get("name") or "prompt", mode=mode, style=style,
             instruction=instruction or "", system=system or "", user=user or "")
    overrides = tool_overrides(tools)
    if overrides:
        d["tool_descriptions"] = overrides
    else:
        d.pop("tool_descriptions", None)
    d["examples"] = examples = list(d.get("examples") or [])
    i = _index(index)
    if 1 <= i <= len(examples):
        examples[i - 1] = {"question": question or "", "answer": answer or "", "steps": steps_from_table(steps)}
    return d


def add_example(prompt: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """A blank example (one blank step) appended; returns the prompt and its number."""
    d = copy.deepcopy(prompt)
    d["examples"] = [*(d.get("examples") or []), {"question": "", "answer": "",
                                                   "steps": [dict.fromkeys(STEP_COLUMNS, "")]}]
    return d, len(d["examples"])


def _check_index(d: dict[str, Any], index: Any) -> int:
    n, i = len(d.get("examples") or []), _index(index)
    if not 1 <= i <= n:
        raise InputError(f"No example {i}: the prompt has {n} example(s)" + (f", numbered 1 to {n}." if n else "."))
    return i


def delete_example(prompt: dict[str, Any], index: Any) -> tuple[dict[str, Any], int]:
    """Example ``index`` removed; returns the prompt and the number of the example to show next (0: none left)."""
    d = copy.deepcopy(prompt)
    i = _check_index(d, index)
    del d["examples"][i - 1]
    return d, min(i, len(d["examples"]))


def move_example(prompt: dict[str, Any], index: Any, delta: int) -> tuple[dict[str, Any], int]:
    """Example ``index`` moved ``delta`` places (-1: up); at either end it stays. Returns its new number."""
    d = copy.deepcopy(prompt)
    i = _check_index(d, index)
    j = min(max(i + delta, 1), len(d["examples"]))
    ex = d["examples"]
    ex.insert(j - 1, ex.pop(i - 1))
    return d, j


def version_choices(store: Any) -> list[tuple[str, str]]:
    """Dropdown choices: ("preset: react", "preset:react"), then ("saved: NAME · id · note", "saved:id")."""
    presets = [(f"preset: {p}", f"preset:{p}") for p in list_presets()]
    saved = [(" · ".join(x for x in (f"saved: {r['name']}", r["id"], r["note"]) if x), f"saved:{r['id']}")
             for r in store.prompt_versions()]
    return presets + saved


def resolve_prompt(store: Any, ref: str | None) -> tuple[PromptTemplate, str | None]:
    """A prompt from a dropdown value or label, a preset name, a version id or a saved name; with its version id."""
    ref = (ref or "").strip()
    if not ref:
        raise InputError("Pick a preset or a saved version.")
    kind, sep, rest = ref.partition(":")
    rest = rest.strip()
    if sep and kind.strip() == "preset":
        return load_prompt(rest), None
    if sep and kind.strip() == "saved":
        ids = [p.strip() for p in rest.split(" · ")[1:]]  # a label: "NAME · id · note"
        ref = next((p for p in ids if store.prompt_version(p)), rest)
    elif ref in list_presets():
        return load_prompt(ref), None
    version = get_version(store, ref)
    return version.prompt, version.id


def problems_table(problems: list[Problem]) -> Any:
    return _df([[p.where, p.message] for p in problems], PROBLEM_COLUMNS)


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


# ------------------------------------------------------------------ handlers (gradio in, gradio out)


def _guard(fn: Any) -> Any:
    """Run fn; the library's errors become a gr.Error with its message (the app keeps serving)."""
    @functools.wraps(fn)
    def wrapped(*args: Any) -> Any:
        try:
            return fn(*args)
        except gr.Error:
            raise
        except Exception as err:
            raise gr.Error(describe_error(err)) from err
    return wrapped


def _view(d: dict[str, Any], index: int) -> tuple[Any, ...]:
    """The editor's components for prompt ``d`` showing example ``index``."""
    n = len(d.get("examples") or [])
    index = index if 1 <= index <= n else (1 if n else 0)
    question, answer, steps = example_view(d, index)
    pick = gr.update(choices=[str(i) for i in range(1, n + 1)], value=str(index) if index else None)
    return (d.get("name", ""), d.get("mode", "react"), d.get("style", "plain"), d.get("instruction", ""),
            d.get("system", ""), d.get("user", ""), tools_table(d.get("tool_descriptions")), pick, index,
            question, answer, steps)


def _check(ctx: AppContext, d: dict[str, Any], model_label: str | None) -> list[Problem]:
    try:
        lm = ctx.models.get(model_label)
    except Exception as err:  # the structure is still checked; only the length needs the model
        return validate_prompt(d) + [Problem("length", f"not checked: the model did not load ({describe_error(err)}).")]
    return validate_prompt(d, model=lm)


def _import(path: str | None) -> tuple[Any, ...]:
    keep = (gr.skip(),) * 14
    if not path:
        return (*keep[:2], problems_table([]), "", *keep[2:])
    name = Path(check_upload(path) or path).name
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{name} is not UTF-8 text (byte {err.start}); save it as UTF-8 and import it again.") from err
    try:
        prompt = prompt_from_yaml(text, source=name)
    except (PromptError, TemplateError) as err:
        try:  # each problem on its own row when the YAML at least parses
            problems = validate_prompt(PromptTemplate.from_yaml(text, source=name)) or [Problem("import", str(err))]
        except (PromptError, TemplateError):
            problems = [Problem("import", str(err))]
        gr.Warning(f"{name} was not imported: {len(problems)} problem(s).")
        return (*keep[:2], problems_table(problems), f"**Not imported** (nothing saved): {name}", *keep[2:])
    d = prompt.to_dict()
    return (d, "", problems_table([]), f"Imported `{name}` into the editor (not saved yet).", *_view(d, 1))


def _export(d: dict[str, Any]) -> str:
    prompt = PromptTemplate.from_dict(d, source=d.get("name") or "prompt")
    stem = re.sub(r"[^\w.-]+", "-", prompt.name).strip("-.") or "prompt"
    out = Path(tempfile.mkdtemp(prefix="wb-prompt-")) / f"{stem}.yaml"
    out.write_text(prompt.to_yaml(), encoding="utf-8")
    return str(out)


def _compare(ctx: AppContext, instruction: str, version_a: str, version_b: str, model_a: str, model_b: str,
             max_steps: float, attribution: bool, knowledge: str | None = None) -> tuple[Any, ...]:
    task = validate_task(instruction)
    corpus = ctx.get_corpus(knowledge)
    (pa, _), (pb, _) = resolve_prompt(ctx.store, version_a), resolve_prompt(ctx.store, version_b)
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
                _df([], ["label", "kind", la, lb, "diff"]))
    return (outcomes_markdown(cmp.outcomes(), cmp.labels, ids), table, ", ".join(ids), *ids,
            diff_heatmap(diff, la, lb), diff.round(4))


def _usable(prompt: PromptTemplate, mode: str, side: str) -> PromptTemplate:
    if prompt.mode not in agent_modes(mode):  # a batch compare refuses a prompt the mode would never use
        fits = ", ".join(m for m in EVAL_MODES if prompt.mode in agent_modes(m))
        raise InputError(f"Version {side} is a {prompt.mode} prompt, which the {mode} mode never uses. "
                         f"Pick a mode that runs {prompt.mode}: {fits}.")
    return prompt


def _batch(ctx: AppContext, suite: str, limit: float, version_a: str, version_b: str, mode: str,
           model: str) -> tuple[Any, ...]:
    pa = _usable(resolve_prompt(ctx.store, version_a)[0], mode, "A")
    pb = _usable(resolve_prompt(ctx.store, version_b)[0], mode, "B")
    out = batch_compare(suite, pa, pb, ctx.models.get(model), modes=[mode], limit=int(limit), store=ctx.store)
    a, b = out["runs"]
    status = (f"{suite} · {int(limit)} tasks · {mode} · A = `{pa.name}@{pa.hash[:6]}` (evaluation `{a}`), "
              f"B = `{pb.name}@{pb.hash[:6]}` (evaluation `{b}`) · {len(out['flipped'])} flipped")
    return status, out["by_mode"], out["by_type"], out["flipped"]


def _sweep(ctx: AppContext, suite: str, limit: float, ks: str, version_a: str, model: str) -> tuple[Any, Any]:
    prompt = resolve_prompt(ctx.store, version_a)[0]
    table = k_sweep(suite, ctx.models.get(model), parse_ks(ks), mode=prompt.mode, prompt=prompt, limit=int(limit),
                    store=ctx.store)
    return table, sweep_figure(table, f"{prompt.name}@{prompt.hash[:6]} on {suite}: success against k")


# ------------------------------------------------------------------ layout and wiring


def build_prompt_tab(ctx: AppContext, run_outputs: list[Any], tabs: Any) -> dict[str, Any]:
    """Lay out the tab and wire its events (every one has an api_name for gradio_client)."""
    start = load_prompt("react").to_dict()
    choices, models = version_choices(ctx.store), ctx.models.choices()
    v = _view(start, 1)
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
                          placeholder="e.g. When was Varnholt founded?")
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
    knowledge.focus(lambda: gr.update(choices=ctx.knowledge.choices()), None, knowledge, api_name=False)
    for dd in (model_a, model_b):  # finished fine-tunes appear when the list is opened
        dd.focus(lambda: gr.update(choices=ctx.models.choices()), None, dd, api_name=False)
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
        attr_table = gr.Dataframe(_df([], ["label", "kind", "A", "B", "diff"]), label="Attribution diff",
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

    def load(ref):
        prompt, vid = resolve_prompt(ctx.store, ref)
        d = prompt.to_dict()
        what = f"saved version `{vid}` of **{prompt.name}**" if vid else f"preset **{prompt.name}**"
        return (d, vid or "", problems_table([]), f"Loaded {what} · hash `{prompt.hash}`", *_view(d, 1))

    def edit(op):  # apply the editor's fields, then op(d, example shown) -> (d, example to show)
        def handler(s, *f):
            d, index = op(apply_editor(s, *f), _index(f[7]))
            return (d, *_view(d, index))
        return handler

    def pick(s, *f):  # the shown example's edits are kept before another is shown
        d = apply_editor(s, *f[:-1])
        return (d, *_view(d, _index(f[-1])))

    def validate(s, *f):
        d = apply_editor(s, *f[:-1])
        found = _check(ctx, d, f[-1])
        return d, problems_table(found), (f"**{len(found)} problem(s)**" if found else "No problems: ready to run.")

    def save(s, *f):
        *editor, wanted, note_text, parent_id, model = f
        d = apply_editor(s, *editor)
        found = _check(ctx, d, model)
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

    def export(s, *f):
        d = apply_editor(s, *f)
        return d, _export(d)

    def delete(ref):  # an id, or a picker's "saved:id" value or "saved: NAME · id · note" label
        ref = (ref or "").strip()
        parts = [x.strip() for x in ref.partition("saved:")[2].split(" · ")] if ref.startswith("saved:") else []
        vid = next((x for x in parts if ctx.store.prompt_version(x)), parts[0] if parts else ref)
        delete_version(ctx.store, vid)
        return (f"Deleted version `{vid}`.", *refreshed())

    load_btn.click(_guard(load), [source], [state, parent, problems, status, *view], api_name="prompt_load")
    refresh_btn.click(refreshed, None, pickers, api_name="prompt_versions")
    upload.upload(_guard(_import), [upload], [state, parent, problems, status, *view], api_name="prompt_import")
    export_btn.click(_guard(export), [state, *fields], [state, export_file], api_name="prompt_export")
    ex_pick.input(_guard(pick), [state, *fields, ex_pick], [state, *view], api_name="prompt_example")
    apply_btn.click(_guard(edit(lambda d, i: (d, i))), [state, *fields], [state, *view], api_name="prompt_apply")
    add_btn.click(_guard(edit(lambda d, i: add_example(d))), [state, *fields], [state, *view],
                  api_name="prompt_add_example")
    del_btn.click(_guard(edit(delete_example)), [state, *fields], [state, *view], api_name="prompt_delete_example")
    up_btn.click(_guard(edit(lambda d, i: move_example(d, i, -1))), [state, *fields], [state, *view],
                 api_name="prompt_move_up")
    down_btn.click(_guard(edit(lambda d, i: move_example(d, i, 1))), [state, *fields], [state, *view],
                   api_name="prompt_move_down")
    validate_btn.click(_guard(validate), [state, *fields, model_a], [state, problems, status],
                       api_name="prompt_validate")
    save_btn.click(_guard(save), [state, *fields, save_name, note, parent, model_a],
                   [state, parent, problems, status, name, *pickers], api_name="prompt_save")
    rename_btn.click(_guard(rename), [old_name, new_name], [status, *pickers], api_name="prompt_rename")
    delete_btn.click(_guard(delete), [del_id], [status, *pickers], api_name="prompt_delete")
    compare_btn.click(_guard(functools.partial(_compare, ctx)),
                      [task, ver_a, ver_b, model_a, model_b, max_steps, attribute, knowledge],
                      [outcomes, diff_view, runs, run_a, run_b, attr_plot, attr_table], api_name="prompt_compare",
                      concurrency_limit=1)
    for button, run_id in ((open_a, run_a), (open_b, run_b)):
        button.click(lambda r: (*open_run(ctx, r), gr.Tabs(selected="run")), [run_id], [*run_outputs, tabs],
                     api_name=False)
    batch_btn.click(_guard(functools.partial(_batch, ctx)), [suite, limit, ver_a, ver_b, batch_mode, model_a],
                    [batch_status, by_mode, by_type, flipped], api_name="prompt_batch_compare", concurrency_limit=1)
    sweep_btn.click(_guard(functools.partial(_sweep, ctx)), [suite, limit, ks, ver_a, model_a],
                    [sweep_table, sweep_plot], api_name="prompt_sweep", concurrency_limit=1)
    return {"state": state, "source": source, "version_a": ver_a, "version_b": ver_b}
