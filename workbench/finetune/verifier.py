"""The answer verifier: the MiniLM encoder fine-tuned as a classifier of (observation, answer) pairs.

A BERT sequence classifier (``BertForSequenceClassification``, two labels: unsupported,
supported) reads ``[CLS] observation [SEP] answer [SEP]`` and says whether the observation
supports the answer. ``train_verifier`` fine-tunes it (every weight; the classification head is
new) on pairs from the demo world's gold trajectories, streaming the same curves as the agent
fine-tune through the job runner; ``Verifier`` loads the saved folder and scores pairs; with
``AgentConfig.verifier`` set, the agent refuses (once per run) a finish that no observation supports.

    >>> result = train_verifier(FineTuneConfig(task="verifier", base_model="minilm", steps=100))  # doctest: +SKIP
    >>> Verifier.load(result["adapter_dir"]).score("It was founded in 1937.", "1937")             # doctest: +SKIP
    0.98

Micro-batches hold pairs up to ``batch_tokens`` padded tokens; each pair is cut to ``max_length``
tokens (at most the encoder's 512 positions).
"""

from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError
from ..verifier import KIND, Verifier, unsupported_message, verify_finish
from .checkpoint import write_model_folder
from .config import FineTuneConfig
from .verifier_data import LABELS, Pair, classification_report, load_pairs

__all__ = ["train_verifier", "Verifier", "verify_finish", "tiny_verifier_model", "unsupported_message", "KIND"]
# Verifier, verify_finish and unsupported_message live beside the agent (workbench/verifier.py); re-exported here.

MetricFn = Callable[[int, dict[str, float]], None]


def _minilm_path() -> Path:
    from ..corpus import MiniLMEncoder

    try:
        return MiniLMEncoder.default_path()
    except Exception as err:
        raise ConfigError(f"The verifier starts from the MiniLM encoder: {err}") from err


def tiny_verifier_model(seed: int = 0, hidden: int = 32, layers: int = 2) -> tuple[Any, Any]:
    """A randomly initialised small BERT classifier and the MiniLM tokenizer, built in code (for tests)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(str(_minilm_path()))
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=hidden * 2, max_position_embeddings=512, num_labels=len(LABELS),
                        id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)},
                        pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    return BertForSequenceClassification(config), tokenizer


def _load_base(spec: str, seed: int) -> tuple[Any, Any]:
    """The classifier to train and its tokenizer: MiniLM (embedded / minilm), tiny[:N], or a folder / HF id."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if spec.startswith("tiny"):
        n = spec.partition(":")[2]
        return tiny_verifier_model(seed=int(n) if n.isdigit() else 0)
    path = str(_minilm_path()) if spec in ("", "embedded", "minilm") else spec
    torch.manual_seed(seed)  # the new classification head starts the same for the same seed
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
            label2id={n: i for i, n in enumerate(LABELS)}, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise ConfigError(f"FineTuneConfig.base_model = {spec!r} could not be loaded as a sequence classifier: {err}. "
                          "For the verifier use minilm (the embedded MiniLM encoder), tiny, a BERT-style folder, "
                          "or an earlier verifier's folder.") from err
    return model, tokenizer


def _device(cfg: FineTuneConfig):
    import torch

    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"FineTuneConfig.device = {cfg.device!r}, but no CUDA device is present; use auto or cpu.")
    if cfg.device == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda" if cfg.device == "auto" else cfg.device)


class _Encoded:
    """Pairs tokenized once (unpadded), batched by a padded-token budget."""

    def __init__(self, pairs: list[Pair], tokenizer: Any, max_length: int) -> None:
        enc = tokenizer([p.observation for p in pairs], [p.answer for p in pairs], truncation="longest_first",
                        max_length=max_length)
        self.rows = [{k: enc[k][i] for k in enc} for i in range(len(pairs))]
        self.labels = [p.label for p in pairs]
        self.tokenizer = tokenizer

    def batches(self, budget: int, order: list[int] | None = None) -> list[list[int]]:
        """Groups of indices whose padded size (n * longest) stays within ``budget`` tokens."""
        out: list[list[int]] = []
        group: list[int] = []
        longest = 0
        for i in order if order is not None else range(len(self.rows)):
            n = len(self.rows[i]["input_ids"])
            if group and (len(group) + 1) * max(longest, n) > budget:
                out.append(group)
                group, longest = [], 0
            group.append(i)
            longest = max(longest, n)
        if group:
            out.append(group)
        return out

    def collate(self, idx: list[int], device: Any) -> dict[str, Any]:
        import torch

        batch = self.tokenizer.pad([self.rows[i] for i in idx], return_tensors="pt")  # (batch, longest) each
        batch["labels"] = torch.tensor([self.labels[i] for i in idx])  # (batch,)
        return {k: v.to(device) for k, v in batch.items()}


def _evaluate(model: Any, data: _Encoded, budget: int, device: Any) -> dict[str, Any]:
    """Mean loss, accuracy, macro F1 and the per-class report over ``data``, no gradients."""
    import torch

    was_training = model.training
    model.eval()
    loss_sum, preds = 0.0, []
    with torch.no_grad(), _autocast(device):
        for idx in data.batches(budget):
            out = model(**data.collate(idx, device))
            loss_sum += float(out.loss) * len(idx)
            preds += out.logits.argmax(-1).tolist()  # logits: (batch, 2)
    model.train(was_training)
    report = classification_report(data.labels, preds)
    return {"eval_loss": loss_sum / max(1, len(preds)), "eval_accuracy": report["accuracy"],
            "eval_f1": report["macro avg"]["f1"], "report": report}


def _autocast(device: Any):
    import contextlib

    import torch

    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_verifier(cfg: FineTuneConfig, on_metric: MetricFn | None = None,
                   should_stop: Callable[[], bool] | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Fine-tune the verifier as ``cfg`` says; returns accuracy, the per-class report and the saved folder.

    ``on_metric(step, {...})`` gets train_loss, lr and examples_per_s every ``log_interval`` steps
    and eval_loss, eval_accuracy, eval_f1 (macro) every ``eval_interval`` steps and at the end;
    ``should_stop()`` is asked before each optimisation step (``Cancelled`` when it says so).
    """
    import torch

    from .loop import Cancelled, EpochCursor, TrainingError, _lr_lambda, _optimizer, default_output_dir

    cfg.validate()
    if cfg.task != "verifier":
        raise ConfigError(f"train_verifier needs FineTuneConfig.task = 'verifier', got {cfg.task!r}; the agent's "
                          "language model is fine-tuned by workbench.finetune.train.")
    if int(os.environ.get("RANK", "0") or 0) > 0:  # under accelerate launch: the verifier is small, rank 0 trains it
        log("the verifier trains in one process; this extra process has nothing to do")
        return {}
    emit = on_metric or (lambda step, metrics: None)
    t_start = time.perf_counter()
    device = _device(cfg)
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.output_dir or default_output_dir())
    out.mkdir(parents=True, exist_ok=True)

    model, tokenizer = _load_base(cfg.base_model, cfg.seed)
    model.to(device).train()
    max_length = min(cfg.max_length, int(getattr(model.config, "max_position_embeddings", 512)))
    eval_pairs = load_pairs(cfg.eval_data, seed=cfg.seed) if cfg.eval_data else []
    held_out = {(p.observation, p.answer) for p in eval_pairs}
    train_pairs = [p for p in load_pairs(cfg.data, seed=cfg.seed, limit=cfg.max_train_examples)
                   if (p.observation, p.answer) not in held_out]  # a pair seen in training says nothing on eval
    if not train_pairs:
        raise TrainingError(f"No verifier pairs from {cfg.data!r}; its tasks need gold trajectories whose observations "
                            "mention the answer, or a .jsonl of observation / answer / label.")
    n_params = sum(p.numel() for p in model.parameters())
    log(f"verifier from {cfg.base_model} ({n_params / 1e6:.1f}M parameters, every weight trained"
        f"{'; method=lora is not used for the verifier' if cfg.method == 'lora' else ''}), device {device}; "
        f"{len(train_pairs)} training pairs ({sum(p.label for p in train_pairs)} supported), {len(eval_pairs)} eval "
        f"pairs; pairs cut at {max_length} tokens, {cfg.batch_tokens} padded tokens per micro-batch")
    train_data = _Encoded(train_pairs, tokenizer, max_length)
    eval_set = _Encoded(eval_pairs, tokenizer, max_length) if eval_pairs else None

    optimizer = _optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg))

    def epoch_batches(e: int) -> list[list[int]]:
        order = list(range(len(train_data.rows)))
        random.Random(cfg.seed * 1000 + e).shuffle(order)
        return train_data.batches(cfg.batch_tokens, order)

    step = 0
    cursor = EpochCursor(epoch_batches)
    last: dict[str, float] = {}
    evaluation: dict[str, Any] = {}
    window_examples, window_t = 0, time.perf_counter()
    while step < cfg.steps:
        if should_stop is not None and should_stop():
            raise Cancelled(f"cancelled before step {step + 1}")
        loss_sum = 0.0
        for _ in range(cfg.grad_accum):
            idx = cursor.next()
            with _autocast(device):
                loss = model(**train_data.collate(idx, device)).loss
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                raise TrainingError(f"The verifier's loss became {loss_value} at step {step + 1}. Lower learning_rate "
                                    f"(now {cfg.learning_rate}; 2e-5 to 1e-4 suits MiniLM) and keep max_grad_norm > 0.")
            (loss / cfg.grad_accum).backward()
            loss_sum += loss_value / cfg.grad_accum
            window_examples += len(idx)
        if cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        if step % cfg.log_interval == 0 or step == cfg.steps:
            now = time.perf_counter()
            metrics = {"train_loss": loss_sum, "lr": scheduler.get_last_lr()[0],
                       "examples_per_s": window_examples / max(now - window_t, 1e-9),
                       "epoch": cursor.progress}
            window_examples, window_t = 0, now
            last.update(metrics)
            emit(step, metrics)
        if eval_set is not None and ((cfg.eval_interval and step % cfg.eval_interval == 0) or step == cfg.steps):
            t_eval = time.perf_counter()
            evaluation = _evaluate(model, eval_set, cfg.batch_tokens, device)
            metrics = {k: v for k, v in evaluation.items() if k != "report"}
            last.update(metrics)
            emit(step, metrics)
            log(f"step {step}: train loss {loss_sum:.4f}, eval loss {metrics['eval_loss']:.4f}, "
                f"accuracy {metrics['eval_accuracy']:.3f}, F1 {metrics['eval_f1']:.3f}")
            window_t += time.perf_counter() - t_eval  # evaluation is not training time
    if eval_set is None:  # nothing held out: report on the training pairs, and say so
        evaluation = _evaluate(model, train_data, cfg.batch_tokens, device)
    evaluated_on = cfg.eval_data if eval_set is not None else f"{cfg.data} (training pairs: no eval_data)"
    result = {"accuracy": evaluation["eval_accuracy"], "report": evaluation["report"], "evaluated_on": evaluated_on,
              "n_train": len(train_pairs), "n_eval": len(eval_pairs), "steps": step, "output_dir": str(out),
              "final": last}
    folder = _save(model, tokenizer, cfg, out / "verifier", max_length, result)
    result.update(adapter_dir=str(folder), seconds=time.perf_counter() - t_start)
    log(f"verifier saved to {folder}: accuracy {result['accuracy']:.3f} on {evaluated_on}")
    return result


def _save(model: Any, tokenizer: Any, cfg: FineTuneConfig, folder: Path, max_length: int,
          result: dict[str, Any]) -> Path:
    """Write the classifier, its tokenizer and workbench.json to ``folder`` atomically (write_model_folder)."""
    def write_files(tmp: Path) -> None:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))

    info = {"kind": KIND, "labels": list(LABELS), "base_model": cfg.base_model, "max_length": max_length,
            "threshold": 0.5, "accuracy": result["accuracy"], "report": result["report"],
            "evaluated_on": result["evaluated_on"], "config": cfg.to_dict(),
            "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    return write_model_folder(folder, write_files, info)
