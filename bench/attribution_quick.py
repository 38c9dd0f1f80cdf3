"""Time only this project's segment feature ablation on the step bench/attribution_captum.py uses (no Captum).

For checking the under-10-seconds target on a quiet machine: one warm-up, then three timed runs.

    OMP_NUM_THREADS=2 python bench/attribution_quick.py    # writes bench/results/attribution_quiet.{json,log}
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_report  # noqa: E402
from attribution import pick_run  # noqa: E402  (the same step as the full benchmark)

from workbench import load_model  # noqa: E402
from workbench.attribution import attribute_step  # noqa: E402


def main() -> int:
    lm = load_model()
    task, trace = pick_run(lm, None, 2)
    step = next(s for s in trace.steps if s.index == 2)
    lines = ["# task, prompt tokens, target tokens, torch threads; then three timed runs "
             "(python bench/attribution_quick.py)",
             f"{task.id} {step.generation.prompt_tokens} {len(step.generation.token_ids)} {torch.get_num_threads()}"]
    print(lines[-1], flush=True)
    attribute_step(trace, 2, target="action", model=lm)  # warm-up
    runs = []
    for _ in range(3):
        r = attribute_step(trace, 2, target="action", model=lm)
        runs.append({"segments": len(r.features), "forward_passes": r.forward_passes, "seconds": r.seconds})
        lines.append(f"{len(r.features)} segments, {r.forward_passes} passes, {r.seconds:.2f} s")
        print(lines[-1], flush=True)
    write_report("attribution_quiet", {"task": task.id, "step": 2, "target": "action",
                                       "prompt_tokens": step.generation.prompt_tokens, "target_tokens": len(step.generation.token_ids),
                                       "threads": torch.get_num_threads(), "runs": runs}, lines, echo=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
