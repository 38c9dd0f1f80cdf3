"""FineTuneConfig: every setting of one fine-tune, a flat dataclass that loads from TOML.

    >>> cfg = FineTuneConfig(steps=20, learning_rate=1e-4)
    >>> cfg.validate().method
    'lora'
    >>> FineTuneConfig.from_toml_text('steps = 5\\nmethod = "full"').steps
    5
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..readers import read_text, toml_data

__all__ = ["FineTuneConfig", "METHODS", "TASKS"]

METHODS = ("lora", "full")
TASKS = ("agent", "verifier")


@dataclass
class FineTuneConfig:
    """One fine-tune. Every field is recorded with the job and in the checkpoint."""

    task: str = "agent"  # agent: a causal LM on ReAct trajectories | verifier: the MiniLM answer checker
    base_model: str = "embedded"  # a load_model spec: embedded, a Hugging Face id or folder, tiny[:seed]
    data: str = "demo:train"  # trajectories: demo:train / demo2:train, hotpotqa:PATH, a .jsonl path, or store:RUN,RUN
    eval_data: str = "demo:dev"  # held-out trajectories for the evaluation loss ("" = none)
    probe: str = "demo:dev"  # tasks the agent runs every probe_interval steps ("" = none)
    probe_size: int = 10  # how many probe tasks (spread over task types)
    probe_interval: int = 0  # steps between probes (0 = only at the end)
    method: str = "lora"  # lora (peft adapter) | full (every weight)
    lora_r: int = 16  # LoRA rank
    lora_alpha: int = 32  # LoRA scale numerator (scale = alpha / r)
    lora_dropout: float = 0.05  # dropout on the LoRA input
    lora_targets: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj",
                                                             "gate_proj", "up_proj", "down_proj"])
    learning_rate: float = 2e-4  # peak AdamW learning rate
    warmup_steps: int = 10  # linear warm-up, then cosine decay to 10% of the peak
    steps: int = 200  # optimisation steps
    batch_tokens: int = 2048  # tokens per micro-batch (sequences are packed, no padding)
    grad_accum: int = 1  # micro-batches per optimisation step
    max_length: int = 1024  # longest sequence kept (longer trajectories are dropped, and counted)
    weight_decay: float = 0.01  # AdamW decoupled weight decay (not applied to norms and biases)
    max_grad_norm: float = 1.0  # gradient clipping (0 = off)
    seed: int = 0  # data order, LoRA init, dropout
    reasoning_weight: float = 1.0  # weight of the loss on thought tokens
    action_weight: float = 1.0  # weight of the loss on action tokens
    eval_interval: int = 50  # steps between evaluation losses (0 = only at the end)
    checkpoint_interval: int = 50  # steps between checkpoints (0 = only at the end)
    n_examples: int = 0  # few-shot examples in the training prompt (0: the tuned model runs zero-shot)
    prompt: str = "react-tuned"  # prompt preset or YAML file the trajectories are rendered with (and the tuned model runs with)
    device: str = "auto"  # auto (CUDA with bf16 when present, else CPU) | cpu | cuda | cuda:N
    output_dir: str = ""  # where checkpoints and the adapter go ("" = the jobs folder)
    max_train_examples: int = 0  # use at most this many trajectories (0 = all)
    init_from: str = ""  # start from the weights of an earlier fine-tune's adapter folder ("" = fresh LoRA)
    continual_data: str = ""  # continual learning: after data, train `steps` more on this family, report forgetting
    replay_data: str = ""  # trajectories mixed in from an earlier task family (continual: defaults to data)
    replay_fraction: float = 0.0  # share of each epoch drawn from replay_data
    log_interval: int = 1  # steps between train-loss points

    def validate(self) -> "FineTuneConfig":
        """Check every field; raise ConfigError naming the field, its value and the allowed range."""
        def need(ok: bool, name: str, what: str) -> None:
            if not ok:
                raise ConfigError(f"FineTuneConfig.{name} = {getattr(self, name)!r}: {what}.")

        need(self.task in TASKS, "task", f"choose one of {', '.join(TASKS)}")
        need(self.method in METHODS, "method", f"choose one of {', '.join(METHODS)}")
        need(isinstance(self.steps, int) and 1 <= self.steps <= 1_000_000, "steps", "must be an integer from 1 to 1000000")
        need(_finite(self.learning_rate) and 0 < self.learning_rate <= 1, "learning_rate", "must be in (0, 1]")
        need(_finite(self.weight_decay) and 0 <= self.weight_decay <= 1, "weight_decay", "must be in [0, 1]")
        need(_finite(self.max_grad_norm) and self.max_grad_norm >= 0, "max_grad_norm", "must be 0 (off) or positive")
        need(isinstance(self.batch_tokens, int) and 32 <= self.batch_tokens <= 1_048_576, "batch_tokens",
             "must be from 32 to 1048576 tokens")
        need(isinstance(self.grad_accum, int) and 1 <= self.grad_accum <= 1024, "grad_accum", "must be from 1 to 1024")
        need(isinstance(self.max_length, int) and 16 <= self.max_length <= 131_072, "max_length",
             "must be from 16 to 131072 tokens")
        need(self.max_length <= self.batch_tokens, "max_length",
             f"must not exceed batch_tokens ({self.batch_tokens}), or no sequence fits a micro-batch")
        need(isinstance(self.warmup_steps, int) and self.warmup_steps >= 0, "warmup_steps", "must be 0 or more")
        need(isinstance(self.lora_r, int) and 1 <= self.lora_r <= 1024, "lora_r", "must be from 1 to 1024")
        need(_finite(self.lora_alpha) and self.lora_alpha > 0, "lora_alpha", "must be positive")
        need(_finite(self.lora_dropout) and 0 <= self.lora_dropout < 1, "lora_dropout", "must be in [0, 1)")
        need(bool(self.lora_targets) and all(isinstance(t, str) and t for t in self.lora_targets), "lora_targets",
             "must name at least one module, e.g. ['q_proj', 'v_proj']")
        for name in ("reasoning_weight", "action_weight", "replay_fraction"):
            need(_finite(getattr(self, name)) and getattr(self, name) >= 0, name, "must be 0 or more")
        need(self.reasoning_weight + self.action_weight > 0, "action_weight",
             "reasoning_weight and action_weight cannot both be 0: nothing would be trained")
        need(self.replay_fraction < 1, "replay_fraction", "must be below 1")
        need(not self.replay_fraction or bool(self.replay_data or self.continual_data), "replay_data",
             "is needed when replay_fraction > 0 (the trajectories to replay)")
        for name in ("eval_interval", "checkpoint_interval", "probe_interval", "n_examples", "max_train_examples",
                     "probe_size"):
            need(isinstance(getattr(self, name), int) and getattr(self, name) >= 0, name, "must be 0 or a positive integer")
        need(isinstance(self.log_interval, int) and self.log_interval >= 1, "log_interval", "must be 1 or more")
        need(isinstance(self.seed, int), "seed", "must be an integer")
        need(self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda"), "device",
             "choose auto, cpu, cuda or cuda:N")
        return self

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FineTuneConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"Unknown fine-tune setting(s) {', '.join(unknown)}. Known: {', '.join(sorted(known))}.")
        try:
            return cls(**data).validate()
        except TypeError as err:
            raise ConfigError(f"Bad fine-tune config: {err}.") from err

    @classmethod
    def from_toml_text(cls, text: str, source: str = "The fine-tune config") -> "FineTuneConfig":
        """A config from TOML text; a syntax error names ``source`` (the file) and the line."""
        data = toml_data(text, source, error=ConfigError)
        if isinstance(data.get("finetune"), dict):  # a [finetune] table is accepted too
            data = data["finetune"]
        return cls.from_dict(data)

    @classmethod
    def from_toml(cls, path: str | Path) -> "FineTuneConfig":
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"No fine-tune config at {path}. Write one with `workbench finetune --write-config {path}`.")
        return cls.from_toml_text(read_text(path, error=ConfigError, allow_empty=True), source=str(path))

    def to_toml(self) -> str:
        lines = []
        for f in fields(self):
            value = getattr(self, f.name)
            lines.append(f"{f.name} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
