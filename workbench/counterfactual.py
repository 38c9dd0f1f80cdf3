""""What if the observation had said otherwise?": a behavioural check of grounding.

For a finished run, find the observation its answer came from, swap that fact (a number, a year, a name:
another value of the same attribute from the demo world's structured facts where it has one, else a nearby
number, else a person's edit), fork the run there (interventions.fork) and see whether the answer follows
the observation or stays where it was. A step that grounds on observations should follow them: this is
the behavioural twin of the attribution grounding score.

Over a suite, react runs are compared with cot runs that get the same fact in the question's context
(then the swapped fact), and one model with another (the base model and the shipped adapter):

    >>> rows = list(counterfactual_suite("demo:test", {"adapter": lm}, modes=("react", "cot"), limit=20))  # doctest: +SKIP
    >>> follow_table(rows)      # share of eligible runs whose answer follows the swap, per mode and model  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Iterator

from .agent import Agent
from .errors import InputError
from .eval_modes import normalize_answer
from .interventions import fork
from .types import Task, Trace

__all__ = ["Swap", "counterfactual", "counterfactual_suite", "follow_table", "answer_forms", "find_source", "world_facts",
           "swap_value", "swap_text", "OUTCOMES"]

OUTCOMES = ("follows", "kept", "other")  # the fork's answer: the swapped fact, the original answer, anything else


@dataclass
class Swap:
    """One swapped fact: where it stood, what it said, what it says now, and where the new value came from."""

    step: int  # the step whose observation held the answer (0: the question's context, for cot)
    original: str  # the answer as the observation wrote it
    replacement: str  # the new value, written the same way
    source: str  # "world" (another entity's value of the same attribute), "nearby" (a number), "edit" (a person)
    observation: str  # the observation with the fact swapped


def answer_forms(answer: str) -> list[str]:
    """The ways an observation may write ``answer``: as it is, and a number with thousands separators."""
    answer = (answer or "").strip()
    forms = [answer] if answer else []
    digits = answer.replace(",", "")
    if digits.isdigit() and len(digits) > 3:
        forms += [f"{int(digits):,}", digits]
    return list(dict.fromkeys(f for f in forms if f))


def _contains(text: str, form: str) -> bool:
    return re.search(rf"(?<![\w,]){re.escape(form)}(?![\w]|,\d)", text or "", re.IGNORECASE) is not None


def find_source(trace: Trace) -> int | None:
    """The step whose observation the answer came from: the last one before the end that states it."""
    forms = answer_forms(trace.answer or "")
    for step in reversed(trace.steps):
        if step.observation and not step.error and any(_contains(step.observation, f) for f in forms):
            return step.index
    return None


def world_facts() -> dict[str, list[Any]]:
    """Attribute name -> every value the demo world's entities have for it (numbers and titles), and each kind's
    titles ("title of a city": the cities' titles)."""
    from .world.generate import load_world

    values: dict[str, list[Any]] = {}
    for entity in load_world().entities:
        values.setdefault(f"title of a {entity.kind}", []).append(entity.title)  # a name swaps for a name of its kind
        for attr, value in entity.attrs.items():
            if isinstance(value, (int, str)) and not isinstance(value, bool):
                values.setdefault(attr, []).append(value)
    return values


def swap_value(answer: str, facts: dict[str, list[Any]] | None = None) -> tuple[str, str] | None:
    """Another value for ``answer``: (value, "world") from an attribute that has it, else (value, "nearby") for
    a number, else None. Deterministic: the same answer always swaps to the same value."""
    norm = normalize_answer(answer).replace(" ", "")
    pick = int(hashlib.sha256(norm.encode()).hexdigest()[:8], 16)
    for attr, values in sorted((facts or {}).items()):
        if any(normalize_answer(str(v)).replace(" ", "") == norm for v in values):
            others = sorted({str(v) for v in values if normalize_answer(str(v)).replace(" ", "") != norm})
            if isinstance(values[0], int) and norm.isdigit():  # keep the magnitude: a year stays a year
                others = [o for o in others if len(o) == len(norm)] or others
            if others:
                return others[pick % len(others)], "world"
    digits = answer.replace(",", "").strip()
    if digits.isdigit():
        n = int(digits)
        step = 37 if 1000 <= n <= 2100 else max(1, round(n * 0.13))
        return str(n + step if n + step != n else n + 1), "nearby"
    return None


def swap_text(text: str, original: str, replacement: str) -> str:
    """``text`` with every way it writes ``original`` replaced by ``replacement`` written the same way."""
    out = text
    for form in answer_forms(original):
        new = f"{int(replacement.replace(',', '')):,}" if "," in form and replacement.replace(",", "").isdigit() \
            else replacement
        out = re.sub(rf"(?<![\w,]){re.escape(form)}(?![\w]|,\d)", lambda _: new, out, flags=re.IGNORECASE)
    return out


def _outcome(answer: str | None, original: str, replacement: str) -> str:
    got = normalize_answer(answer).replace(" ", "")
    if got and got == normalize_answer(replacement).replace(" ", ""):
        return "follows"
    if got and got == normalize_answer(original).replace(" ", ""):
        return "kept"
    return "other"


def counterfactual(trace: Trace, model: Any, *, corpus: Any = None, replacement: str | None = None,
                   facts: dict[str, list[Any]] | None = None, store: Any = None) -> dict[str, Any]:
    """Swap the fact the answer of ``trace`` (a finished react / act run) came from and fork the run there.

    Returns a row: the source step, the original and swapped values, where the new value came from, the
    fork's answer and ``outcome`` (follows / kept / other), or ``skipped`` with the reason."""
    row: dict[str, Any] = {"run_id": trace.id, "mode": trace.mode, "model": trace.model, "answer": trace.answer}
    if trace.mode not in ("react", "act"):
        raise InputError(f"A {trace.mode} run has no observations to swap; use counterfactual_suite, which puts the "
                         "fact in a cot run's question, or pick a react run.")
    if trace.answer is None:
        return {**row, "skipped": f"the run has no answer (it ended: {trace.stop_reason})"}
    at = find_source(trace)
    if at is None:
        return {**row, "skipped": "the answer is in none of the run's observations"}
    obs = trace.steps[at - 1].observation or ""
    original = next(f for f in answer_forms(trace.answer) if _contains(obs, f))
    if replacement is not None:
        new, source = " ".join(str(replacement).split()), "edit"
        if not new:
            raise InputError("The replacement is empty; type the value the observation should say instead.")
    else:
        found = swap_value(trace.answer, facts if facts is not None else world_facts())
        if found is None:
            return {**row, "step": at, "skipped": f"no other value known for {trace.answer!r}; give a replacement"}
        new, source = found
    swapped = swap_text(obs, original, new)
    child = fork(trace, at, model, corpus=corpus, observation=swapped)
    child.meta["counterfactual"] = asdict(Swap(at, original, new, source, swapped))
    if store is not None:
        store.save_trace(child, tags="counterfactual")
    return {**row, "step": at, "original": original, "replacement": new, "source": source, "fork_id": child.id,
            "fork_answer": child.answer, "outcome": _outcome(child.answer, trace.answer, new)}


def _gold_fact(task: Task) -> str | None:
    """The gold trajectory's observation that states the gold answer (the fact a cot run gets as context)."""
    for g in reversed(task.trajectory):
        if g.observation and any(_contains(g.observation, f) for f in answer_forms(task.answer)):
            return " ".join(g.observation.split())
    return None


def _cot(model: Any, task: Task, fact: str, facts: dict[str, list[Any]], config: dict[str, Any]) -> dict[str, Any]:
    """A cot run with the fact in the question's context, then (a fork with a new task) with the swapped fact."""
    agent = Agent(model, mode="cot", **config)
    trace = agent.run(f"{task.question}\nContext: {fact}", task_id=task.id)
    row: dict[str, Any] = {"run_id": trace.id, "mode": "cot", "model": trace.model, "answer": trace.answer, "step": 0}
    forms = answer_forms(task.answer)
    if normalize_answer(trace.answer) not in {normalize_answer(f) for f in forms}:
        return {**row, "skipped": "the answer is not the fact in the context"}
    found = swap_value(task.answer, facts)
    if found is None:
        return {**row, "skipped": f"no other value known for {task.answer!r}"}
    original = next(f for f in forms if _contains(fact, f))
    new, source = found
    child = fork(trace, 1, model, task=f"{task.question}\nContext: {swap_text(fact, original, new)}")
    return {**row, "original": original, "replacement": new, "source": source, "fork_id": child.id,
            "fork_answer": child.answer, "outcome": _outcome(child.answer, trace.answer or "", new)}


def counterfactual_suite(suite: Any, models: dict[str, Any], modes: Iterable[str] = ("react", "cot"), *,
                         limit: int | None = None, max_steps: int = 8, max_new_tokens: int = 128,
                         store: Any = None, batch: int | None = None) -> Iterator[dict[str, Any]]:
    """Yield one row per (task, mode, model): react runs whose answer came from an observation get it swapped;
    cot runs get the gold fact in the question's context, then the swapped one. ``models``: label -> model.
    ``batch``: rows worked on at once, their decoding passes shared (batching.py; None lets the machine
    choose); rows come in the same order, with the same tokens, either way."""
    from .batching import default_batch, parallel_map
    from .datasets import load_suite

    suite = load_suite(suite, limit=limit) if isinstance(suite, str) else suite
    modes = list(modes)
    unknown = [m for m in modes if m not in ("react", "cot")]
    if unknown:
        raise InputError(f"The counterfactual check runs react and cot; got {', '.join(unknown)}.")
    if batch is not None and batch < 1:
        raise InputError(f"batch must be at least 1 (rows worked on together), got {batch}.")
    facts = world_facts() if str(suite.name).startswith("demo") else {}
    config = {"max_steps": max_steps, "max_new_tokens": max_new_tokens}

    def one(item: tuple[Any, str, str]) -> dict[str, Any]:
        task, label, mode = item
        model = models[label]
        base = {"task_id": task.id, "type": task.type, "question": task.question, "gold": task.answer,
                "label": label}
        if mode == "cot":
            fact = _gold_fact(task)
            row = _cot(model, task, fact, facts, {"max_new_tokens": max_new_tokens}) if fact else \
                {"mode": "cot", "skipped": "no gold observation states the answer"}
        else:
            corpus = suite.corpus_for(task)
            trace = Agent(model, corpus=corpus, mode="react", **config).run(task.question, task_id=task.id)
            trace.gold = task.answer
            if store is not None:
                store.save_trace(trace, tags="counterfactual")
            row = counterfactual(trace, model, corpus=corpus, facts=facts, store=store)
        return {**base, **row}

    items = [(task, label, mode) for task in suite.tasks for label in models for mode in modes]
    if batch is None:
        batch = min((default_batch(m) for m in models.values()), default=1)
    yield from parallel_map(one, items, batch)


def follow_table(rows: Iterable[dict[str, Any]]) -> Any:
    """Per mode and model label: tasks run, eligible runs (the answer was the observed fact) and, of those,
    the shares whose answer follows the swap, stays, or becomes something else."""
    import pandas as pd

    df = pd.DataFrame(list(rows))
    columns = ["mode", "model", "runs", "tasks", "follows", "kept", "other"]
    if df.empty:
        return pd.DataFrame(columns=columns)
    if "outcome" not in df:
        df["outcome"] = None
    out = []
    for (mode, label), part in df.groupby(["mode", "label"], sort=False):
        done = part[part["outcome"].notna()]
        n = len(done)
        share = {o: (float((done["outcome"] == o).mean()) if n else 0.0) for o in OUTCOMES}
        out.append({"mode": mode, "model": label, "runs": len(part), "tasks": n, **share})
    return pd.DataFrame(out, columns=columns)
