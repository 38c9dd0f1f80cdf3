"""Benchmark: the MiniLM answer verifier fine-tuned on the demo world, scored on held-out pairs.

Trains ``FineTuneConfig(task="verifier", base_model="minilm")`` (every weight of all-MiniLM-L6-v2
plus a new two-class head) on demo:train pairs, evaluates on demo:dev during training, then loads
the saved folder with ``Verifier.load`` and scores demo:test pairs. Reports accuracy and the
per-class precision / recall / F1 on both, the training curve, and the scoring speed. For
context it also reports the whole-word string match that defined the labels (``mentions``): it
is right on every pair by construction, so the figure to read is how close a learned classifier,
which also has to cope with paraphrase, comes to it.

    python bench/verifier.py [--steps 100] [--lr 1e-4] [--out bench/results/verifier.json]
    python bench/verifier.py --reuse --agent-tasks 20     # then: the agent with and without it

With ``--agent-tasks N`` the embedded model also runs N demo:test tasks (spread over types) in react
mode with and without ``AgentConfig.verifier``: exact match, how many finishes were refused, and
how many refusals turned a wrong answer right or a right one wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from workbench.finetune import FineTuneConfig
from workbench.finetune.verifier import Verifier, train_verifier
from workbench.finetune.verifier_data import classification_report, load_pairs, mentions

sys.path.append(str(Path(__file__).resolve().parent))  # bench/_report.py, also when a test loads this file by path
from _report import result_path, write_report  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch-tokens", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=".bench_out/verifier", help="output_dir of the fine-tune (weights: not committed)")
    ap.add_argument("--out", default=str(result_path("verifier")))
    ap.add_argument("--agent-tasks", type=int, default=0, help="also run the agent on this many demo:test tasks")
    ap.add_argument("--reuse", action="store_true", help="keep the trained folder and figures in --out; "
                    "only run the agent comparison")
    args = ap.parse_args(argv)
    if args.reuse:
        out = json.loads(result_path(args.out).read_text())
        out["agent"] = agent_comparison(str(Path(args.work) / "verifier"), args.agent_tasks)
        write_report(args.out, out, [json.dumps({k: v for k, v in out["agent"].items() if k != "tasks"}, indent=1)])
        return 0

    cfg = FineTuneConfig(task="verifier", base_model="minilm", data="demo:train", eval_data="demo:dev",
                         steps=args.steps, learning_rate=args.lr, warmup_steps=10, batch_tokens=args.batch_tokens,
                         max_length=128, eval_interval=25, seed=args.seed, output_dir=args.work, method="full")
    curve: list[dict] = []
    result = train_verifier(cfg, on_metric=lambda step, m: curve.append({"step": step, **m}),
                            log=lambda text: print(text, flush=True))

    verifier = Verifier.load(result["adapter_dir"], device="cpu")
    test = load_pairs("demo:test", seed=args.seed)
    t0 = time.perf_counter()
    scores = verifier.score_many([p.observation for p in test], [p.answer for p in test])
    score_s = time.perf_counter() - t0
    labels = [p.label for p in test]
    test_report = classification_report(labels, [int(s >= 0.5) for s in scores])
    match_report = classification_report(labels, [int(mentions(p.observation, p.answer)) for p in test])
    wrong = [{"observation": p.observation, "answer": p.answer, "label": p.label, "score": round(s, 4)}
             for p, s in zip(test, scores) if int(s >= 0.5) != p.label]

    out = {
        "what": "MiniLM (all-MiniLM-L6-v2) fine-tuned as a BERT sequence classifier: does the observation "
                "support the answer? Pairs from the demo world's gold trajectories (balanced).",
        "config": cfg.to_dict(),
        "machine": {"platform": platform.platform(), "python": sys.version.split()[0], "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", ""),
                    "device": "cuda" if torch.cuda.is_available() else "cpu"},
        "n_train": result["n_train"], "train_seconds": round(result["seconds"], 1),
        "dev": {"pairs": result["n_eval"], "accuracy": result["accuracy"], "report": result["report"]},
        "test": {"pairs": len(test), "accuracy": test_report["accuracy"], "report": test_report,
                 "pairs_per_s": round(len(test) / score_s, 1), "errors": wrong[:20]},
        "string_match_on_test": {"accuracy": match_report["accuracy"],
                                 "note": "the rule that defined the labels; right by construction"},
        "curve": curve,
    }
    if args.agent_tasks:
        out["agent"] = agent_comparison(result["adapter_dir"], args.agent_tasks)
    write_report(args.out, out, [
        json.dumps({k: out[k] for k in ("n_train", "train_seconds")}, indent=1),
        f"dev accuracy {out['dev']['accuracy']:.3f}, test accuracy {out['test']['accuracy']:.3f}; "
        f"test report {json.dumps(test_report, indent=1)}",
    ])
    return 0


def agent_comparison(folder: str, n: int) -> dict:
    """The embedded model on ``n`` demo:test tasks in react mode, without and with the verifier."""
    from workbench import Agent, load_model, load_suite
    from workbench.evaluation import exact_match

    lm = load_model()
    tasks = load_suite("demo:test", limit=n).tasks  # spread over task types
    plain, checked = Agent(lm, mode="react"), Agent(lm, mode="react", verifier=folder)
    rows = []
    for task in tasks:
        row = {"id": task.id, "type": task.type}
        for name, agent in (("plain", plain), ("verifier", checked)):
            trace = agent.run(task.question)
            row[name] = {"answer": trace.answer, "em": exact_match(trace.answer, [task.answer, *task.aliases]),
                         "steps": len(trace.steps), "seconds": round(trace.wall_time, 2),
                         "refused": sum(s.verifier_score is not None and s.answer is None for s in trace.steps),
                         "scores": [round(s.verifier_score, 3) for s in trace.steps if s.verifier_score is not None]}
        rows.append(row)
        print(row, flush=True)
    em = {k: sum(r[k]["em"] for r in rows) / len(rows) for k in ("plain", "verifier")}
    return {"model": lm.name, "tasks": rows, "n": len(rows), "exact_match": em,
            "refusals": sum(r["verifier"]["refused"] for r in rows),
            "wrong_to_right": sum(r["plain"]["em"] < r["verifier"]["em"] for r in rows),
            "right_to_wrong": sum(r["plain"]["em"] > r["verifier"]["em"] for r in rows),
            "mean_steps": {k: sum(r[k]["steps"] for r in rows) / len(rows) for k in ("plain", "verifier")}}


if __name__ == "__main__":
    sys.exit(main())
