"""Comparing what prompts do: one task under two variants side by side, a suite under two versions, a k sweep.

    >>> cmp = compare_run("When was Skelnandun founded?", [Variant(a), Variant(b)], lm)   # doctest: +SKIP
    >>> cmp.table()                                              # doctest: +SKIP
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Iterable

from .errors import InputError
from .eval_modes import EVAL_MODES, agent_modes
from .prompts import MODES, PromptTemplate, load_prompt
from .types import Step, Trace

__all__ = ["Variant", "StepDiff", "Comparison", "diff_traces", "compare_run", "batch_compare", "k_sweep", "text_diff"]


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
    common = [d.index for d in steps if d.a is not None and d.b is not None and d.a.generation.token_ids and d.b.generation.token_ids]
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

