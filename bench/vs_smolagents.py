"""Benchmark: this project's ReAct agent against smolagents' ToolCallingAgent, same model, same tools.

Same model object (the embedded SmolLM2-135M-Instruct, loaded once; smolagents' TransformersModel is
made to wrap that very module and tokenizer), greedy decoding, at most 128 new tokens a step, the
same tools (smolagents Tools that call this project's search / lookup / calculate through
``default_tools().run`` with a fresh ToolContext per task, so a tool call gets the same observation
in both), the same 30 demo tasks (the first 6 of each type from demo:test), ``max_steps`` 8. For
each task, in the same process and interleaved, ``Agent(lm, mode="react").run(question)`` runs it,
then ``ToolCallingAgent(tools, model).run(question)`` with smolagents' own prompt and its built-in
``final_answer`` tool. Each agent runs as shipped: ours reuses the KV cache across steps and shares
the prompt prefix across runs; smolagents calls ``model.generate`` on the whole chat at every step.

An answer is correct when it equals the task's answer or one of its aliases after normalisation
(lower case, punctuation and the articles a / an / the removed, whitespace collapsed). When
smolagents runs out of steps it asks the model once more for an answer (``provide_final_answer``);
that answer is scored like any other, and ``finished`` says whether the agent ended by itself
(our agent: finish[...] or a forced finish after a repeated action; smolagents: final_answer).

Reports, per agent: tasks solved (x / N), mean and median wall time per task, total time, mean steps,
and the ratio of the wall times. Any exception either agent raises on a task counts as a failure,
with its message recorded, so the run always finishes.

    python bench/vs_smolagents.py [--tasks 30] [--max-steps 8] [--no-adapter] [--out bench/results/vs_smolagents.json]

A third column runs our agent on the shipped adapter (assets/) on the same tasks, interleaved with the other two.

Needs smolagents==1.26.0 (in the dev extra: ``python3 bootstrap.py test`` installs it).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import string
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

from workbench import Agent, load_model, load_tasks
from workbench.errors import ToolError
from workbench.models import shipped_adapter
from workbench.tools import ToolContext, Toolbox, default_tools
from workbench.types import TASK_TYPES, Task
from workbench.world import load_world

sys.path.append(str(Path(__file__).resolve().parent))  # bench/_report.py, also when a test loads this file by path
from _report import result_path, write_report  # noqa: E402

AGENTS = ("workbench", "smolagents")
TUNED = "workbench_adapter"  # a third column: our agent on the shipped adapter (the model fine-tuned for it)
LABELS = {"workbench": "workbench Agent (react)", "smolagents": "smolagents ToolCallingAgent",
          TUNED: "workbench Agent + shipped adapter"}
MAX_NEW_TOKENS = 128  # per step, as AgentConfig.max_new_tokens
MAX_OBSERVATION_CHARS = 600  # as AgentConfig.max_observation_chars: longer observations are cut
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


# ---------------------------------------------------------------- tasks and scoring


def pick_tasks(n: int = 30) -> list[Task]:
    """The first ``n // 5`` tasks of each type from demo:test (at least one each), cut to ``n``."""
    tasks = load_tasks("test")
    per_type = max(1, n // len(TASK_TYPES))
    chosen: list[Task] = []
    for kind in TASK_TYPES:
        chosen += [t for t in tasks if t.type == kind][:per_type]
    return chosen[:n]


def normalize_answer(text: Any) -> str:
    """Lower case, punctuation and the articles a / an / the removed, whitespace collapsed.

    >>> normalize_answer("  The Humouline. "), normalize_answer("271,200")
    ('humouline', '271200')
    """
    text = str(text).lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def is_correct(answer: Any, task: Task) -> bool:
    """Whether ``answer`` matches the task's answer or one of its aliases after normalisation."""
    if answer is None:
        return False
    got = normalize_answer(answer)
    return bool(got) and got in {normalize_answer(a) for a in [task.answer, *task.aliases]}


# ---------------------------------------------------------------- smolagents side


def smolagents_model(lm, max_new_tokens: int = MAX_NEW_TOKENS):
    """A smolagents TransformersModel that generates with ``lm``'s own module and tokenizer, greedily.

    TransformersModel only takes a model id or folder and loads from it, so it is built from the
    folder ``lm`` was loaded from (a model built in code is first saved to a temporary folder;
    nothing is downloaded), and its freshly loaded copy is then replaced by ``lm.model`` and
    ``lm.tokenizer``. Greedy decoding, the token budget and the pad id go in the model's kwargs,
    which smolagents forwards to every ``model.generate`` call.
    """
    from smolagents import TransformersModel
    from transformers import TextIteratorStreamer
    from transformers.utils import logging as hf_logging

    folder = Path(str(getattr(lm.model, "name_or_path", "") or ""))
    tmp = None
    if not (folder / "config.json").is_file():
        tmp = tempfile.TemporaryDirectory(prefix="vs-smolagents-")
        folder = Path(tmp.name)
        lm.model.save_pretrained(folder)
        lm.tokenizer.save_pretrained(folder)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # TransformersModel passes the deprecated torch_dtype
    try:
        model = TransformersModel(model_id=str(folder), device_map=str(lm.device), max_new_tokens=max_new_tokens,
                                  do_sample=False, pad_token_id=lm.pad_token_id)
    finally:
        hf_logging.set_verbosity(verbosity)
        if tmp is not None:
            tmp.cleanup()
    if getattr(model, "_is_vlm", False) or hasattr(model, "processor"):
        raise RuntimeError(f"smolagents loaded {folder} as a vision-language model; this benchmark needs a causal LM.")
    # The copy TransformersModel just loaded is dropped here: from now on it generates with lm's.
    model.model, model.tokenizer = lm.model, lm.tokenizer
    model.streamer = TextIteratorStreamer(lm.tokenizer, skip_prompt=True, skip_special_tokens=True)
    return model


def smolagents_tools(context: ToolContext, toolbox: Toolbox | None = None, names=("search", "lookup", "calculate")):
    """This project's tools as smolagents Tools, all sharing ``context`` (one task's search state).

    A tool error becomes the observation "Error: ..." as in our agent, and long observations are
    cut as ours are, so the same call gives the same observation in both agents.
    """
    from smolagents import Tool

    toolbox = toolbox or default_tools()

    def call(name: str, argument: str) -> str:
        try:
            text = toolbox.run(name, str(argument), context)
        except ToolError as err:
            text = f"Error: {err}"
        text = " ".join(text.split())
        return text if len(text) <= MAX_OBSERVATION_CHARS else text[: MAX_OBSERVATION_CHARS - 1].rstrip() + "…"

    def schema(param: str, what: str) -> dict:
        return {param: {"type": "string", "description": what}}

    class Search(Tool):
        name, description, output_type = "search", toolbox.get("search").description, "string"
        inputs = schema("entity", "The entity to search for, e.g. Varnholt.")

        def forward(self, entity: str) -> str:
            return call("search", entity)

    class Lookup(Tool):
        name, description, output_type = "lookup", toolbox.get("lookup").description, "string"
        inputs = schema("keyword", "The keyword to find in the article of the last search, e.g. population.")

        def forward(self, keyword: str) -> str:
            return call("lookup", keyword)

    class Calculate(Tool):
        name, description, output_type = "calculate", toolbox.get("calculate").description, "string"
        inputs = schema("expression", "An arithmetic expression, e.g. (3 + 4) * 2.")

        def forward(self, expression: str) -> str:
            return call("calculate", expression)

    made = {"search": Search, "lookup": Lookup, "calculate": Calculate}
    return [made[n]() for n in names]


def run_smolagents(model, question: str, max_steps: int, corpus) -> dict:
    """One smolagents ToolCallingAgent run with fresh tools and a fresh ToolContext; never raises."""
    from smolagents import ActionStep, LogLevel, ToolCallingAgent
    from smolagents.utils import AgentMaxStepsError

    agent = ToolCallingAgent(tools=smolagents_tools(ToolContext(corpus=corpus)), model=model, max_steps=max_steps,
                             verbosity_level=LogLevel.OFF, return_full_result=True)
    row: dict[str, Any] = {"answer": None, "error": None, "finished": False}
    t0 = time.perf_counter()
    try:
        result = agent.run(question)
        row["answer"] = None if result.output is None else str(result.output)
        row["finished"] = result.state == "success"
    except Exception as err:  # any failure of the agent counts against it; the benchmark goes on
        row["error"] = f"{type(err).__name__}: {str(err)[:500]}"
    row["seconds"] = time.perf_counter() - t0
    steps = [s for s in agent.memory.steps if isinstance(s, ActionStep)]
    model_steps = [s for s in steps if not isinstance(s.error, AgentMaxStepsError)]  # not the fallback answer call
    row["steps"] = len(model_steps)
    row["model_calls"] = len(steps)
    row["step_errors"] = [str(s.error)[:300] for s in model_steps if s.error is not None]
    row["tool_calls"] = [f"{c.name}({json.dumps(c.arguments, ensure_ascii=False)})"
                         for s in model_steps for c in (s.tool_calls or [])]
    row["output_tokens"] = sum(s.token_usage.output_tokens for s in steps if s.token_usage)
    row["completions"] = [str(s.model_output or "")[:300] for s in model_steps]
    return row


# ---------------------------------------------------------------- our side


def run_workbench(agent: Agent, question: str) -> dict:
    """One run of our agent; never raises (the Agent already turns its own failures into a halt step)."""
    row: dict[str, Any] = {"answer": None, "error": None, "finished": False}
    t0 = time.perf_counter()
    try:
        trace = agent.run(question)
    except Exception as err:
        row["seconds"] = time.perf_counter() - t0
        row.update(error=f"{type(err).__name__}: {str(err)[:500]}", steps=0, model_calls=0, step_errors=[],
                   tool_calls=[], output_tokens=0, completions=[])
        return row
    row["seconds"] = time.perf_counter() - t0
    model_steps = [s for s in trace.steps if s.kind != "halt"]
    row["answer"] = trace.answer
    row["finished"] = trace.stop_reason in ("finished", "repeated_action")
    row["stop_reason"] = trace.stop_reason
    if trace.stop_reason in ("error", "context_full"):
        row["error"] = next((s.error for s in trace.steps if s.kind == "halt"), trace.stop_reason)
    row["steps"] = len(model_steps)
    row["model_calls"] = len(model_steps)
    row["step_errors"] = [s.error[:300] for s in model_steps if s.error]
    row["tool_calls"] = [str(s.action) for s in model_steps if s.action is not None]
    row["output_tokens"] = sum(s.generation.generated_tokens for s in model_steps)
    row["completions"] = [(s.completion + s.action_completion)[:300] for s in model_steps]
    return row


# ---------------------------------------------------------------- the comparison


def compare(lm, tasks: list[Task], max_steps: int = 8, max_new_tokens: int = MAX_NEW_TOKENS, smol_model=None,
            corpus=None, log: Callable[[str], None] | None = print, warm_up: bool = True,
            on_row: Callable[[list[dict]], None] | None = None, tuned=None) -> list[dict]:
    """Run both agents on each task, interleaved; one row per task with a sub-row per agent.

    ``tuned``: a second LoadedModel (the shipped adapter) that our agent also runs each task on, as a third
    sub-row ``workbench_adapter`` (smolagents is not run on it: the adapter learned this project's format).

    ``lm`` is a LoadedModel (``load_model()`` or ``tiny_model()``); ``smol_model`` defaults to
    ``smolagents_model(lm, max_new_tokens)``; ``corpus`` to the demo world's. ``on_row(rows)`` is called after
    each task with the rows so far (main writes them out, so a long run killed midway keeps them).
    """
    corpus = corpus if corpus is not None else load_world().corpus
    smol_model = smol_model or smolagents_model(lm, max_new_tokens)
    ours = Agent(lm, corpus=corpus, mode="react", max_steps=max_steps, max_new_tokens=max_new_tokens)
    ours_tuned = None if tuned is None else Agent(tuned, corpus=corpus, mode="react", max_steps=max_steps,
                                                   max_new_tokens=max_new_tokens)
    names = AGENTS + ((TUNED,) if ours_tuned else ())
    if warm_up:  # not timed: the first call of each pays one-off costs (ours computes its shared prefix)
        run_workbench(ours, "What is 1 + 1?")
        if ours_tuned:
            run_workbench(ours_tuned, "What is 1 + 1?")
        run_smolagents(smol_model, "What is 1 + 1?", 1, corpus)
    rows = []
    for i, task in enumerate(tasks, 1):
        row: dict[str, Any] = {"task": task.id, "type": task.type, "question": task.question, "gold": task.answer,
                               "aliases": list(task.aliases)}
        row["workbench"] = run_workbench(ours, task.question)
        row["smolagents"] = run_smolagents(smol_model, task.question, max_steps, corpus)
        if ours_tuned:
            row[TUNED] = run_workbench(ours_tuned, task.question)
        for name in names:
            row[name]["success"] = is_correct(row[name]["answer"], task)
        rows.append(row)
        if log:
            w, s = row["workbench"], row["smolagents"]
            log(f"[{i:2d}/{len(tasks)}] {task.id:24s} gold={task.answer!r:16s} | workbench {_mark(w)} "
                f"{w['seconds']:6.1f}s {w['steps']} st {str(w['answer'])[:24]!r} | smolagents {_mark(s)} "
                f"{s['seconds']:6.1f}s {s['steps']} st {str(s['answer'])[:24]!r}"
                + (f" error={s['error'][:80]!r}" if s["error"] else "")
                + (f" | adapter {_mark(row[TUNED])} {row[TUNED]['seconds']:6.1f}s {row[TUNED]['steps']} st "
                   f"{str(row[TUNED]['answer'])[:24]!r}" if ours_tuned else ""))
        if on_row:
            on_row(rows)
    return rows


def _mark(r: dict) -> str:
    return "ok " if r["success"] else "ERR" if r["error"] else " - "


def summarize(rows: list[dict]) -> dict:
    """Per agent: solved, finished, times, steps; and the wall-time ratio smolagents / workbench."""
    out: dict[str, Any] = {"tasks": len(rows)}
    for name in [n for n in (*AGENTS, TUNED) if rows and n in rows[0]]:
        rs = [r[name] for r in rows]
        secs = [r["seconds"] for r in rs]
        out[name] = {
            "solved": sum(r["success"] for r in rs), "finished": sum(r["finished"] for r in rs),
            "errors": sum(r["error"] is not None for r in rs),
            "mean_s": statistics.fmean(secs) if secs else 0.0, "median_s": statistics.median(secs) if secs else 0.0,
            "total_s": sum(secs), "mean_steps": statistics.fmean(r["steps"] for r in rs) if rs else 0.0,
            "mean_model_calls": statistics.fmean(r["model_calls"] for r in rs) if rs else 0.0,
            "output_tokens": sum(r["output_tokens"] for r in rs),
            "by_type": {k: sum(r[name]["success"] for r in rows if r["type"] == k) for k in TASK_TYPES},
        }
    ours = out["workbench"]["total_s"]
    out["time_ratio_smolagents_over_workbench"] = out["smolagents"]["total_s"] / ours if ours else None
    return out


def markdown_table(summary: dict) -> str:
    n = summary["tasks"]
    names = [k for k in (*AGENTS, TUNED) if k in summary]
    cols = [summary[k] for k in names]

    def line(measure: str, cell: Callable[[dict], str]) -> str:
        return f"| {measure} | " + " | ".join(cell(c) for c in cols) + " |"

    lines = ["| measure | " + " | ".join(LABELS[k] for k in names) + " |", "|---" * (len(names) + 1) + "|",
             line("solved (normalised exact match)", lambda c: f"{c['solved']}/{n}"),
             line("ended with its own final answer", lambda c: f"{c['finished']}/{n}"),
             line("runs that raised / stopped on an internal error", lambda c: str(c["errors"])),
             line("mean wall time per task", lambda c: f"{c['mean_s']:.1f} s"),
             line("median wall time per task", lambda c: f"{c['median_s']:.1f} s"),
             line("total wall time", lambda c: f"{c['total_s']:.0f} s"),
             line("mean steps (model calls)", lambda c: f"{c['mean_steps']:.2f} ({c['mean_model_calls']:.2f})"),
             line("generated tokens, all tasks", lambda c: str(c["output_tokens"])),
             line("solved by type (" + " / ".join(TASK_TYPES) + ")",
                  lambda c: " / ".join(str(c["by_type"][k]) for k in TASK_TYPES))]
    ratio = summary["time_ratio_smolagents_over_workbench"]
    if ratio:
        lines.append(line("wall-time ratio smolagents / workbench (total)",
                          lambda c: f"{ratio:.2f}" if c is cols[0] else ""))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=30, help="number of demo:test tasks, spread over the types")
    ap.add_argument("--max-steps", type=int, default=8)
    ap.add_argument("--skip", type=int, default=0, help="skip the first N chosen tasks (to continue a partial run)")
    ap.add_argument("--out", default=str(result_path("vs_smolagents")))
    ap.add_argument("--no-adapter", action="store_true",
                    help="leave out the third column (our agent on the shipped adapter)")
    args = ap.parse_args(argv)

    import smolagents
    import transformers

    torch.manual_seed(0)
    lm = load_model()
    adapter = None if args.no_adapter else shipped_adapter()
    tuned = load_model(str(adapter)) if adapter else None
    tasks = pick_tasks(args.tasks)[args.skip:]
    t0 = time.perf_counter()

    def report(rows: list[dict]) -> dict:
        summary = {
            "model": lm.name, "device": str(lm.device), "dtype": str(lm.dtype), "threads": torch.get_num_threads(),
            "machine": platform.machine(), "processor": platform.processor(), "python": platform.python_version(),
            "versions": {"smolagents": smolagents.__version__, "transformers": transformers.__version__,
                         "torch": torch.__version__},
            "max_steps": args.max_steps, "max_new_tokens": MAX_NEW_TOKENS, "wall_s": time.perf_counter() - t0,
            **summarize(rows), "rows": rows,
        }
        write_report(args.out, summary, echo=False)  # after every row: a partial run keeps its rows
        return summary

    summary = report(compare(lm, tasks, max_steps=args.max_steps, on_row=report, tuned=tuned))
    write_report(args.out, summary, markdown_table(summary).split("\n"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
