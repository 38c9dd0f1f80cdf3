"""Benchmark: this project's training loop against Hugging Face's Trainer, same model, data, batch and length.

Both fine-tune the embedded SmolLM2-135M-Instruct with the same LoRA (r 16, alpha 32, all
projections), AdamW, learning rate and seed, on the same demo-world trajectories rendered by
``workbench.finetune.build_example`` (react-tuned prompt), with the loss on thought and action tokens
only, for the same number of optimisation steps of ``--batch`` trajectories each:

- Trainer: ``per_device_train_batch_size=--batch``, ``DataCollatorForSeq2Seq`` (pads each batch to its
  longest sequence, labels -100 where not trained), logits for every position;
- ours: the same trajectories packed into rows with no padding (``batch_tokens`` = the batch's mean
  token count), logits only where a trained token is predicted.

Reports, for each: real (non-padding) tokens per second over the timed steps (the first step is a
warm-up and not timed), padded tokens processed, and the peak resident memory of the process during
its phase (sampled every 50 ms). When CUDA is present it also reports GPU tokens/s and model FLOPs
utilisation (6 * parameters * tokens / time / peak bf16 FLOPS of the device).

    python bench/finetune.py [--steps 6] [--batch 4] [--examples 64] [--out bench/results/finetune.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import torch

from workbench.finetune import FineTuneConfig, build_examples, load_trajectories
from workbench.finetune.loop import train
from workbench.models import load_model

sys.path.append(str(Path(__file__).resolve().parent))  # bench/_report.py, also when a test loads this file by path
from _report import result_path, write_report  # noqa: E402


class PeakRSS:
    """Peak resident memory of this process while the block runs (sampled)."""

    def __enter__(self):
        self.peak, self._stop = 0, threading.Event()
        proc = psutil.Process(os.getpid())

        def sample():
            while not self._stop.is_set():
                self.peak = max(self.peak, proc.memory_info().rss)
                time.sleep(0.05)
        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def lora_targets() -> list[str]:
    return ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def run_trainer(examples, args, device: str) -> dict:
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

    lm = load_model(None, device=device, dtype=torch.float32, cache=False)
    model = get_peft_model(lm.model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=lora_targets(),
                                                task_type="CAUSAL_LM"))
    data = [{"input_ids": e.ids, "attention_mask": [1] * len(e), "labels": [t if k else -100 for t, k in
                                                                          zip(e.ids, e.kinds)]} for e in examples]
    base = DataCollatorForSeq2Seq(lm.tokenizer, padding=True, label_pad_token_id=-100)
    counts = {"real": 0, "padded": 0, "batches": 0}

    def collate(features):
        batch = base(features)
        if counts["batches"] >= 1:  # the warm-up batch is not timed
            counts["real"] += int(batch["attention_mask"].sum())
            counts["padded"] += int(batch["attention_mask"].numel())
        counts["batches"] += 1
        return batch

    marks: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, *a, **k):
            marks.append(time.perf_counter())

    targs = TrainingArguments(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=args.batch,
                              max_steps=args.steps + 1, learning_rate=2e-4, weight_decay=0.01, lr_scheduler_type="cosine",
                              warmup_steps=0, logging_steps=1000, save_strategy="no", report_to=[], seed=0,
                              use_cpu=device == "cpu", bf16=device != "cpu", dataloader_num_workers=0,
                              remove_unused_columns=False, disable_tqdm=True)
    trainer = Trainer(model=model, args=targs, train_dataset=data, data_collator=collate, callbacks=[Clock()])
    with PeakRSS() as mem:
        trainer.train()
    seconds = marks[-1] - marks[0]
    return {"seconds": seconds, "real_tokens": counts["real"], "processed_tokens": counts["padded"],
            "tokens_per_s": counts["real"] / seconds, "peak_rss_gb": mem.peak / 2**30,
            "padding_share": 1 - counts["real"] / max(1, counts["padded"])}


def run_ours(examples, args, device: str, tmp: str) -> dict:
    mean_len = sum(len(e) for e in examples) / len(examples)
    cfg = FineTuneConfig(base_model="embedded", data=args.data_file, eval_data="", probe="", steps=args.steps + 1,
                         batch_tokens=int(mean_len * args.batch), max_length=max(len(e) for e in examples),
                         learning_rate=2e-4, warmup_steps=0, checkpoint_interval=0, lora_targets=lora_targets(),
                         prompt="react-tuned", output_dir=tmp, device=device, seed=0)
    marks: list[tuple[int, float, float]] = []

    def on_metric(step, metrics):
        if "tokens_per_s" in metrics:
            marks.append((step, time.perf_counter(), metrics["tokens_per_s"]))

    with PeakRSS() as mem:
        result = train(cfg, on_metric=on_metric, log=lambda _: None, resume=False)
    # tokens of the timed steps: the per-step rates times the per-step durations, after the warm-up step
    timed = marks[1:]
    tokens = sum(rate * (t - prev[1]) for (_, t, rate), prev in zip(timed, marks))
    seconds = marks[-1][1] - marks[0][1]
    return {"seconds": seconds, "real_tokens": tokens, "processed_tokens": tokens, "tokens_per_s": tokens / seconds,
            "peak_rss_gb": mem.peak / 2**30, "padding_share": 0.0, "steps": result.steps}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=6, help="timed optimisation steps (one more runs as warm-up)")
    ap.add_argument("--batch", type=int, default=4, help="trajectories per step")
    ap.add_argument("--examples", type=int, default=64)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default=str(result_path("finetune")))
    args = ap.parse_args(argv)
    tmp = tempfile.mkdtemp()
    recs = load_trajectories("demo:train", limit=args.examples)
    args.data_file = str(Path(tmp) / "data.jsonl")
    Path(args.data_file).write_text("".join(json.dumps(r.to_dict()) + "\n" for r in recs))
    lm = load_model()
    examples, _ = build_examples(lm, recs, 1024, prompt="react-tuned")
    print(f"{len(examples)} trajectories, mean {sum(map(len, examples)) / len(examples):.0f} tokens; "
          f"{args.steps} timed steps of {args.batch}; device {args.device}, {torch.get_num_threads()} threads", flush=True)
    hf = run_trainer(examples, args, args.device)
    print(f"HF Trainer: {hf['tokens_per_s']:.1f} tokens/s, padding {hf['padding_share']:.1%}, "
          f"peak RSS {hf['peak_rss_gb']:.2f} GB", flush=True)
    ours = run_ours(examples, args, args.device, str(Path(tmp) / "ours"))
    print(f"ours: {ours['tokens_per_s']:.1f} tokens/s, peak RSS {ours['peak_rss_gb']:.2f} GB", flush=True)
    summary = {"device": args.device, "threads": torch.get_num_threads(), "machine": platform.machine(),
               "steps": args.steps, "batch": args.batch, "trainer": hf, "ours": ours,
               "speedup": ours["tokens_per_s"] / hf["tokens_per_s"]}
    if args.device.startswith("cuda"):
        n_params = lm.n_parameters
        peak = float(os.environ.get("PEAK_BF16_FLOPS", "989e12"))  # H100/H200 dense bf16
        for r in (hf, ours):
            r["mfu"] = 6 * n_params * r["tokens_per_s"] / peak
    write_report(args.out, summary, [
        "| | HF Trainer | ours |", "|---|---|---|",
        f"| tokens/s | {hf['tokens_per_s']:.1f} | {ours['tokens_per_s']:.1f} (**{summary['speedup']:.2f}x**) |",
        f"| padding processed | {hf['padding_share']:.1%} | 0% |",
        f"| peak RSS | {hf['peak_rss_gb']:.2f} GB | {ours['peak_rss_gb']:.2f} GB |",
    ])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
