"""Benchmark: segment attribution of one step on the embedded model, this project's path against
Captum's own LLMAttribution(FeatureAblation) called with its defaults, in one process.

- a react run on a demo test task gives a step whose prompt has K labelled segments;
- this project's feature ablation (teacher forcing, one pass per variant, prefix reuse) and
  Captum's LLMAttribution (token-by-token decoding with its cache, for every variant) score the
  same features for the same target tokens: maximum absolute score difference, forward passes,
  wall time and their ratio (goal: identical scores, at least 3 times faster; under 10 s on 2
  CPU cores);
- the time per step of token-level layer integrated gradients;
- inseq's integrated gradients on the same step, when inseq installs and runs here.

    python bench/attribution_captum.py [--task test-single_hop-0002] [--step 2] [--target action]
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import sys
import time
from pathlib import Path

import torch

from workbench import Agent, load_model, load_tasks
from workbench.attribution import attribute_step, captum_reference

sys.path.append(str(Path(__file__).resolve().parent))  # bench/_report.py, also when a test loads this file by path
from _report import result_path, write_report  # noqa: E402


def pick_run(lm, task_id: str | None, min_steps: int):
    """The first demo test task whose react run has at least ``min_steps`` steps (or the named one)."""
    tasks = load_tasks("test")
    if task_id:
        tasks = [t for t in tasks if t.id == task_id]
    for task in tasks:
        trace = Agent(lm, max_steps=4).run(task.question)
        if len([s for s in trace.steps if s.generation.token_ids]) >= min_steps:
            return task, trace
    raise SystemExit("no demo task gave a run that long; pass --task")


def inseq_figures(lm, trace, step_index: int, target: str, n_steps: int) -> dict:
    """inseq's integrated gradients on the same step (its closest match to ours at token level)."""
    if importlib.util.find_spec("inseq") is None:
        return {"available": False, "why": "inseq is not installed"}
    try:
        import inseq

        from workbench.attribution.engine import build_sequence

        seq = build_sequence(trace, step_index, lm.tokenizer, target)  # the same target tokens as ours
        source = lm.tokenizer.decode(seq.ids[: seq.targets[0]])
        generated = lm.tokenizer.decode(seq.ids[: seq.targets[-1] + 1])
        model = inseq.load_model(lm.model, "integrated_gradients", tokenizer=lm.tokenizer)
        t0 = time.perf_counter()
        model.attribute(source, generated, n_steps=n_steps, internal_batch_size=4, show_progress=False,
                        skip_special_tokens=False)
        return {"available": True, "method": f"integrated_gradients, {n_steps} steps, per generated token",
                "seconds": time.perf_counter() - t0}
    except Exception as err:  # inseq 0.7 was written for transformers 4: record why it failed here
        return {"available": False, "why": f"{type(err).__name__}: {str(err)[:300]}"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--task", default=None)
    ap.add_argument("--step", type=int, default=2)
    ap.add_argument("--target", default="action")
    ap.add_argument("--ig-steps", type=int, default=16)
    ap.add_argument("--inseq-steps", type=int, default=4, help="IG steps for the inseq comparison (per token: slow)")
    ap.add_argument("--out", default=str(result_path("attribution")))
    args = ap.parse_args(argv)

    lm = load_model(args.model)
    task, trace = pick_run(lm, args.task, args.step)
    step = next(s for s in trace.steps if s.index == args.step)
    print(f"task {task.id}: {task.question!r}; step {args.step} has {step.generation.prompt_tokens} prompt tokens and "
          f"{len(step.generation.token_ids)} generated", flush=True)

    attribute_step(trace, args.step, target=args.target, model=lm)  # warm-up (allocations, lazy imports)
    ours = attribute_step(trace, args.step, target=args.target, model=lm)
    print(f"ours: {len(ours.features)} segments, {ours.forward_passes} passes, {ours.seconds:.2f} s", flush=True)
    ref = captum_reference(trace, args.step, target=args.target, model=lm)
    print(f"captum LLMAttribution defaults: {ref.forward_passes} passes, {ref.seconds:.2f} s", flush=True)
    diff = max(abs(a - b) for a, b in zip(ours.scores, ref.scores))
    diff_tokens = max(abs(a - b) for ra, rb in zip(ours.matrix, ref.matrix) for a, b in zip(ra, rb))
    # Captum's one-pass mode scores exactly what ours does, one full forward per variant.
    one_pass = captum_reference(trace, args.step, target=args.target, model=lm, forward_in_tokens=False)
    diff_one_pass = max(abs(a - b) for a, b in zip(ours.scores, one_pass.scores))
    print(f"captum forward_in_tokens=False: {one_pass.forward_passes} passes, {one_pass.seconds:.2f} s, "
          f"max diff {diff_one_pass:.2e}", flush=True)
    ig = attribute_step(trace, args.step, target=args.target, method="layer_integrated_gradients",
                        granularity="token", n_steps=args.ig_steps, model=lm)
    print(f"token-level layer IG ({args.ig_steps} steps): {ig.seconds:.2f} s, {len(ig.features)} token features",
          flush=True)
    inseq = inseq_figures(lm, trace, args.step, args.target, args.inseq_steps)
    if inseq.get("available"):  # like for like: ours with one IG per generated token, same steps
        same = attribute_step(trace, args.step, target=args.target, method="layer_integrated_gradients",
                              granularity="token", n_steps=args.inseq_steps, per_token=True, model=lm)
        inseq["ours_same_settings_seconds"] = same.seconds

    summary = {
        "model": lm.name, "device": str(lm.device), "threads": torch.get_num_threads(), "machine": platform.machine(),
        "task": task.id, "step": args.step, "target": args.target, "prompt_tokens": step.generation.prompt_tokens,
        "target_tokens": len(ours.target_ids), "segments": len(ours.features),
        "ours": {"seconds": ours.seconds, "forward_passes": ours.forward_passes, "scores": ours.scores},
        "captum": {"seconds": ref.seconds, "forward_passes": ref.forward_passes, "scores": ref.scores},
        "captum_one_pass": {"seconds": one_pass.seconds, "forward_passes": one_pass.forward_passes,
                            "scores": one_pass.scores, "max_abs_score_diff": diff_one_pass},
        "max_abs_score_diff": diff, "max_abs_token_score_diff": diff_tokens,
        "speedup": ref.seconds / ours.seconds,
        "integrated_gradients": {"n_steps": args.ig_steps, "seconds": ig.seconds, "token_features": len(ig.features),
                                 "forward_passes": ig.forward_passes, "backward_passes": ig.backward_passes},
        "inseq": inseq,
    }
    inseq_text = (f"{inseq['seconds']:.1f} s ({inseq['method']}); ours with the same settings "
                  f"{inseq['ours_same_settings_seconds']:.1f} s") if inseq.get("available") else inseq["why"]
    write_report(args.out, summary, [
        "| measure | value |", "|---|---|",
        f"| step | {task.id}, step {args.step}, target {args.target}: {step.generation.prompt_tokens} prompt tokens, "
        f"{len(ours.target_ids)} target tokens, {len(ours.features)} segments |",
        f"| max abs difference of segment scores (per-token scores) | {diff:.2e} ({diff_tokens:.2e}) |",
        f"| forward passes: ours / Captum defaults | {ours.forward_passes} / {ref.forward_passes} |",
        f"| wall time: ours / Captum defaults | {ours.seconds:.2f} s / {ref.seconds:.2f} s "
        f"(**{summary['speedup']:.1f}x** faster) |",
        f"| Captum's one-pass mode (forward_in_tokens=False): max abs difference, passes, time | "
        f"{diff_one_pass:.2e}, {one_pass.forward_passes}, {one_pass.seconds:.2f} s "
        f"({one_pass.seconds / ours.seconds:.1f}x ours) |",
        f"| token-level layer integrated gradients, {args.ig_steps} steps | {ig.seconds:.1f} s |",
        f"| inseq | {inseq_text} |",
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
