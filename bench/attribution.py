"""Benchmark: attribution methods side by side on many steps, each map's faithfulness and cost.

Steps: the thoughts of react runs and of cot runs of the shipped model (the embedded SmolLM2 with
this project's LoRA adapter) on demo:test tasks, interleaved (react, cot, react, ...), so a run
stopped early still holds both. Per step, with every segment of the prompt split into sentences
(instruction, tools, each few-shot example, the task, each earlier thought, action and observation):

- one set of 16 seeded held-out random ablations (each sentence kept with probability 1/2), scored
  once, on which every method's LDS is measured; random-k deletions, also shared;
- leave-one-out (Captum FeatureAblation), the surrogate at 64 random ablations (16 and 32: fits on
  the first 16 / 32 of the same masks, which are the masks a 16- or 32-ablation run draws; their
  passes and tokens are what scoring those masks alone costs, counted by replaying the scorer's
  prefix reuse, and their time is the 64-mask run's seconds per token times their tokens),
  Shapley value sampling (one permutation), Captum KernelShap and Lime (32 samples; every
  ``--kernel-every`` steps), token-level layer integrated gradients on the task and the trajectory
  (8 steps, the prefix before them cached; its token scores summed per sentence for the LDS);
- the `context-cite` package itself against this project's surrogate on the same sources (the
  sentences of the task and the trajectory: ContextCite's "context"; the instruction and examples
  are fixed) and the same 32 masks: time, passes, tokens, agreement of the weights, and each one's
  LDS on 16 held-out masks over those sources.

Each step's figures are appended to ``bench/results/attribution_steps.jsonl`` as soon as they are
measured (``--resume`` skips the steps already there), and the summary table is rewritten to
``bench/results/attribution_methods.{json,log}`` after every step.

    python bench/attribution.py [--react 20] [--cot 20] [--resume]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from workbench import Agent, load_model, load_tasks
from workbench.attribution import attribute_step
from workbench.attribution.engine import (
    PrefixScorer,
    build_sequence,
    kept_positions,
    resume_point,
    sharing_order,
)
from workbench.attribution.faithfulness import heldout_ablations, spearman
from workbench.attribution.surrogate import fit_lasso, surrogate_fit
from workbench.models import shipped_adapter

sys.path.append(str(Path(__file__).resolve().parent))
from _contextcite import package_scores  # noqa: E402
from _report import RESULTS, result_path, write_report  # noqa: E402

N_HELDOUT = 16
KS = (1, 3)


def collect_steps(lm, n_react: int, n_cot: int, max_steps: int = 6):
    """(kind, task id, trace, step index, target) for the thoughts of react runs and the thoughts (or, where
    the model wrote no separate thought, the answers) of cot runs, interleaved."""
    tasks = load_tasks("test")
    react, cot = [], []
    for task in tasks:
        if len(react) < n_react:
            trace = Agent(lm, max_steps=max_steps).run(task.question)
            react += [("react", task.id, trace, s.index, "thought") for s in trace.steps
                      if s.kind != "halt" and "thought" in s.target_spans][: n_react - len(react)]
        if len(cot) < n_cot:
            trace = Agent(lm, mode="cot", max_steps=1).run(task.question)
            cot += [("cot", task.id, trace, s.index, "thought" if "thought" in s.target_spans else "answer")
                    for s in trace.steps if s.kind != "halt" and s.target_spans][: n_cot - len(cot)]
        if len(react) >= n_react and len(cot) >= n_cot:
            break
    out = []
    for i in range(max(len(react), len(cot))):
        out += react[i:i + 1] + cot[i:i + 1]
    return out


class Shared:
    """What every method of one step is measured against: held-out masks and random deletions."""

    def __init__(self, scorer: PrefixScorer, seed: int = 0) -> None:
        t0 = time.perf_counter()
        self.scorer = scorer
        self.masks, self.actual = heldout_ablations(scorer, n_masks=N_HELDOUT, seed=seed)
        self.full = float(scorer.baseline.sum())
        rng = random.Random(seed + 1)
        k = len(scorer.features)
        self.random_deletion = {}
        for kk in KS:
            draws = [rng.sample(range(k), kk) for _ in range(4)]
            self.random_deletion[kk] = statistics.mean(self.full - self.logp(d) for d in draws)
        self.seconds = time.perf_counter() - t0

    def logp(self, absent) -> float:
        return self.full if not absent else float(self.scorer.score(sorted(absent)).sum())

    def judge(self, scores) -> dict:
        predicted = [sum(s for s, keep in zip(scores, m) if keep) for m in self.masks]
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        out = {"lds": spearman(predicted, self.actual)}
        for kk in KS:
            out[f"del{kk}"] = self.full - self.logp(order[:kk])
            out[f"rand_del{kk}"] = self.random_deletion[kk]
        return out


def replay_tokens(seq, features, masks) -> tuple[int, int]:
    """(tokens run, tokens a full recompute would run) when ``masks`` are scored by a PrefixScorer:
    its order and its choice of cache (engine.sharing_order, engine.resume_point), without the model."""
    variants = [[j for j in range(len(features)) if not m[j]] for m in masks]
    last = seq.targets[-1]
    prev, ran, full = None, last + 1, last + 1  # the unperturbed pass every scorer starts with
    for i in sharing_order(variants, len(features)):
        if not variants[i]:  # the unperturbed sequence: its scores are already there
            continue
        kept = kept_positions(seq, features, variants[i])
        start, _ = resume_point(kept, prev, kept.index(seq.targets[0]))
        ran += len(kept) - start
        full += len(kept)
        prev = kept  # the scorer keeps the last variant's cache, whichever it started from
    return ran, full


def run_method(name, fn, shared):
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    row = {"method": name, "seconds": seconds, "forward": result.forward_passes, "backward": result.backward_passes,
           "tokens": result.tokens_run, "tokens_full": result.tokens_full}
    row.update(shared.judge(result.scores))
    return row, result


def measure_step(lm, kind, task_id, trace, index, target, kernel: bool, shapley: bool) -> dict:
    seq = build_sequence(trace, index, lm.tokenizer, target)
    features = seq.features("sentence", None, lm.tokenizer)
    shared = Shared(PrefixScorer(lm, seq, features))
    rows = []
    common = dict(target=target, granularity="sentence", model=lm, check_masks=0)
    row, _ = run_method("leave-one-out", lambda: attribute_step(trace, index, method="feature_ablation", **common),
                        shared)
    rows.append(row)
    # the surrogate at 64 ablations, refitted on its first 16 and 32 masks
    scorer = PrefixScorer(lm, seq, features)
    t0 = time.perf_counter()
    fit64 = surrogate_fit(scorer, n_ablations=64, mask_seed=0, keep_prob=0.5, lasso_alpha=0.01, output="log_prob")
    sec64 = time.perf_counter() - t0
    per_token = sec64 / max(scorer.counter.tokens, 1)
    for n in (16, 32, 64):
        weights = fit64["weights"] if n == 64 else fit_lasso(fit64["masks"][:n], fit64["outputs"][:n],
                                                             len(seq.targets), 0.01)[0]
        ran, full = replay_tokens(seq, features, fit64["masks"][:n])
        row = {"method": f"surrogate {n}", "forward": n + 1, "backward": 0, "tokens": ran, "tokens_full": full,
               "seconds": sec64 if n == 64 else per_token * ran}
        if n == 64:  # the replay counts what the scorer counted
            assert (ran, full) == (scorer.counter.tokens, scorer.counter.tokens_full), (ran, full, scorer.counter.tokens)
        row.update(shared.judge([float(w) for w in weights]))
        rows.append(row)
    if shapley:
        row, _ = run_method("shapley (1 permutation)", lambda: attribute_step(trace, index, method="shapley",
                                                                             n_samples=1, **common), shared)
        rows.append(row)
    if kernel:
        for method in ("kernel_shap", "lime"):
            row, _ = run_method(f"{method} 32", lambda m=method: attribute_step(trace, index, method=m,
                                                                               n_perturbations=32, **common), shared)
            rows.append(row)
    trajectory = [s.label for s in seq.segments if s.kind not in ("scaffold", "instruction", "tools", "example")
                  and s.end <= seq.targets[0] and s.end > s.start and not s.label.endswith("(this step)")]
    ig_common = {**common, "granularity": "token"}
    t0 = time.perf_counter()
    ig = attribute_step(trace, index, method="layer_integrated_gradients", n_steps=8, segments=trajectory, **ig_common)
    ig_seconds = time.perf_counter() - t0
    by_sentence = [0.0] * len(features)
    for f, s in zip(ig.features, ig.scores):
        j = next(j for j, g in enumerate(features) if g.start <= f.start < g.end)
        by_sentence[j] += s
    row = {"method": "integrated gradients (8 steps, trajectory tokens)", "seconds": ig_seconds,
           "forward": ig.forward_passes, "backward": ig.backward_passes, "tokens": ig.tokens_run,
           "tokens_full": ig.tokens_full, "convergence_delta": ig.settings["convergence_delta"],
           "token_features": len(ig.features)}
    row.update(shared.judge(by_sentence))
    rows.append(row)
    cc = contextcite_side_by_side(lm, seq, features, trajectory)
    return {"kind": kind, "task": task_id, "step": index, "target": target, "prompt_tokens": seq.targets[0],
            "target_tokens": len(seq.targets), "sentences": len(features), "heldout_seconds": shared.seconds,
            "full_logprob": shared.full, "methods": rows, "contextcite": cc}


def contextcite_side_by_side(lm, seq, features, trajectory) -> dict:
    """The package and ours on the same sources (the task's and the trajectory's sentences) and masks."""
    sources = [f for f in features if f.segment in set(trajectory)]
    if len(sources) < 2:
        return {"skipped": "fewer than 2 sources"}
    theirs = package_scores(lm, seq, sources, n_ablations=32, output="logit_prob", lasso_alpha=0.01)
    scorer = PrefixScorer(lm, seq, sources)
    t0 = time.perf_counter()
    ours = surrogate_fit(scorer, n_ablations=32, mask_seed=0, keep_prob=0.5, lasso_alpha=0.01, output="logit_prob")
    ours_seconds = time.perf_counter() - t0
    judge = Shared(PrefixScorer(lm, seq, sources), seed=7)
    return {"sources": len(sources),
            "package": {"seconds": theirs["seconds"], "forward": theirs["passes"], "tokens": theirs["tokens"],
                        **judge.judge(theirs["weights"])},
            "ours": {"seconds": ours_seconds, "forward": scorer.counter.forward, "tokens": scorer.counter.tokens,
                     "tokens_full": scorer.counter.tokens_full, **judge.judge([float(w) for w in ours["weights"]])},
            "max_abs_weight_diff": float(np.abs(np.array(theirs["weights"]) - ours["weights"]).max()),
            "same_masks": bool((theirs["masks"] == ours["masks"]).all())}


def _mean(values):
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else float("nan")


def summarise(records: list[dict], meta: dict) -> tuple[dict, list[str]]:
    methods = list(dict.fromkeys(r["method"] for rec in records for r in rec["methods"]))
    lines = [f"{len(records)} steps ({sum(r['kind'] == 'react' for r in records)} react, "
             f"{sum(r['kind'] == 'cot' for r in records)} cot); mean {_mean([r['sentences'] for r in records]):.0f} "
             f"sentence features, {_mean([r['prompt_tokens'] for r in records]):.0f} prompt tokens, "
             f"{_mean([r['target_tokens'] for r in records]):.0f} target tokens; {meta['model']}, "
             f"{meta['threads']} threads on {meta['device']}", "",
             "| method | steps | forward / backward passes | tokens recomputed (share of full) | wall time, mean "
             "(median) | LDS | top-1 deletion (random 1) | top-3 deletion (random 3) |", "|---|---|---|---|---|---|---|---|"]
    table = {}
    for m in methods:
        rows = [r for rec in records for r in rec["methods"] if r["method"] == m]
        agg = {k: _mean([r.get(k) for r in rows]) for k in ("forward", "backward", "tokens", "tokens_full", "seconds",
                                                            "lds", "del1", "rand_del1", "del3", "rand_del3")}
        agg["steps"] = len(rows)
        agg["median_seconds"] = statistics.median(r["seconds"] for r in rows)
        table[m] = agg
        lines.append(f"| {m} | {len(rows)} | {agg['forward']:.0f} / {agg['backward']:.0f} | {agg['tokens']:,.0f} "
                     f"({agg['tokens'] / agg['tokens_full']:.0%}) | {agg['seconds']:.1f} s ({agg['median_seconds']:.1f} s) | "
                     f"{agg['lds']:.2f} | "
                     f"{agg['del1']:.2f} ({agg['rand_del1']:.2f}) | {agg['del3']:.2f} ({agg['rand_del3']:.2f}) |")
    cc = [rec["contextcite"] for rec in records if "package" in rec.get("contextcite", {})]
    if cc:
        pk = {k: _mean([c["package"][k] for c in cc]) for k in ("seconds", "forward", "tokens", "lds")}
        us = {k: _mean([c["ours"][k] for c in cc]) for k in ("seconds", "forward", "tokens", "lds")}
        ratios = [c["package"]["seconds"] / c["ours"]["seconds"] for c in cc]
        table["contextcite"] = {"package": pk, "ours": us, "steps": len(cc),
                                "max_abs_weight_diff": max(c["max_abs_weight_diff"] for c in cc),
                                "speedup": pk["seconds"] / us["seconds"]}
        lines += ["", f"context-cite package against this project's surrogate, 32 ablations, same masks, on the "
                      f"task's and trajectory's sentences ({_mean([c['sources'] for c in cc]):.0f} sources on "
                      f"average, {len(cc)} steps):", "",
                  "| | wall time | forward passes | tokens run | LDS |", "|---|---|---|---|---|",
                  f"| context-cite 0.0.4 | {pk['seconds']:.1f} s | {pk['forward']:.0f} | {pk['tokens']:,.0f} | "
                  f"{pk['lds']:.2f} |",
                  f"| this project's surrogate | {us['seconds']:.1f} s | {us['forward']:.0f} | {us['tokens']:,.0f} | "
                  f"{us['lds']:.2f} |", "",
                  f"speed-up {table['contextcite']['speedup']:.1f}x on the mean time (per step: median "
                  f"{statistics.median(ratios):.1f}x, {min(ratios):.1f}x to {max(ratios):.1f}x); largest weight difference "
                  f"{table['contextcite']['max_abs_weight_diff']:.1e}"]
    return {"meta": meta, "steps": len(records), "table": table}, lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="default: the shipped adapter")
    ap.add_argument("--react", type=int, default=20)
    ap.add_argument("--cot", type=int, default=20)
    ap.add_argument("--kernel-every", type=int, default=4, help="KernelShap and Lime on every Nth step")
    ap.add_argument("--shapley-every", type=int, default=2, help="Shapley sampling on every Nth step")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--steps-file", default=str(RESULTS / "attribution_steps.jsonl"))
    ap.add_argument("--out", default="attribution_methods")
    ap.add_argument("--summarise-only", action="store_true", help="rewrite the summary from the steps file, run nothing")
    args = ap.parse_args(argv)

    if args.summarise_only:
        records = [json.loads(line) for line in Path(args.steps_file).read_text(encoding="utf-8").splitlines()]
        summary, lines = summarise(records, json.loads(result_path(args.out).read_text(encoding="utf-8"))["meta"])
        write_report(args.out, summary, lines)
        return 0
    spec = args.model if args.model else str(shipped_adapter())
    lm = load_model(spec)
    meta = {"model": lm.name, "device": str(lm.device), "threads": torch.get_num_threads(),
            "machine": platform.machine(), "torch": torch.__version__}
    steps_file = Path(args.steps_file)
    done = {}
    if args.resume and steps_file.exists():
        for line in steps_file.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            done[(rec["kind"], rec["task"], rec["step"])] = rec
    elif steps_file.exists():
        steps_file.unlink()
    print(f"collecting {args.react} react and {args.cot} cot steps ({lm.name})", flush=True)
    steps = collect_steps(lm, args.react, args.cot)
    records = []
    for n, (kind, task_id, trace, index, target) in enumerate(steps):
        key = (kind, task_id, index)
        if key in done:
            records.append(done[key])
            continue
        t0 = time.perf_counter()
        rec = measure_step(lm, kind, task_id, trace, index, target, kernel=n % args.kernel_every == 0,
                           shapley=n % args.shapley_every == 0)
        records.append(rec)
        with steps_file.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec) + "\n")
        print(f"[{n + 1}/{len(steps)}] {kind} {task_id} step {index}: {rec['sentences']} sentences, "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        summary, lines = summarise(records, meta)
        write_report(args.out, summary, lines, echo=False)
    summary, lines = summarise(records, meta)
    write_report(args.out, summary, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
