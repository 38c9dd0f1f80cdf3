"""The evaluation harness: every task of a suite in every mode, scored, stored and resumable.

Modes are the ReAct paper's: ``react``, ``cot``, ``act``, ``direct``, chain of thought with
self-consistency (``cot_sc``: k sampled chains, majority answer) and the paper's two hybrids,
``react_cot_sc`` (ReAct, backing off to CoT-SC when it does not finish within its steps) and
``cot_sc_react`` (CoT-SC, backing off to ReAct when the majority is weak).

    >>> result = evaluate("demo:test", ["react", "cot"], load_model(), limit=10)   # doctest: +SKIP
    >>> result.aggregate()                                                        # doctest: +SKIP

Every (task, mode) result and its traces are written to the store in one transaction as soon as
they exist, so a killed evaluation continues where it stopped: run the same call again (the run
id is derived from the suite, modes, model and settings), and nothing is run twice or lost.
Several processes can share the work (``accelerate launch``): each takes every n-th item.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .datasets import Suite, load_suite, supporting_recall
from .errors import ConfigError, InputError
from .eval_modes import EVAL_MODES, Item, get_mode, normalize_answer
from .store.runs import Store
from .types import Task, Trace

__all__ = ["EVAL_MODES", "EvalConfig", "EvalResult", "evaluate", "stream_evaluate", "run_item", "normalize_answer",
           "exact_match", "f1_score", "aggregate", "stored_aggregate", "compare_results", "merge_aggregates",
           "eval_run_id"]


@dataclass
class EvalConfig:
    """Settings of an evaluation; all of them are part of its run id."""

    max_steps: int = 8  # steps per react / act run
    max_new_tokens: int = 128  # generated tokens per step
    sc_samples: int = 5  # k: chains sampled by cot_sc
    sc_temperature: float = 0.7  # sampling temperature of cot_sc
    sc_threshold: float = 0.5  # cot_sc_react backs off to react when the majority share is below this
    seed: int = 0  # base seed of the sampled chains
    retrieval: str = "bm25"  # search ranking when no title matches exactly
    n_examples: int | None = None  # few-shot examples to keep (None: all the prompt has; 0: zero-shot)

    def __post_init__(self) -> None:
        if not 1 <= self.sc_samples <= 64:
            raise ConfigError(f"sc_samples (k) must be between 1 and 64, got {self.sc_samples}.")
        if not 0.0 < self.sc_threshold <= 1.0:
            raise ConfigError(f"sc_threshold must be in (0, 1], got {self.sc_threshold}.")
        if not 0.0 < self.sc_temperature <= 2.0:
            raise ConfigError(f"sc_temperature must be in (0, 2], got {self.sc_temperature}.")


# ------------------------------------------------------------------ metrics


def _golds(task: Task) -> list[str]:
    return [task.answer, *task.aliases]


def exact_match(prediction: str | None, golds: Iterable[str]) -> float:
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in golds))


def f1_score(prediction: str | None, golds: Iterable[str]) -> float:
    """Token F1 against the best-matching gold answer."""
    pred = normalize_answer(prediction).split()
    best = 0.0
    for gold in golds:
        ref = normalize_answer(gold).split()
        common = sum((Counter(pred) & Counter(ref)).values())
        if common:
            precision, recall = common / len(pred), common / len(ref)
            best = max(best, 2 * precision * recall / (precision + recall))
        elif not pred and not ref:
            best = 1.0
    return best


# ------------------------------------------------------------------ one item


def run_item(model: Any, suite: Suite, task: Task, mode: str, config: EvalConfig | None = None,
             prompts: dict | None = None) -> tuple[dict[str, Any], list[Trace]]:
    """Run one task in one mode (see eval_modes.MODES); returns its metrics row and every trace it produced.

    ``prompts`` maps an agent mode (react, cot, act, direct) to the prompt to use instead of the preset.
    """
    config = config or EvalConfig()
    t0 = time.perf_counter()
    outcome = get_mode(mode).run(Item(model, suite, task, config, prompts))
    answer, traces = outcome.answer, outcome.traces
    wall = time.perf_counter() - t0
    for trace in traces:
        trace.gold, trace.meta = task.answer, {**trace.meta, "task_id": task.id, "suite": suite.name, "eval_mode": mode}
    steps = [s for t in traces for s in t.steps if s.kind != "halt"]
    golds = _golds(task)
    em = float(answer == task.answer) if suite.kind == "fever" else exact_match(answer, golds)
    acting = next((t for t in traces if t.mode in ("react", "act")), None)  # the run that searched, if any
    recall = supporting_recall(task, acting) if acting is not None else None
    row = {
        "task_id": task.id, "type": task.type or suite.kind, "mode": mode, "question": task.question,
        "gold": task.answer, "answer": answer, "em": em,
        "f1": em if suite.kind == "fever" else f1_score(answer, golds), "success": em,
        "finished": any(t.stop_reason == "finished" for t in traces), "steps": len(steps),
        "invalid_actions": sum(s.error_kind == "invalid_action" for s in steps),
        "tool_errors": sum(s.error_kind == "tool" for s in steps),
        "wall_time": wall, "tokens": sum(t.generated_tokens for t in traces),
        "supporting_recall": recall, "backed_off": outcome.backed_off, "majority": outcome.majority,
        "trace_ids": [t.id for t in traces], "stop_reason": traces[-1].stop_reason if traces else "",
    }
    return row, traces


# ------------------------------------------------------------------ tables


# Runs that looped: the step budget ran out, or the agent caught a repeated action and forced the answer.
LOOP_ENDS = ("max_steps", "repeated_action")


def aggregate(table: Any, by: tuple[str, ...] = ("mode",)) -> Any:
    """Per mode (or mode and type): EM, F1, success, steps, invalid-action, tool-error and loop rates, time,
    tokens. The loop rate is the share of runs that ended by a loop (:data:`LOOP_ENDS`)."""
    import pandas as pd

    if table is None or len(table) == 0:
        return pd.DataFrame(columns=[*by, "tasks", "em", "f1", "success", "steps", "invalid_action_rate",
                                     "tool_error_rate", "loop_rate", "wall_time", "tokens", "supporting_recall"])
    table = table.assign(looped=table["stop_reason"].isin(LOOP_ENDS) if "stop_reason" in table else False)
    grouped = table.groupby(list(by), sort=False)
    out = grouped.agg(tasks=("task_id", "count"), em=("em", "mean"), f1=("f1", "mean"), success=("success", "mean"),
                      steps=("steps", "mean"), invalid=("invalid_actions", "sum"), tool=("tool_errors", "sum"),
                      loop_rate=("looped", "mean"),
                      n_steps=("steps", "sum"), wall_time=("wall_time", "mean"), tokens=("tokens", "mean"),
                      supporting_recall=("supporting_recall", "mean")).reset_index()
    denominator = out["n_steps"].where(out["n_steps"] > 0, 1)
    out["invalid_action_rate"] = out.pop("invalid") / denominator
    out["tool_error_rate"] = out.pop("tool") / denominator
    out = out.drop(columns=["n_steps"])
    order = [m for m in EVAL_MODES if m in set(out["mode"])]
    out["mode"] = pd.Categorical(out["mode"], categories=order, ordered=True)
    out = out.sort_values(list(by)).reset_index(drop=True)
    out["mode"] = out["mode"].astype(str)
    cols = [*by, "tasks", "em", "f1", "success", "steps", "invalid_action_rate", "tool_error_rate", "loop_rate",
            "wall_time", "tokens", "supporting_recall"]
    return out[cols].round(4)


@dataclass
class EvalResult:
    """The rows of one evaluation run (all of them, including those done before a resume)."""

    run_id: str
    suite: str
    modes: list[str]
    model: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    todo: int = 0  # items this call runs (those stored before a resume are not run again)
    done: int = 0  # of those, finished so far
    finished: bool = False  # the last value of stream_evaluate: rows hold every process's results

    @property
    def table(self) -> Any:
        """One row per (task, mode)."""
        import pandas as pd

        return pd.DataFrame(self.rows)

    def aggregate(self, by_type: bool = False) -> Any:
        return aggregate(self.table, ("mode", "type") if by_type else ("mode",))

    def to_csv(self, path: str | Path) -> Path:
        path = Path(path)
        self.table.to_csv(path, index=False)
        return path

    def to_json(self, path: str | Path) -> Path:
        path = Path(path)
        data = {"run_id": self.run_id, "suite": self.suite, "modes": self.modes, "model": self.model,
                "config": self.config, "aggregate": self.aggregate().to_dict(orient="records"), "rows": self.rows}
        path.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
        return path


def eval_run_id(suite: str, modes: Iterable[str], model: str, config: EvalConfig, limit: int | None,
                fresh: bool = False, prompts: dict | None = None) -> str:
    """The same evaluation asked for again gets the same id, so it resumes; ``fresh`` starts a new one."""
    hashes = {mode: p.hash for mode, p in sorted((prompts or {}).items())}
    key = json.dumps({"suite": suite, "modes": list(modes), "model": model, "config": asdict(config), "limit": limit,
                      "fresh": time.time_ns() if fresh else 0, **({"prompts": hashes} if hashes else {})},
                     sort_keys=True)
    return "eval-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def _shard() -> tuple[int, int, Any]:
    """(this process's index, number of processes, the accelerate state or None) under accelerate launch."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1, None
    import torch
    from accelerate import PartialState

    # Without a GPU, `accelerate launch --multi_gpu` still starts the processes (torchrun); they
    # then talk over gloo on the CPU. Evaluation needs no collective but a barrier.
    state = PartialState(cpu=not torch.cuda.is_available())
    return state.process_index, state.num_processes, state


def stream_evaluate(suite: Suite | str, modes: Iterable[str], model: Any, *, config: EvalConfig | None = None,
                    store: Store | None = None, run_id: str | None = None, limit: int | None = None,
                    fresh: bool = False, shard: tuple[int, int] | None = None,
                    prompts: dict | None = None, batch: int | None = None) -> Iterator[EvalResult]:
    """Run every task of ``suite`` in every mode, yielding the growing EvalResult as each row finishes.

    Results and traces go to ``store`` as they finish (``result.rows[-1]`` is the new row; rows stored
    before a resume come first). The last value has ``finished`` set and holds every process's rows.
    ``shard``: (index, count) to take every count-th item; by default taken from ``accelerate launch``.
    ``prompts``: agent mode -> PromptTemplate to use instead of the presets (part of the run id).
    ``batch``: tasks run at once, their decoding passes shared (batching.py); None lets the machine choose.
    Rows come and are stored in task order either way; greedy results are the same as one at a time.
    """
    from .batching import default_batch, parallel_map

    config = config or EvalConfig()
    modes = list(modes)
    unknown = [m for m in modes if m not in EVAL_MODES]
    if not modes or unknown:
        raise InputError(f"Unknown or no evaluation mode(s) {unknown or modes}. Available: {', '.join(EVAL_MODES)}.")
    if isinstance(suite, str):
        suite = load_suite(suite)
    suite = suite.limit(limit)
    model_name = str(getattr(model, "name", type(model).__name__))
    run_id = run_id or eval_run_id(suite.name, modes, model_name, config, limit, fresh, prompts)
    store = store or Store()
    index, count, state = shard + (None,) if shard else _shard()
    items = [(t, m) for t in suite.tasks for m in modes]
    if index == 0:
        store.start_eval(run_id, suite.name, modes, model_name, asdict(config), len(items))
    if state is not None:
        state.wait_for_everyone()
    done = store.eval_done(run_id)
    mine = [(t, m) for i, (t, m) in enumerate(items) if i % count == index and (t.id, m) not in done]
    result = EvalResult(run_id, suite.name, modes, model_name, store.eval_rows(run_id), asdict(config), todo=len(mine))
    batch = default_batch(model) if batch is None else batch
    if batch < 1:
        raise InputError(f"batch must be at least 1 (tasks decoded together), got {batch}.")
    runs = parallel_map(lambda item: run_item(model, suite, item[0], item[1], config, prompts), mine, batch)
    for row, traces in runs:
        row["process"] = index
        store.save_eval_item(run_id, row, traces)
        result.rows.append(row)
        result.done += 1
        yield result
    if state is not None:
        state.wait_for_everyone()
    result.rows = store.eval_rows(run_id)
    if index == 0 and len(result.rows) >= len(items):
        store.finish_eval(run_id)
    result.finished = True
    yield result


def evaluate(suite: Suite | str, modes: Iterable[str], model: Any, *, config: EvalConfig | None = None,
             store: Store | None = None, run_id: str | None = None, limit: int | None = None, fresh: bool = False,
             progress: Callable[[int, int, dict[str, Any]], None] | bool = False,
             shard: tuple[int, int] | None = None, prompts: dict | None = None, batch: int | None = None) -> EvalResult:
    """The last value of :func:`stream_evaluate` (same arguments).

    ``progress``: True for a tqdm bar, or a callback (done, total, row) per finished item.
    """
    stream = stream_evaluate(suite, modes, model, config=config, store=store, run_id=run_id, limit=limit,
                             fresh=fresh, shard=shard, prompts=prompts, batch=batch)
    bar = None
    result = None
    for result in stream:
        if result.finished:
            break
        if progress is True and bar is None:
            from tqdm.auto import tqdm

            bar = tqdm(total=result.todo, desc=f"eval {result.suite}", unit="run")
        if bar is not None:
            bar.update(1)
            bar.set_postfix(success=f"{result.rows[-1]['success']:.0f}", mode=result.rows[-1]["mode"])
        elif callable(progress):
            progress(result.done, result.todo, result.rows[-1])
    if bar is not None:
        bar.close()
    assert result is not None and result.finished  # stream_evaluate always ends with the finished result
    return result


def stored_aggregate(store: Store, run_id: str, by: tuple[str, ...] = ("mode",)) -> Any:
    """The :func:`aggregate` table of a stored evaluation (empty while it has no rows)."""
    import pandas as pd

    return aggregate(pd.DataFrame(store.eval_rows(run_id)), by)


def compare_results(store: Store, first: str | None, second: str | None) -> Any:
    """Two stored evaluations side by side: one row per mode, each metric once per evaluation, named with the
    last six characters of its id, e.g. ``success (a1b2c3)``; a mode only one of them ran is blank in the other.

    >>> compare_results(store, "eval-0a1b2c3d4e5f", "eval-9f8e7d6c5b4a")[["mode", "success (3d4e5f)"]]  # doctest: +SKIP
    """
    if not first or not second:
        raise InputError("Pick two evaluations to compare.")
    return merge_aggregates(stored_aggregate(store, first), stored_aggregate(store, second), first, second)


def merge_aggregates(a: Any, b: Any, first: str, second: str) -> Any:
    """Two by-mode aggregate tables side by side, each metric suffixed with its evaluation's last six characters."""
    return a.merge(b, on="mode", how="outer", suffixes=(f" ({first[-6:]})", f" ({second[-6:]})"))
