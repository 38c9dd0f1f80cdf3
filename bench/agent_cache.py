"""Benchmark: the agent's KV-cache reuse against a naive loop that regenerates from the whole prompt.

Same model, same 20 demo tasks (4 of each type from demo:test), react mode, greedy. For each task,
in the same process and interleaved, three agents run it: the agent as shipped (KV cache kept
across the steps of a run, the keys and values of the prompt before the task shared across runs,
greedy lookahead), the agent with KV reuse within a run only, and the naive loop (NaiveSession:
``model.generate`` on the whole sequence at every step).

Reports
- whether the greedy outputs are identical (token ids of every step),
- the wall-time ratio cached / naive, over all runs and over runs of three or more steps
  (goal: at most 0.5 for runs of three or more steps),
- decode tokens/s of the session's loop against plain ``model.generate`` on the same prompts
  (goal: within 10%), without and with greedy lookahead (prompt-lookup drafting, verified in one
  pass, so the output is unchanged).

    python bench/agent_cache.py [--model SPEC] [--tasks 20] [--out bench/results/agent_cache.json]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from workbench import Agent, load_model, load_tasks
from workbench.generation import DecodeSession, GenerationConfig
from workbench.types import TASK_TYPES

sys.path.append(str(Path(__file__).resolve().parent))  # bench/_report.py, also when a test loads this file by path
from _report import result_path, write_report  # noqa: E402


def pick_tasks(n: int):
    tasks = load_tasks("test")
    per_type = max(1, n // len(TASK_TYPES))
    chosen = []
    for kind in TASK_TYPES:
        chosen += [t for t in tasks if t.type == kind][:per_type]
    return chosen[:n]


def timed_run(agent: Agent, question: str):
    t0 = time.perf_counter()
    trace = agent.run(question)
    return trace, time.perf_counter() - t0


def decode_speed(lm, prompts: list[list[int]], n_new: int = 32) -> dict:
    """Decode tokens/s: the session's loop (without and with lookahead) vs model.generate, same prompts."""
    ours, ours_lookahead, theirs = [], [], []
    for ids in prompts:
        for lookahead, sink in ((0, ours), (8, ours_lookahead)):
            s = DecodeSession(lm)
            s.ids = list(ids)
            g = s.generate(config=GenerationConfig(max_new_tokens=n_new, lookahead=lookahead))
            if len(g.token_ids) > 1:
                sink.append(len(g.token_ids) / g.t_decode)
        x = torch.tensor([ids], device=lm.device)
        mask = torch.ones_like(x)
        with torch.inference_mode():
            t0 = time.perf_counter()
            lm.model.generate(x, attention_mask=mask, max_new_tokens=1, do_sample=False, pad_token_id=lm.pad_token_id)
            t_prefill = time.perf_counter() - t0
            t0 = time.perf_counter()
            lm.model.generate(x, attention_mask=mask, max_new_tokens=n_new, min_new_tokens=n_new, do_sample=False,
                              pad_token_id=lm.pad_token_id)
            t_all = time.perf_counter() - t0
        theirs.append((n_new - 1) / max(1e-9, t_all - t_prefill))
    med = statistics.median
    return {"session_tokens_per_s": med(ours), "session_lookahead_tokens_per_s": med(ours_lookahead),
            "generate_tokens_per_s": med(theirs), "ratio": med(ours) / med(theirs),
            "ratio_lookahead": med(ours_lookahead) / med(theirs), "new_tokens": n_new, "prompts": len(prompts)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--tasks", type=int, default=20)
    ap.add_argument("--max-steps", type=int, default=8)
    ap.add_argument("--out", default=str(result_path("agent_cache")))
    args = ap.parse_args(argv)

    torch.manual_seed(0)
    lm = load_model(args.model)
    tasks = pick_tasks(args.tasks)
    # The agent as shipped (KV reuse within a run, the prompt prefix shared across runs, greedy
    # lookahead); the same with KV reuse within a run only; and the naive loop.
    cached_agent = Agent(lm, mode="react", max_steps=args.max_steps)
    reuse_agent = Agent(lm, mode="react", max_steps=args.max_steps, share_prefix=False, lookahead=0)
    naive_agent = Agent(lm, mode="react", max_steps=args.max_steps, reuse_cache=False)
    cached_agent.run("What is 1 + 1?")  # warm-up, and the shared prefix is computed once here
    reuse_agent.run("What is 1 + 1?")

    rows = []
    accepted = drafted = 0
    for i, task in enumerate(tasks, 1):
        fast, t_fast = timed_run(cached_agent, task.question)
        mid, t_mid = timed_run(reuse_agent, task.question)
        slow, t_slow = timed_run(naive_agent, task.question)
        ids = [s.generation.token_ids for s in slow.steps]
        same = [s.generation.token_ids for s in fast.steps] == ids == [s.generation.token_ids for s in mid.steps]
        accepted += sum(s.generation.accepted_tokens for s in fast.steps)
        drafted += sum(s.generation.draft_tokens for s in fast.steps)
        rows.append({"task": task.id, "type": task.type, "steps": len(fast.steps), "identical": same,
                     "cached_s": t_fast, "reuse_only_s": t_mid, "naive_s": t_slow, "ratio": t_fast / t_slow,
                     "ratio_reuse_only": t_mid / t_slow, "generated_tokens": fast.generated_tokens,
                     "answer": fast.answer, "gold": task.answer})
        print(f"[{i:2d}/{len(tasks)}] {task.id:24s} steps={len(fast.steps)} identical={same} cached={t_fast:6.2f}s "
              f"reuse-only={t_mid:6.2f}s naive={t_slow:6.2f}s ratio={t_fast / t_slow:.2f} ({t_mid / t_slow:.2f})",
              flush=True)

    long_rows = [r for r in rows if r["steps"] >= 3]
    total = lambda rs, k: sum(r[k] for r in rs)  # noqa: E731
    speed = decode_speed(lm, _step_prompts(cached_agent, tasks[:10]))
    summary = {
        "model": lm.name, "device": str(lm.device), "dtype": str(lm.dtype), "threads": torch.get_num_threads(),
        "machine": platform.machine(), "tasks": len(rows), "identical_outputs": all(r["identical"] for r in rows),
        "ratio_all": total(rows, "cached_s") / total(rows, "naive_s"),
        "ratio_all_reuse_only": total(rows, "reuse_only_s") / total(rows, "naive_s"),
        "runs_3plus_steps": len(long_rows),
        "ratio_3plus_steps": (total(long_rows, "cached_s") / total(long_rows, "naive_s")) if long_rows else None,
        "ratio_3plus_steps_reuse_only": (total(long_rows, "reuse_only_s") / total(long_rows, "naive_s"))
        if long_rows else None,
        "decode": speed, "lookahead_accepted": accepted, "lookahead_drafted": drafted, "rows": rows,
    }
    lines = ["| measure | value |", "|---|---|",
             f"| greedy outputs identical (token ids, all steps, {len(rows)} tasks) | {summary['identical_outputs']} |",
             f"| wall-time ratio agent / naive loop, all {len(rows)} runs | {summary['ratio_all']:.2f} |"]
    if long_rows:
        lines.append(f"| wall-time ratio agent / naive loop, {len(long_rows)} runs of >= 3 steps | "
                     f"{summary['ratio_3plus_steps']:.2f} |")
    lines.append(f"| the same with KV reuse within a run only (no shared prefix, no lookahead), all runs | "
                 f"{summary['ratio_all_reuse_only']:.2f} |")
    if long_rows:
        lines.append(f"| the same with KV reuse within a run only, runs of >= 3 steps | "
                     f"{summary['ratio_3plus_steps_reuse_only']:.2f} |")
    lines += [f"| decode tokens/s, session loop without lookahead / model.generate | "
              f"{speed['session_tokens_per_s']:.1f} / {speed['generate_tokens_per_s']:.1f} = {speed['ratio']:.2f} |",
              f"| decode tokens/s, session loop with lookahead 8 / model.generate | "
              f"{speed['session_lookahead_tokens_per_s']:.1f} / {speed['generate_tokens_per_s']:.1f} = "
              f"{speed['ratio_lookahead']:.2f} |",
              f"| lookahead: draft tokens accepted / proposed (all runs) | {accepted} / {drafted} |"]
    write_report(args.out, summary, lines)
    return 0 if summary["identical_outputs"] else 1


def _step_prompts(agent: Agent, tasks) -> list[list[int]]:
    """The token ids of step 1's prompt for each task (what the agent feeds before generating)."""
    prompts = []
    for task in tasks:
        session = agent.open_session(task.question)
        session.feed("Thought:", "scaffold", "primer")
        prompts.append(list(session.ids))
    return prompts


if __name__ == "__main__":
    sys.exit(main())
