"""The prompt lab: validate edited prompts, keep them as named versions, and compare what they do.

    >>> problems = validate_prompt(prompt, model=lm)            # doctest: +SKIP
    >>> v = save_version(store, prompt, "react-short", note="two examples")   # doctest: +SKIP
    >>> cmp = compare_run("When was Skelnandun founded?", [Variant(a), Variant(b)], lm)   # doctest: +SKIP
    >>> cmp.table()                                              # doctest: +SKIP

Validation never raises on a bad prompt: it returns every problem with the exact place
(``examples[2].steps[1].action``) and what to do. Versions live in the store with their content
hash, parent, note and time, and travel as YAML.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError, ParseError, PromptError, StoreError, TemplateError
from .parsing import parse_action
from .prompt_experiments import (
    Comparison,
    StepDiff,
    Variant,
    batch_compare,
    compare_run,
    diff_traces,
    k_sweep,
    text_diff,  # comparing what prompts do, re-exported
)
from .prompts import PromptTemplate, load_prompt
from .tools.core import FINISH, Toolbox, default_tools

__all__ = ["Problem", "validate_prompt", "PromptVersion", "save_version", "list_versions", "get_version",
           "rename_prompt", "delete_version", "prompt_from_yaml", "saved_version_id", "resolve_prompt_ref", "Variant",
           "StepDiff", "Comparison", "diff_traces", "compare_run", "batch_compare", "k_sweep", "text_diff"]



# ------------------------------------------------------------------ validation


@dataclass
class Problem:
    """Something wrong with a prompt: where (a path into the prompt) and what to do about it."""

    where: str  # "user", "examples[2].steps[1].action", "tool_descriptions.lookup", "length"
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def validate_prompt(prompt: PromptTemplate | dict[str, Any], tools: Toolbox | None = None, model: Any = None,
                    max_steps: int = 8, max_new_tokens: int = 128) -> list[Problem]:
    """Every problem of a prompt (or of its dict form, as the editor holds it), in order."""
    problems: list[Problem] = []
    if isinstance(prompt, dict):
        try:
            prompt = PromptTemplate.from_dict(prompt, source=str(prompt.get("name") or "prompt"))
        except (TemplateError, PromptError) as err:
            part = "user" if ".user" in str(err) or "{task}" in str(err) else "system" if ".system" in str(err) else "prompt"
            return [Problem(part, str(err))]
    tools = tools or default_tools()
    names = set(tools.names)
    for name in prompt.tool_descriptions:
        if name not in names:
            problems.append(Problem(f"tool_descriptions.{name}", f"no tool is called {name!r}; tools: "
                                                                  f"{', '.join(sorted(names))}."))
    for i, ex in enumerate(prompt.examples, 1):
        problems += _check_example(prompt.mode, ex, i, tools)
    if model is not None:
        problems += _check_length(prompt, tools, model, max_steps, max_new_tokens)
    return problems


def _check_example(mode: str, ex: Any, i: int, tools: Toolbox) -> list[Problem]:
    where = f"examples[{i}]"
    out = []
    if not ex.question.strip():
        out.append(Problem(f"{where}.question", "the question is empty."))
    if mode in ("cot", "direct"):
        if not ex.answer.strip():
            out.append(Problem(f"{where}.answer", f"a {mode} example needs an answer."))
        if mode == "cot" and not any(s.thought.strip() for s in ex.steps):
            out.append(Problem(f"{where}.steps", "a cot example needs its reasoning as a thought."))
        return out
    if not ex.steps:
        return out + [Problem(f"{where}.steps", "a react example needs at least one step ending in finish[answer].")]
    for j, step in enumerate(ex.steps, 1):
        here = f"{where}.steps[{j}]"
        if mode == "react" and not step.thought.strip():
            out.append(Problem(f"{here}.thought", "the thought is empty; react examples think before each action."))
        try:
            call = parse_action(step.action, tools)
        except ParseError as err:
            out.append(Problem(f"{here}.action", str(err)))
            continue
        last = j == len(ex.steps)
        if call.name == FINISH and not last:
            out.append(Problem(f"{here}.action", "finish must be the last step of an example."))
        if last and call.name != FINISH:
            out.append(Problem(f"{here}.action", f"the last step must finish, e.g. finish[answer]; it is {call}."))
        if not last and not step.observation.strip():
            out.append(Problem(f"{here}.observation", "every step but the last needs the observation its action gets."))
    return out


def _check_length(prompt: PromptTemplate, tools: Toolbox, model: Any, max_steps: int, max_new_tokens: int) -> list[Problem]:
    style = "numbered" if prompt.style == "numbered" else "plain"
    system, user = prompt.render("x" * 80, tools.describe(style, prompt.tool_descriptions))
    count = lambda text: len(model.tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    n = sum(count(s.text) for s in system + user)
    room = model.max_length - max_steps * (max_new_tokens + 60)  # each step: its output and an observation
    if n <= room:
        return []
    sizes = sorted(((count(prompt.render_example(e)), i) for i, e in enumerate(prompt.examples, 1)), reverse=True)
    hint = f" The longest example is examples[{sizes[0][1]}] ({sizes[0][0]} tokens)." if sizes else ""
    return [Problem("length", f"the prompt has {n} tokens; {model.name} has {model.max_length}, and {max_steps} steps "
                              f"need about {model.max_length - room} more. Remove examples or shorten them.{hint}")]


# ------------------------------------------------------------------ versions


@dataclass
class PromptVersion:
    """A saved prompt: its content hash names what it says; ``parent`` is the version it was edited from."""

    id: str
    name: str
    hash: str
    prompt: PromptTemplate
    parent: str | None = None
    note: str = ""
    created_at: float = field(default_factory=time.time)


def _version(row: dict[str, Any]) -> PromptVersion:
    prompt = PromptTemplate.from_yaml(row["yaml"], source=row["name"])
    return PromptVersion(row["id"], row["name"], row["hash"], prompt, row["parent"], row["note"], row["created_at"])


def save_version(store: Any, prompt: PromptTemplate, name: str | None = None, note: str = "",
                 parent: str | None = None) -> PromptVersion:
    """Save ``prompt`` as a version of ``name`` (default: its own name); invalid prompts are refused."""
    problems = validate_prompt(prompt)
    if problems:
        raise PromptError("The prompt has problems; fix them before saving: " + "; ".join(map(str, problems)))
    name = (name or prompt.name).strip()
    if not name:
        raise InputError("A prompt version needs a name.")
    prompt = PromptTemplate.from_dict({**prompt.to_dict(), "name": name}, source=name)
    v = PromptVersion(uuid.uuid4().hex[:10], name, prompt.hash, prompt, parent, note)
    store.save_prompt_version({"id": v.id, "name": v.name, "hash": v.hash, "parent": parent, "note": note,
                               "created_at": v.created_at, "yaml": prompt.to_yaml()})
    return v


def list_versions(store: Any, name: str | None = None) -> list[PromptVersion]:
    return [_version(r) for r in store.prompt_versions(name)]


def get_version(store: Any, ref: str) -> PromptVersion:
    """A version by id, or the newest version of a name; presets are not versions (use load_prompt)."""
    row = store.prompt_version(ref)
    if row is None:
        rows = store.prompt_versions(ref)
        row = rows[0] if rows else None
    if row is None:
        names = sorted({r["name"] for r in store.prompt_versions()})
        raise StoreError(f"No prompt version or name {ref!r}. Saved names: {', '.join(names) or 'none'}; "
                         "presets load with load_prompt().")
    return _version(row)


def rename_prompt(store: Any, old: str, new: str) -> int:
    """Rename every version of ``old``; refuses to merge into another prompt's versions."""
    old, new = old.strip(), new.strip()
    if not new:
        raise InputError("The new name is empty.")
    if new != old and store.prompt_versions(new):
        raise InputError(f"Versions named {new!r} exist already; pick another name or delete them first.")
    n = store.rename_prompt(old, new)
    if n == 0:
        raise StoreError(f"No prompt versions are named {old!r}.")
    return n


def delete_version(store: Any, version_id: str) -> None:
    if not store.delete_prompt_version(version_id):
        raise StoreError(f"No prompt version with id {version_id!r}.")


def prompt_from_yaml(text: str, source: str = "import") -> PromptTemplate:
    """Import a prompt from YAML, refusing it with every problem listed when it is not valid."""
    prompt = PromptTemplate.from_yaml(text, source=source)
    problems = validate_prompt(prompt)
    if problems:
        err = PromptError(f"{source}: " + "; ".join(map(str, problems)))
        err.problems = problems  # one per place, for editors that list them
        raise err
    return prompt


def saved_version_id(store: Any, ref: str) -> str:
    """The version id in a Prompt lab menu reference ("saved:ID", or its label "saved: NAME · ID · note");
    anything else is returned as it is (an id, or a name for :func:`get_version`)."""
    ref = ref.strip()
    if not ref.startswith("saved:"):
        return ref
    rest = ref.removeprefix("saved:").strip()
    ids = [p.strip() for p in rest.split(" · ")[1:]]  # a label: "NAME · id · note"
    return next((p for p in ids if store.prompt_version(p)), rest)


def resolve_prompt_ref(store: Any, ref: str | None) -> tuple[PromptTemplate, str | None]:
    """The one reader of prompt references (app, CLI, notebooks): (template, saved version id or None).

    A reference is a preset name (``react``), a ``.yaml`` file, a saved name (its newest version) or a
    version id, or a Prompt lab menu value or label: ``preset:react``, ``saved:ID``, ``saved: NAME · ID · note``.
    A .yaml file is read as it is; :func:`validate_prompt` lists its problems.

    >>> resolve_prompt_ref(store, "preset:cot")[0].mode          # doctest: +SKIP
    'cot'
    """
    from pathlib import Path

    from .prompts import list_presets

    ref = (ref or "").strip()
    forms = (f"Presets: {', '.join(list_presets())}; or a saved name or version id, a .yaml file, "
             "or the Prompt lab's preset:NAME / saved:ID.")
    if not ref:
        raise InputError(f"Pick a preset or a saved version. {forms}")
    if ref.startswith("preset:"):
        return load_prompt(ref.removeprefix("preset:").strip()), None
    if ref in list_presets():
        return load_prompt(ref), None
    if Path(ref).suffix in (".yaml", ".yml"):
        if not Path(ref).is_file():
            raise PromptError(f"No prompt file {ref}. Export one with `workbench prompt export react --out {ref}`.")
        return load_prompt(ref), None
    try:
        version = get_version(store, saved_version_id(store, ref))
    except StoreError as err:
        names = sorted({r["name"] for r in store.prompt_versions()})
        raise StoreError(f"No prompt version or name {ref!r}. Saved names: {', '.join(names) or 'none yet'}. "
                         f"{forms}") from err
    return version.prompt, version.id

