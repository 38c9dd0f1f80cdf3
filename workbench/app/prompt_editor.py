"""The Prompt lab's editor: a prompt as structured data in tables, its few-shot examples, validation,
YAML import and export.

The editor's prompt lives in a ``gr.State`` as ``PromptTemplate.to_dict()``; every action that
uses it first writes the editor's fields into it (:func:`apply_editor`), so nothing typed is lost.
The helpers down to :func:`problems_table` are pure (tables <-> dict, example reordering) and need no server;
the rest turn a prompt into the editor's components and back.
"""

from __future__ import annotations

import copy
import re
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr  # this module is imported only by build_app, never by `import workbench`

from ..errors import InputError, PromptError, TemplateError
from ..prompt_lab import Problem, prompt_from_yaml, validate_prompt
from ..prompts import PromptTemplate, list_presets
from ..tools.core import default_tools
from .context import AppContext, check_upload, describe_error

__all__ = ["tools_table", "tool_overrides", "steps_table", "steps_from_table", "example_view", "apply_editor",
           "add_example", "delete_example", "move_example", "example_number", "version_choices", "problems_table",
           "dataframe", "editor_view", "check_prompt", "import_yaml", "export_yaml", "TOOL_COLUMNS", "STEP_COLUMNS",
           "PROBLEM_COLUMNS", "EDITOR_FIELDS"]

TOOL_COLUMNS = ["tool", "description"]
STEP_COLUMNS = ["thought", "action", "observation"]
PROBLEM_COLUMNS = ["where", "message"]
# The editor's fields, in the order every handler takes them (and gradio_client names them).
EDITOR_FIELDS = ("name", "mode", "style", "instruction", "system", "user", "tools", "example", "question", "answer",
                 "steps")


# ------------------------------------------------------------------ pure helpers


def dataframe(rows: list[list[Any]], columns: list[str]) -> Any:
    """A pandas DataFrame of ``rows`` (what the tables show)."""
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
    return dataframe(rows, TOOL_COLUMNS)


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
    return dataframe([[s.get(c, "") for c in STEP_COLUMNS] for s in (example or {}).get("steps") or []], STEP_COLUMNS)


def steps_from_table(table: Any) -> list[dict[str, str]]:
    """The steps of an example from its table; rows left wholly blank are dropped."""
    return [r for r in _records(table, STEP_COLUMNS) if any(v.strip() for v in r.values())]


def example_number(value: Any) -> int:
    """The example number a field holds (1-based; 0 for none or anything unreadable)."""
    try:
        return int(float(value)) if value not in (None, "") else 0
    except (TypeError, ValueError):
        return 0


def example_view(prompt: dict[str, Any], index: Any) -> tuple[str, str, Any]:
    """(question, answer, steps table) of example ``index`` (1-based); blanks when there is none."""
    examples, i = prompt.get("examples") or [], example_number(index)
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
    i = example_number(index)
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
    n, i = len(d.get("examples") or []), example_number(index)
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


def problems_table(problems: list[Problem]) -> Any:
    return dataframe([[p.where, p.message] for p in problems], PROBLEM_COLUMNS)


# ------------------------------------------------------------------ the editor's components


def editor_view(d: dict[str, Any], index: int) -> tuple[Any, ...]:
    """The editor's components for prompt ``d`` showing example ``index``."""
    n = len(d.get("examples") or [])
    index = index if 1 <= index <= n else (1 if n else 0)
    question, answer, steps = example_view(d, index)
    pick = gr.update(choices=[str(i) for i in range(1, n + 1)], value=str(index) if index else None)
    return (d.get("name", ""), d.get("mode", "react"), d.get("style", "plain"), d.get("instruction", ""),
            d.get("system", ""), d.get("user", ""), tools_table(d.get("tool_descriptions")), pick, index,
            question, answer, steps)


def check_prompt(ctx: AppContext, d: dict[str, Any], model_label: str | None) -> list[Problem]:
    """The prompt's problems, its length checked against the model's context when the model loads."""
    try:
        lm = ctx.models.get(model_label)
    except Exception as err:  # the structure is still checked; only the length needs the model
        return validate_prompt(d) + [Problem("length", f"not checked: the model did not load ({describe_error(err)}).")]
    return validate_prompt(d, model=lm)


def import_yaml(path: str | None) -> tuple[Any, ...]:
    """An uploaded YAML file into the editor: (state, parent, problems, status, *editor_view); a file with
    problems is not imported and they are listed, each on its own row."""
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
    return (d, "", problems_table([]), f"Imported `{name}` into the editor (not saved yet).", *editor_view(d, 1))


def export_yaml(d: dict[str, Any]) -> str:
    """The prompt as a YAML file in a fresh temporary folder, named after the prompt; returns its path."""
    prompt = PromptTemplate.from_dict(d, source=d.get("name") or "prompt")
    stem = re.sub(r"[^\w.-]+", "-", prompt.name).strip("-.") or "prompt"
    out = Path(tempfile.mkdtemp(prefix="wb-prompt-")) / f"{stem}.yaml"
    out.write_text(prompt.to_yaml(), encoding="utf-8")
    return str(out)
