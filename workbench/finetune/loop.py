"""The training loop: LoRA or full fine-tuning of a causal LM on packed ReAct trajectories.

The loss has two parts, reasoning (thought tokens) and action (action tokens), each a mean over
its tokens, combined as ``reasoning_weight * reasoning + action_weight * action``; prompt and
observation tokens are never trained. AdamW with decoupled weight decay (none on norms and
biases), linear warm-up then cosine decay. Runs in the calling process on the GPU (bf16 autocast)
when there is one, else the CPU; under ``accelerate launch`` each process trains on its share of
the packed batches and gradients are averaged (DDP; FSDP / DeepSpeed from the accelerate config).

    >>> result = train(FineTuneConfig(base_model="tiny", steps=2), on_metric=print)   # doctest: +SKIP
    >>> result.adapter_dir                                                            # doctest: +SKIP
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..deps import require
from ..errors import ConfigError, WorkbenchError
from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint, write_model_folder
from .config import FineTuneConfig
from .data import Batch, build_examples, load_trajectories, pack

__all__ = ["train", "TrainResult", "TrainingError", "Cancelled", "batch_loss", "save_adapter", "default_output_dir",
           "EpochCursor"]

MetricFn = Callable[[int, dict[str, float]], None]


class TrainingError(WorkbenchError):
    """A fine-tune that cannot go on (a NaN loss, no usable data); the message says what to change."""


class Cancelled(Exception):
    """Raised inside the loop when ``should_stop`` says so; the job ends as cancelled."""


@dataclass
class TrainResult:
    """What a finished fine-tune produced."""

    output_dir: str
    adapter_dir: str
    steps: int
    seconds: float
    tokens: int  # tokens processed (packed, so every one is real)
    trained_tokens: int  # of which thought and action tokens, which carry the loss
    final: dict[str, float] = field(default_factory=dict)  # last train / eval losses and probe success
    dropped: int = 0  # trajectories longer than max_length


class EpochCursor:
    """Batches epoch after epoch; (epoch, position) is all a checkpoint needs to continue in the same order.

    ``make(epoch)`` returns that epoch's batches (shuffled by a seed derived from the epoch)."""

    def __init__(self, make: Callable[[int], list], epoch: int = 0, position: int = 0) -> None:
        self.make, self.epoch, self.position = make, epoch, position
        self.batches = make(epoch)

    def next(self) -> Any:
        if self.position >= len(self.batches):
            self.epoch, self.position = self.epoch + 1, 0
            self.batches = self.make(self.epoch)
        item = self.batches[self.position]
        self.position += 1
        return item

    @property
    def progress(self) -> float:
        """Epochs done, fractional."""
        return self.epoch + self.position / max(1, len(self.batches))


def default_output_dir(job_id: str = "") -> Path:
    """$WORKBENCH_HOME/jobs/ID, else jobs/ID beside the run store's default place (the user data folder)."""
    from ..store.runs import default_store_path

    return default_store_path().parent / "jobs" / (job_id or time.strftime("ft-%Y%m%d-%H%M%S"))


def _lr_lambda(cfg: FineTuneConfig) -> Callable[[int], float]:
    def f(step: int) -> float:
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return f


def batch_loss(model: Any, batch: Batch, device: Any, cfg: FineTuneConfig) -> tuple[Any, dict[str, float]]:
    """The weighted loss of one packed batch and its parts (floats) for logging.

    Logits are computed only where a trained token is predicted (``logits_to_keep``): the vocabulary
    projection of prompt and observation positions would be thrown away, so it is never done."""
    import torch
    import torch.nn.functional as F

    ids = torch.tensor([batch.input_ids], device=device)  # (1, T)
    pos = torch.tensor([batch.position_ids], device=device)  # (1, T): restarts at each example
    kinds_all = torch.tensor(batch.kinds, device=device)  # (T,) kind of each token as a target
    targets = torch.nonzero(kinds_all > 0).squeeze(1)  # (N,) positions of trained tokens (never 0)
    keep = targets - 1  # (N,) the positions whose logits predict them
    logits = model(input_ids=ids, position_ids=pos, use_cache=False, logits_to_keep=keep).logits[0]  # (N, vocab)
    nll = F.cross_entropy(logits.float(), ids[0, targets], reduction="none")  # (N,)
    kinds = kinds_all[targets]  # (N,)
    parts, total = {}, logits.new_zeros((), dtype=torch.float32)
    for kind, name, weight in ((1, "reasoning", cfg.reasoning_weight), (2, "action", cfg.action_weight)):
        mask = kinds == kind
        n = int(mask.sum())
        part = nll[mask].mean() if n else nll.new_zeros(())
        parts[f"loss_{name}"] = float(part.detach())
        parts[f"n_{name}"] = n
        if n and weight:
            total = total + weight * part
    parts["loss"] = float(total.detach())
    return total, parts


def _prepare_model(cfg: FineTuneConfig, lm: Any):
    """The model to train (a peft LoRA wrapper, or the model itself) in train mode."""
    model = lm.model
    if cfg.method == "lora":
        peft = require("peft", "LoRA fine-tuning")
        LoraConfig, get_peft_model = peft.LoraConfig, peft.get_peft_model

        present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
        targets = [t for t in cfg.lora_targets if t in present]
        if not targets:
            raise ConfigError(f"FineTuneConfig.lora_targets {cfg.lora_targets} names no module of this model. "
                              f"Linear layers it has: {', '.join(sorted(p for p in present if 'proj' in p)) or 'none'}.")
        lcfg = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                          target_modules=targets, task_type="CAUSAL_LM")
        model = get_peft_model(model, lcfg)
    model.train()
    return model


def _init_from(model: Any, cfg: FineTuneConfig) -> None:
    """Load an earlier fine-tune's LoRA weights into the fresh adapter (continual learning)."""
    folder = Path(cfg.init_from).expanduser()
    if cfg.method != "lora":
        raise ConfigError("FineTuneConfig.init_from works with method='lora'; for a full fine-tune pass the earlier "
                          "result folder as base_model.")
    if not (folder / "adapter_config.json").is_file():
        raise ConfigError(f"FineTuneConfig.init_from = {cfg.init_from!r}: no adapter_config.json there; pass the "
                          "adapter folder of an earlier fine-tune (its output_dir/adapter).")
    from peft import set_peft_model_state_dict
    from peft.utils import load_peft_weights

    set_peft_model_state_dict(model, load_peft_weights(str(folder), device="cpu"))


def _optimizer(model: Any, cfg: FineTuneConfig):
    import torch

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 and "norm" not in name.lower() else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.learning_rate, betas=(0.9, 0.999), eps=1e-8)


def train(cfg: FineTuneConfig, lm: Any = None, on_metric: MetricFn | None = None,
          should_stop: Callable[[], bool] | None = None, resume: bool = True, log: Callable[[str], None] = print,
          progress: bool = False) -> TrainResult:
    """Fine-tune ``cfg.base_model`` (or the given LoadedModel ``lm``, trained in place) as ``cfg`` says.

    ``on_metric(step, {name: value})`` receives every metric as it is measured; ``should_stop()``
    is asked before each optimisation step (cancel takes effect within one step); with ``resume``
    a checkpoint in the output folder is continued from.
    """
    import torch
    from accelerate import Accelerator

    cfg.validate()
    if cfg.task != "agent":
        raise ConfigError("train() fine-tunes the agent's language model; for task='verifier' use "
                          "workbench.finetune.verifier.train_verifier.")
    emit = on_metric or (lambda step, metrics: None)
    cpu = cfg.device == "cpu" or not torch.cuda.is_available()
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"FineTuneConfig.device = {cfg.device!r}, but no CUDA device is present; use auto or cpu.")
    acc = Accelerator(cpu=cpu, mixed_precision="no" if cpu else "bf16")
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.output_dir or default_output_dir())
    out.mkdir(parents=True, exist_ok=True)

    if lm is None:
        from ..models import load_model

        lm = load_model(cfg.base_model, device="cpu", dtype=torch.float32, cache=False)
    log(f"base model {lm.name} ({lm.n_parameters / 1e6:.1f}M parameters), device {acc.device}, "
        f"{acc.num_processes} process(es)")
    train_recs = load_trajectories(cfg.data, limit=cfg.max_train_examples)
    examples, dropped = build_examples(lm, train_recs, cfg.max_length, prompt=cfg.prompt, n_examples=cfg.n_examples)
    replay = []
    if cfg.replay_fraction > 0:
        replay, _ = build_examples(lm, load_trajectories(cfg.replay_data), cfg.max_length, prompt=cfg.prompt,
                                   n_examples=cfg.n_examples)
    if not examples:
        raise TrainingError(f"No trajectory of {cfg.data} fits max_length={cfg.max_length} tokens ({dropped} dropped); "
                            "raise max_length.")
    eval_examples = []
    if cfg.eval_data:
        eval_examples, _ = build_examples(lm, load_trajectories(cfg.eval_data, limit=64), cfg.max_length,
                                          prompt=cfg.prompt, n_examples=cfg.n_examples)
    log(f"{len(examples)} training trajectories ({dropped} longer than {cfg.max_length} tokens dropped), "
        f"{sum(len(e) for e in examples)} tokens; {len(eval_examples)} for the evaluation loss")

    model = _prepare_model(cfg, lm)
    if cfg.init_from:
        _init_from(model, cfg)
        log(f"started from the weights of {cfg.init_from}")
    optimizer = _optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg))
    model, optimizer = acc.prepare(model, optimizer)
    step, epoch, position = 0, 0, 0
    ckpt = latest_checkpoint(out) if resume else None
    if ckpt is not None:
        state = load_checkpoint(ckpt, acc.unwrap_model(model), cfg.method, optimizer, scheduler)
        step, epoch, position = state["step"], state["epoch"], state["position"]
        log(f"resumed from {ckpt} at step {step}")

    def epoch_batches(e: int) -> list[Batch]:
        pool = list(examples)
        if replay:
            rng = random.Random(cfg.seed * 1000 + e)
            n_replay = int(round(len(pool) * cfg.replay_fraction / (1 - cfg.replay_fraction)))
            pool += [replay[rng.randrange(len(replay))] for _ in range(n_replay)]
        batches = pack(pool, cfg.batch_tokens, seed=cfg.seed * 1000 + e)
        return batches[acc.process_index::acc.num_processes]

    cursor = EpochCursor(epoch_batches, epoch, position)
    t_start = time.perf_counter()
    tokens = trained = 0
    window_tokens, window_t = 0, time.perf_counter()
    last: dict[str, float] = {}
    bar = None
    if progress and acc.is_main_process:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.steps, initial=step, desc="fine-tune", unit="step")
    try:
        while step < cfg.steps:
            if should_stop is not None and should_stop():
                raise Cancelled(f"cancelled before step {step + 1}")
            sums: dict[str, float] = {}
            for _ in range(cfg.grad_accum):
                batch = cursor.next()
                with acc.autocast():
                    loss, parts = batch_loss(model, batch, acc.device, cfg)
                if not math.isfinite(parts["loss"]):
                    raise TrainingError(
                        f"The loss became {parts['loss']} at step {step + 1} (batch of {batch.sources[:3]}...). "
                        f"Lower learning_rate (now {cfg.learning_rate}), keep max_grad_norm > 0, or check the data; "
                        "the last checkpoint is kept.")
                acc.backward(loss / cfg.grad_accum)
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + v / (1 if k.startswith("n_") else cfg.grad_accum)
                tokens += batch.n_tokens
                window_tokens += batch.n_tokens
                trained += parts["n_reasoning"] + parts["n_action"]
            if cfg.max_grad_norm:
                acc.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{sums['loss']:.3f}")
            if step % cfg.log_interval == 0 or step == cfg.steps:
                now = time.perf_counter()
                metrics = {"train_loss": sums["loss"], "train_loss_reasoning": sums["loss_reasoning"],
                           "train_loss_action": sums["loss_action"], "lr": scheduler.get_last_lr()[0],
                           "tokens_per_s": window_tokens * acc.num_processes / max(now - window_t, 1e-9),
                           "epoch": cursor.progress}
                window_tokens, window_t = 0, now
                last.update(metrics)
                if acc.is_main_process:
                    emit(step, metrics)
            t_extra = time.perf_counter()
            if eval_examples and acc.is_main_process and (
                    (cfg.eval_interval and step % cfg.eval_interval == 0) or step == cfg.steps):
                metrics = evaluate_loss(model, eval_examples, acc, cfg)
                last.update(metrics)
                emit(step, metrics)
            if cfg.probe and acc.is_main_process and (
                    (cfg.probe_interval and step % cfg.probe_interval == 0) or step == cfg.steps):
                metrics = probe(acc.unwrap_model(model), lm, cfg)
                last.update(metrics)
                emit(step, metrics)
            if acc.is_main_process and ((cfg.checkpoint_interval and step % cfg.checkpoint_interval == 0)
                                        or step == cfg.steps):
                save_checkpoint(out, acc.unwrap_model(model), cfg.method, optimizer, scheduler,
                                {"step": step, "epoch": cursor.epoch, "position": cursor.position,
                                 "config": cfg.to_dict()})
            acc.wait_for_everyone()
            window_t += time.perf_counter() - t_extra  # evaluation, probes and checkpoints are not training time
    finally:
        if bar is not None:
            bar.close()
    adapter_dir = ""
    if acc.is_main_process:
        adapter_dir = str(save_adapter(acc.unwrap_model(model), lm, cfg, out / "adapter", last))
    acc.wait_for_everyone()
    return TrainResult(output_dir=str(out), adapter_dir=adapter_dir, steps=step, seconds=time.perf_counter() - t_start,
                       tokens=tokens, trained_tokens=trained, final=last, dropped=dropped)


def evaluate_loss(model: Any, examples: list, acc: Any, cfg: FineTuneConfig) -> dict[str, float]:
    """Mean evaluation loss (and its two parts) over held-out trajectories, no gradients."""
    import torch

    was_training = model.training
    model.eval()
    sums = {"loss": 0.0, "loss_reasoning": 0.0, "loss_action": 0.0}
    batches = pack(examples, cfg.batch_tokens, shuffle=False)
    with torch.no_grad(), acc.autocast():
        for batch in batches:
            _, parts = batch_loss(model, batch, acc.device, cfg)
            for k in sums:
                sums[k] += parts[k] / len(batches)
    model.train(was_training)
    return {f"eval_{k}": v for k, v in sums.items()}


def probe(model: Any, lm: Any, cfg: FineTuneConfig) -> dict[str, float]:
    """The agent's success rate on a few held-out tasks, run with the model as it is now."""
    import torch

    from ..agent import Agent
    from ..batching import default_batch, parallel_map
    from ..datasets import load_suite
    from ..evaluation import exact_match
    from ..models import LoadedModel

    suite = load_suite(cfg.probe)  # spread over task types by Suite.limit, so every type is probed
    tasks = suite.limit(cfg.probe_size).tasks if cfg.probe_size else []
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # LoRA layers live inside it
    current = LoadedModel(model=inner, tokenizer=lm.tokenizer, name=f"{lm.name}+training", source="", device=device,
                          dtype=next(model.parameters()).dtype)

    def run(task: Any) -> Any:
        with torch.no_grad():
            agent = Agent(current, corpus=suite.corpus_for(task), prompt=cfg.prompt, n_examples=cfg.n_examples,
                          max_steps=6, share_prefix=False, lookahead=0)
            return agent.run(task.question)

    solved = steps = 0
    with torch.no_grad():
        for task, trace in zip(tasks, parallel_map(run, tasks, default_batch(current))):  # decoded together
            solved += exact_match(trace.answer, [task.answer, *task.aliases]) > 0
            steps += len(trace.steps)
    model.train(was_training)
    return {"probe_success": solved / max(1, len(tasks)), "probe_steps": steps / max(1, len(tasks))}


def save_adapter(model: Any, lm: Any, cfg: FineTuneConfig, folder: Path, final: dict[str, float]) -> Path:
    """The trained result as a folder ``load_model`` accepts: a peft adapter (or full weights) plus workbench.json."""
    def write_files(tmp: Path) -> None:
        model.save_pretrained(str(tmp))
        if cfg.method == "full":
            lm.tokenizer.save_pretrained(str(tmp))

    info = {"kind": "workbench-finetune", "method": cfg.method, "base_model": cfg.base_model,
            "agent_defaults": {"prompt": cfg.prompt, "n_examples": cfg.n_examples},
            "config": cfg.to_dict(), "final": final, "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    return write_model_folder(folder, write_files, info)

