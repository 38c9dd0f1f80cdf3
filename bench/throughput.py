"""Benchmark: decode speed against the memory-bandwidth limit, and tasks per second batched.

In one process, side by side (every figure also as a share of the limit measured in the same run):

1. the bandwidth limit: the time to read a large float32 tensor (a sum over 1 GiB) with this
   process's threads, and from it the limit on decode tokens/s of a model whose weights are read
   once per token (bytes of parameters / bandwidth);
2. decode tokens/s at a 100- and a 900-token context, greedy, 64 new tokens, no lookahead: plain
   ``model.generate``; the agent's session loop on the Hugging Face forward (before); the session
   loop on the row path of fastforward.py (after: the exact changes); the same on the int8 model.
   Decode time only (prefill excluded), the median of ``--repeats`` runs;
3. the agent on demo:test (all tasks by default), react mode, the shipped adapter: one task at a
   time against ``--batch`` at once (continuous batching, batching.py): tasks per second, and
   whether every task's tokens are identical;
4. the int8 model's success on the same tasks beside the float32 model's.

    python bench/throughput.py [--model SPEC] [--tasks 100] [--batch 8] [--out bench/results/throughput.json]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.append(str(Path(__file__).resolve().parent))
from _report import result_path, write_report  # noqa: E402

from workbench.agent import Agent  # noqa: E402
from workbench.batching import batcher_for, parallel_map  # noqa: E402
from workbench.datasets import load_suite  # noqa: E402
from workbench.evaluation import exact_match  # noqa: E402
from workbench.fastforward import use_rows  # noqa: E402
from workbench.generation import DecodeSession, GenerationConfig  # noqa: E402
from workbench.models import load_model, shipped_adapter  # noqa: E402

NEW_TOKENS = 64


def bandwidth_gbs(gib: float = 1.0, repeats: int = 5) -> float:
    """GB/s of reading a float32 tensor of ``gib`` GiB (the best of ``repeats`` sums)."""
    x = torch.ones(int(gib * 2**30 / 4))
    x.sum()
    best = min(_timed(lambda: x.sum()) for _ in range(repeats))
    return x.numel() * 4 / best / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def weight_bytes(lm) -> int:
    """Bytes read per decoded token: every parameter once (a tied embedding / output matrix counts once)."""
    seen, total = set(), 0
    for p in lm.model.parameters():
        if p.data_ptr() not in seen:
            seen.add(p.data_ptr())
            total += p.numel() * p.element_size()
    return total


def context_ids(lm, n: int) -> list[int]:
    """``n`` ids of real prose (the demo world's articles), the same for every path."""
    suite = load_suite("demo:test")
    text = " ".join(d.text for d in suite.corpus_for(suite.tasks[0]).documents[:80])
    return lm.tokenizer(text, add_special_tokens=False)["input_ids"][:n]


def generate_tps(lm, ids: list[int]) -> float:
    """Decode tokens/s of plain ``model.generate``: (65 new tokens - 1 new token) timed apart."""
    inp = torch.tensor([ids])
    mask = torch.ones_like(inp)

    def run(n):
        with torch.inference_mode():
            return _timed(lambda: lm.model.generate(input_ids=inp, attention_mask=mask, max_new_tokens=n,
                                                     min_new_tokens=n, do_sample=False,
                                                     pad_token_id=lm.pad_token_id))
    return NEW_TOKENS / (run(NEW_TOKENS + 1) - run(1))


def session_tps(lm, ids: list[int], rows: bool) -> tuple[float, list[int]]:
    """Decode tokens/s of the agent's session loop (no lookahead, eos ignored by a long budget) and its ids."""
    use_rows(lm, rows)
    try:
        s = DecodeSession(lm)
        s.feed_ids(list(ids), "task", "context")
        s._eos = set()  # decode the full budget whatever the model writes
        g = s.generate(config=GenerationConfig(max_new_tokens=NEW_TOKENS, lookahead=0))
        return len(g.token_ids) / g.t_decode, g.token_ids
    finally:
        use_rows(lm, True)


def decode_table(lm, lm8, limit_tps: float, repeats: int, log) -> list[dict]:
    rows = []
    for ctx in (100, 900):
        ids = context_ids(lm, ctx)
        figures: dict[str, list[float]] = {}
        tokens = {}
        for _ in range(repeats):  # interleaved, so drift in the machine's load hits every path alike
            figures.setdefault("model.generate", []).append(generate_tps(lm, ids))
            for name, model, on in (("session loop, before", lm, False), ("session loop, after", lm, True),
                                    ("int8, after", lm8, True)):
                tps, out = session_tps(model, ids, on)
                figures.setdefault(name, []).append(tps)
                tokens[name] = out
        for name, values in figures.items():
            tps = statistics.median(values)
            rows.append({"context": ctx, "path": name, "tokens_per_s": round(tps, 2),
                         "share_of_limit": round(tps / limit_tps, 3)})
            log(f"ctx {ctx:4d}  {name:22s} {tps:6.2f} tok/s  {tps / limit_tps:6.1%} of the float32 limit")
        same = tokens["session loop, before"] == tokens["session loop, after"]
        rows.append({"context": ctx, "path": "before == after (greedy ids)", "identical": same})
        log(f"ctx {ctx:4d}  greedy ids before == after: {same}")
    return rows


def run_tasks(lm, suite, batch: int) -> tuple[list, float]:
    def one(task):
        return Agent(lm, corpus=suite.corpus_for(task), max_steps=8).run(task.question)

    t0 = time.perf_counter()
    traces = list(parallel_map(one, suite.tasks, batch))
    return traces, time.perf_counter() - t0


def _ids(trace) -> list:
    return [s.generation.token_ids if s.generation else None for s in trace.steps]


def _success(suite, traces) -> float:
    return sum(exact_match(t.answer, [task.answer, *task.aliases]) for task, t in zip(suite.tasks, traces)) / len(traces)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="default: the shipped adapter")
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-tasks", action="store_true", help="only the decode table")
    ap.add_argument("--out", default=str(result_path("throughput")))
    args = ap.parse_args()
    lines: list[str] = []

    def log(msg: str) -> None:
        print(msg, flush=True)
        lines.append(msg)

    spec = args.model or str(shipped_adapter() or "embedded")
    lm, lm8 = load_model(spec), load_model(f"{spec}+int8")
    gbs = bandwidth_gbs()
    wb = weight_bytes(lm)
    limit = gbs * 1e9 / wb  # the int8 model is compared with this float32 limit too (its goal: 3x the float path)
    log(f"{torch.get_num_threads()} threads; reading memory at {gbs:.1f} GB/s; float32 weights {wb / 1e6:.0f} MB "
        f"-> limit {limit:.1f} tokens/s")
    out = {"machine": {"threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
                       "torch": torch.__version__, "cuda": torch.cuda.is_available()},
           "model": lm.name, "bandwidth_gbs": round(gbs, 2), "weight_mb": round(wb / 1e6, 1),
           "limit_tokens_per_s": round(limit, 2), "new_tokens": NEW_TOKENS}
    out["decode"] = decode_table(lm, lm8, limit, args.repeats, log)
    write_report(args.out, out, lines, echo=False)
    if args.skip_tasks:
        return
    suite = load_suite("demo:test").limit(args.tasks)
    n = len(suite.tasks)
    b = batcher_for(lm)
    alone, t_alone = run_tasks(lm, suite, 1)
    log(f"{n} tasks one at a time: {t_alone:.0f} s ({n / t_alone:.3f} tasks/s), success {_success(suite, alone):.2f}")
    before = b.stats.passes, b.stats.shared
    together, t_batch = run_tasks(lm, suite, args.batch)
    same = sum(_ids(a) == _ids(t) for a, t in zip(alone, together))
    log(f"{n} tasks, {args.batch} at once: {t_batch:.0f} s ({n / t_batch:.3f} tasks/s), {t_alone / t_batch:.2f}x; "
        f"identical tokens in {same} / {n} tasks; {b.stats.shared - before[1]} of "
        f"{b.stats.passes - before[0]} passes shared")
    out["tasks"] = {"tasks": n, "batch": args.batch, "seconds_alone": round(t_alone, 1),
                    "seconds_batched": round(t_batch, 1), "speedup": round(t_alone / t_batch, 2),
                    "identical_tasks": same, "success_alone": _success(suite, alone),
                    "success_batched": _success(suite, together)}
    write_report(args.out, out, lines, echo=False)
    int8, t8 = run_tasks(lm8, suite, args.batch)
    log(f"int8, {args.batch} at once: {t8:.0f} s, success {_success(suite, int8):.2f} against float32 "
        f"{_success(suite, together):.2f}; tokens identical to float32 in "
        f"{sum(_ids(a) == _ids(t) for a, t in zip(together, int8))} / {n} tasks")
    out["int8_tasks"] = {"seconds_batched": round(t8, 1), "success": _success(suite, int8),
                         "success_float32": _success(suite, together), "speedup_vs_float32_batched": round(t_batch / t8, 2)}
    write_report(args.out, out, lines, echo=False)


if __name__ == "__main__":
    main()
