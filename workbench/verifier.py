"""The answer verifier at inference: does an observation support a candidate answer?

A verifier is a sequence classifier over (observation, answer) pairs trained by
``workbench.finetune.verifier.train_verifier``; the agent scores each finish against the run's
observations with it and, once per run, refuses an answer none supports (``AgentConfig.verifier``).
Loading and scoring live here, beside the agent; training stays in finetune/.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Sequence

from .errors import ConfigError

__all__ = ["Verifier", "verify_finish", "unsupported_message", "KIND"]

KIND = "workbench-verifier"  # workbench.json "kind" of a saved verifier folder


class Verifier:
    """A trained verifier: ``score(observation, answer)`` is the probability the observation supports it.

        >>> v = Verifier.load("jobs/ft-.../verifier")                       # doctest: +SKIP
        >>> v.score_many(["Its founder was Tain Dehusov.", "1924"], "Tain Dehusov")   # doctest: +SKIP
        [0.97, 0.02]
    """

    _lock = threading.Lock()
    _cache: dict[str, "Verifier"] = {}

    def __init__(self, model: Any, tokenizer: Any, max_length: int = 256, device: Any = None,
                 meta: dict[str, Any] | None = None) -> None:
        import torch

        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.meta = meta or {}

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> "Verifier":
        """Load a folder written by ``train_verifier`` (its ``adapter_dir``)."""
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        folder = Path(path).expanduser()
        info_path = folder / "workbench.json"
        try:
            info = json.loads(info_path.read_text())
        except (OSError, ValueError) as err:
            raise ConfigError(f"No verifier at {folder}: {err}. Pass the adapter_dir of a verifier fine-tune "
                              "(FineTuneConfig(task='verifier'); its output_dir/verifier).") from err
        if info.get("kind") != KIND:
            raise ConfigError(f"{folder} holds a {info.get('kind')!r}, not a verifier; pass the output_dir/verifier "
                              "folder of a fine-tune with task='verifier'.")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = AutoModelForSequenceClassification.from_pretrained(str(folder), dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        return cls(model, tokenizer, int(info.get("max_length", 256)), device, info)

    @classmethod
    def shared(cls, path: str | Path) -> "Verifier":
        """One loaded verifier per folder and process (agents built per request reuse it)."""
        key = str(Path(path).expanduser().resolve())
        with cls._lock:
            if key not in cls._cache:
                cls._cache[key] = cls.load(key)
            return cls._cache[key]

    def score_many(self, observations: Sequence[str], answers: Sequence[str] | str,
                   batch_size: int = 32) -> list[float]:
        """P(supported) of each (observation, answer) pair; one answer string is paired with every observation."""
        import torch

        answers = [answers] * len(observations) if isinstance(answers, str) else list(answers)
        if len(answers) != len(observations):
            raise ValueError(f"{len(observations)} observations but {len(answers)} answers; pass one answer per "
                             "observation, or a single answer string.")
        scores: list[float] = []
        with torch.inference_mode():
            for i in range(0, len(observations), batch_size):
                batch = self.tokenizer(list(observations[i:i + batch_size]), answers[i:i + batch_size], padding=True,
                                       truncation="longest_first", max_length=self.max_length,
                                       return_tensors="pt").to(self.device)
                logits = self.model(**batch).logits.float()  # (batch, 2)
                scores += logits.softmax(-1)[:, 1].tolist()
        return scores

    def score(self, observation: str, answer: str) -> float:
        """P(the observation supports the answer)."""
        return self.score_many([observation], [answer])[0]


def unsupported_message(answer: str, score: float, threshold: float, n_observations: int = 1) -> str:
    """The observation of a refused finish: what the model reads next."""
    if not n_observations:
        return (f"The answer '{answer}' is not supported: no tool has returned an observation yet. Find evidence "
                "for an answer, then finish.")
    return (f"The answer '{answer}' is not supported by the observations so far (verifier score {score:.2f} < "
            f"{threshold:.2f}). Find evidence for an answer, then finish.")


def verify_finish(step: Any, observations: Sequence[str], verifier: Any, threshold: float, may_refuse: bool) -> bool:
    """Score a finishing step's answer against the run's observations; refuse the finish when none supports it.

    Records the best score on ``step.verifier_score`` (0 when the run has no observation yet: no
    evidence supports anything). When it is below ``threshold`` and
    ``may_refuse``, the step no longer ends the run: its answer is cleared and its observation
    says why. Returns whether the finish was refused.
    """
    score = max(verifier.score_many(list(observations), step.answer)) if observations else 0.0
    step.verifier_score = float(score)
    if score >= threshold or not may_refuse:
        return False
    step.observation = unsupported_message(step.answer, score, threshold, len(observations))
    step.answer, step.run_end = None, ""
    return True
