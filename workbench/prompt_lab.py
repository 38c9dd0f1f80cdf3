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

import difflib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable

from .errors import InputError, ParseError, PromptError, StoreError, TemplateError
from .eval_modes import EVAL_MODES, agent_modes
from .parsing import parse_action
from .prompts import MODES, PromptTemplate, load_prompt
from .tools.core import FINISH, Toolbox, default_tools
from .types import Step, Trace

__all__ = ["Problem", "validate_prompt", "PromptVersion", "save_version", "list_versions", "get_version",
           "rename_prompt", "delete_version", "prompt_from_yaml", "Variant", "StepDiff", "Comparison", "diff_traces",
           "compare_run", "batch_compare", "k_sweep", "text_diff"]


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


# ------------------------------------------------------------------ comparing runs


def text_diff(a: str, b: str) -> str:
    """A word-level diff: ``[-removed-]`` and ``{+added+}``, like git's --word-diff."""
    wa, wb = (a or "").split(), (b or "").split()
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, wa, wb).get_opcodes():
        if op == "equal":
            out.append(" ".join(wa[i1:i2]))
        if op in ("delete", "replace"):
            out.append("[-" + " ".join(wa[i1:i2]) + "-]")
        if op in ("insert", "replace"):
            out.append("{+" + " ".join(wb[j1:j2]) + "+}")
    return " ".join(x for x in out if x)


@dataclass
class StepDiff:
    """One step of two runs side by side."""

    index: int
    a: Step | None
    b: Step | None

    @property
    def same_action(self) -> bool:
        return bool(self.a and self.b and str(self.a.action) == str(self.b.action))

    def row(self) -> dict[str, Any]:
        def part(step: Step | None, attr: str) -> str:
            value = getattr(step, attr, None) if step else None
            return str(value) if value is not None else ""

        return {"step": self.index, "thought_a": part(self.a, "thought"), "thought_b": part(self.b, "thought"),
                "thought_diff": text_diff(part(self.a, "thought"), part(self.b, "thought")),
                "action_a": part(self.a, "action"), "action_b": part(self.b, "action"),
                "action_diff": text_diff(part(self.a, "action"), part(self.b, "action")),
                "observation_a": part(self.a, "observation"), "observation_b": part(self.b, "observation"),
                "same_action": self.same_action}


def diff_traces(a: Trace, b: Trace) -> list[StepDiff]:
    """Steps of two runs aligned by step number (a run that ended sooner has None there)."""
    sa = {s.index: s for s in a.steps if s.kind != "halt"}
    sb = {s.index: s for s in b.steps if s.kind != "halt"}
    return [StepDiff(i, sa.get(i), sb.get(i)) for i in sorted(set(sa) | set(sb))]


@dataclass
class Variant:
    """One side of a comparison: a prompt (or preset name) and optionally its own model."""

    prompt: PromptTemplate | str | None = None
    model: Any = None  # None: the comparison's model
    label: str = ""


@dataclass
class Comparison:
    """Two runs of one instruction under two variants, their aligned steps and the attribution diff."""

    task: str
    labels: tuple[str, str]
    traces: tuple[Trace, Trace]
    steps: list[StepDiff]
    attribution: Any = None  # a DataFrame from attribution_diff of the last common step, when computed

    def table(self) -> Any:
        import pandas as pd

        return pd.DataFrame([d.row() for d in self.steps])

    def outcomes(self) -> dict[str, Any]:
        a, b = self.traces
        return {"answers": (a.answer, b.answer), "stop_reasons": (a.stop_reason, b.stop_reason),
                "steps": (len(a.steps), len(b.steps)), "same_answer": (a.answer or "") == (b.answer or ""),
                "first_divergence": next((d.index for d in self.steps if not d.same_action), None)}


def _resolve(variant: Variant, model: Any, mode: str) -> tuple[PromptTemplate, Any, str]:
    prompt = variant.prompt if isinstance(variant.prompt, PromptTemplate) else load_prompt(variant.prompt, mode=mode)
    lm = variant.model or model
    label = variant.label or f"{prompt.name}@{prompt.hash[:6]}" + (f" · {lm.name}" if variant.model else "")
    return prompt, lm, label


def compare_run(task: str, variants: list[Variant], model: Any = None, *, mode: str = "react", corpus: Any = None,
                max_steps: int = 8, attribution: bool = True, store: Any = None) -> Comparison:
    """Run ``task`` under two variants (prompt versions, models or adapters) and diff the runs.

    With ``attribution``, the last step both runs have is attributed under each and the segment
    scores are aligned (same model and tokenizer family needed).
    """
    from .agent import Agent

    if len(variants) != 2:
        raise InputError(f"compare_run takes two variants, got {len(variants)}.")
    if mode not in MODES:
        raise InputError(f"Unknown mode {mode!r}. Available: {', '.join(MODES)}.")
    runs, labels, models = [], [], []
    for n, v in enumerate(variants):
        prompt, lm, label = _resolve(v, model, mode)
        if label in labels:  # the same version twice: keep the two columns apart
            labels[0], label = f"A: {labels[0]}", f"B: {label}"
            runs[0].meta["variant"] = labels[0]
        if lm is None:
            raise InputError("No model: pass model=... or give each Variant its own.")
        trace = Agent(lm, corpus=corpus, prompt=prompt, mode=prompt.mode, max_steps=max_steps).run(task)
        trace.meta["variant"] = label
        if store is not None:
            store.save_trace(trace, tags="compare")
        runs.append(trace)
        labels.append(label)
        models.append(lm)
    steps = diff_traces(runs[0], runs[1])
    result = Comparison(task, (labels[0], labels[1]), (runs[0], runs[1]), steps)
    common = [d.index for d in steps if d.a is not None and d.b is not None and d.a.token_ids and d.b.token_ids]
    if attribution and common:
        from .attribution.api import attribute_step, attribution_diff

        a = attribute_step(runs[0], common[-1], "step", model=models[0])
        b = attribute_step(runs[1], common[-1], "step", model=models[1])
        result.attribution = attribution_diff(a, b, labels[0], labels[1])
    return result


def batch_compare(suite: Any, prompt_a: PromptTemplate | str, prompt_b: PromptTemplate | str, model: Any, *,
                  modes: Iterable[str] = ("react",), limit: int | None = None, store: Any = None,
                  config: Any = None) -> dict[str, Any]:
    """Both prompt versions over a suite: per-mode and per-type success, the difference, and the
    tasks whose outcome flipped. Returns {"by_mode", "by_type", "flipped", "runs": (id_a, id_b)}."""
    import pandas as pd

    from .evaluation import aggregate, evaluate

    modes = list(modes)
    results = []
    for prompt in (prompt_a, prompt_b):
        template = prompt if isinstance(prompt, PromptTemplate) else load_prompt(prompt, mode=modes[0])
        fits = [m for m in modes if template.mode in agent_modes(m)]
        if not fits:
            usable = [m for m in EVAL_MODES if template.mode in agent_modes(m)]
            raise InputError(f"Prompt {template.name!r} is a {template.mode} prompt; the evaluation modes "
                             f"{', '.join(modes)} never run it. Pick one of: {', '.join(usable)}.")
        results.append(evaluate(suite, modes, model, store=store, limit=limit, prompts={template.mode: template},
                                config=config))
    ta, tb = (pd.DataFrame(r.rows) for r in results)
    joined = ta.merge(tb, on=["task_id", "mode"], suffixes=("_a", "_b"))
    flipped = joined[joined["success_a"] != joined["success_b"]][
        ["task_id", "type_a", "mode", "question_a", "gold_a", "answer_a", "answer_b", "success_a", "success_b"]
    ].rename(columns={"type_a": "type", "question_a": "question", "gold_a": "gold"})
    out = {}
    for key, by in (("by_mode", ("mode",)), ("by_type", ("mode", "type"))):
        a, b = aggregate(ta, by), aggregate(tb, by)
        merged = a[[*by, "success"]].merge(b[[*by, "success"]], on=list(by), suffixes=("_a", "_b"))
        merged["difference"] = merged["success_b"] - merged["success_a"]
        out[key] = merged
    out["flipped"] = flipped.reset_index(drop=True)
    out["runs"] = (results[0].run_id, results[1].run_id)
    return out


def k_sweep(suite: Any, model: Any, ks: Iterable[int], *, mode: str = "react", prompt: PromptTemplate | str | None = None,
            limit: int | None = None, store: Any = None, config: Any = None) -> Any:
    """Success against the number of few-shot examples (0 = zero-shot): one evaluation per k.

    ``config``: an EvalConfig for the other settings (its n_examples is replaced by each k)."""
    from dataclasses import replace as _replace

    import pandas as pd

    from .evaluation import EvalConfig, evaluate

    base = config or EvalConfig()

    template = prompt if isinstance(prompt, PromptTemplate) else load_prompt(prompt, mode=mode)
    rows = []
    for k in ks:
        if k < 0 or k > len(template.examples):
            raise InputError(f"k must be between 0 and {len(template.examples)} (the prompt's examples), got {k}.")
        result = evaluate(suite, [mode], model, store=store, limit=limit, config=_replace(base, n_examples=k),
                          prompts={mode: template})
        agg = result.aggregate().iloc[0]
        rows.append({"k": k, "success": float(agg["success"]), "f1": float(agg["f1"]), "steps": float(agg["steps"]),
                     "invalid_action_rate": float(agg["invalid_action_rate"]), "run": result.run_id})
    return pd.DataFrame(rows)

