"""Data and metrics of the answer verifier: (observation, candidate answer, label) pairs and a report.

Pairs come from the demo world's gold trajectories. For each task, the last observation that
mentions the gold answer (or an alias) gives a positive pair with that answer, and a negative pair
with a plausible wrong answer: the answer of another task of the same subtype (else type) that the
observation does not mention. One positive and one negative per task, so the set is balanced; the
same seed gives the same pairs.

    >>> pairs = load_pairs("demo:dev", seed=0)                                       # doctest: +SKIP
    >>> sum(p.label for p in pairs) * 2 == len(pairs)                                # doctest: +SKIP
    True
    >>> classification_report([1, 0, 1], [1, 1, 1])["supported"]["precision"]
    0.6666666666666666
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import ConfigError
from ..readers import jsonl_records, read_text

__all__ = ["Pair", "LABELS", "build_pairs", "load_pairs", "classification_report", "mentions"]

LABELS = ("unsupported", "supported")  # class 0, class 1
_DIGIT_COMMA = re.compile(r"(?<=\d),(?=\d{3})")


@dataclass
class Pair:
    """One verifier example: does ``observation`` support ``answer``?"""

    observation: str
    answer: str
    label: int  # 1: the observation supports the answer, 0: it does not
    source: str = ""  # the task it was built from


def mentions(text: str, answer: str) -> bool:
    """Whether ``answer`` occurs in ``text`` as a whole word or phrase, ignoring case and digit commas.

    >>> mentions("It has a population of 2,315,000.", "2315000"), mentions("Founded in 1937.", "193")
    (True, False)
    """
    answer = answer.strip()
    if not answer:
        return False
    pattern = re.compile(rf"(?<!\w){re.escape(answer)}(?!\w)", re.IGNORECASE)
    return any(pattern.search(t) for t in (text, _DIGIT_COMMA.sub("", text)))


def _norm(answer: str) -> str:
    return _DIGIT_COMMA.sub("", " ".join(answer.lower().split()))


def _forms(task: Any) -> list[str]:
    return [f for f in [task.answer, *task.aliases] if f and f.strip()]


def build_pairs(tasks: Sequence[Any], seed: int = 0, limit: int = 0) -> list[Pair]:
    """Balanced positive / negative pairs from tasks with gold trajectories, deterministic in ``seed``.

    Tasks whose trajectory has no observation that mentions the answer give no pair. ``limit`` > 0
    keeps that many pairs (whole tasks first, so the set stays balanced to within one).
    """
    rng = random.Random(seed)
    by_group: dict[str, list[str]] = {}
    for t in tasks:  # the wrong answers a task can borrow: those of its subtype, else of its type
        for key in (f"sub:{(t.meta or {}).get('subtype', '')}", f"type:{t.type}"):
            by_group.setdefault(key, []).append(t.answer)
    order = list(tasks)
    rng.shuffle(order)
    pairs: list[Pair] = []
    seen: set[tuple[str, str]] = set()
    for t in order:
        forms = _forms(t)
        support = [s.observation for s in t.trajectory
                   if s.observation and any(mentions(s.observation, f) for f in forms)]
        if not support:
            continue
        obs = support[-1]  # the last evidence the gold agent saw before finishing
        wrong = None
        for key in (f"sub:{(t.meta or {}).get('subtype', '')}", f"type:{t.type}"):
            gold = {_norm(f) for f in forms}
            candidates = sorted({a for a in by_group.get(key, []) if _norm(a) not in gold and not mentions(obs, a)})
            if candidates:
                wrong = rng.choice(candidates)
                break
        if wrong is None or (obs, t.answer) in seen or (obs, wrong) in seen:
            continue
        seen.update({(obs, t.answer), (obs, wrong)})
        both = [Pair(obs, t.answer, 1, t.id), Pair(obs, wrong, 0, t.id)]
        rng.shuffle(both)
        pairs.extend(both)
        if limit and len(pairs) >= limit:
            return pairs[:limit]
    return pairs


def load_pairs(spec: str, seed: int = 0, limit: int = 0) -> list[Pair]:
    """Pairs from ``demo:SPLIT[:type,type]`` (the demo world) or a .jsonl file of {observation, answer, label}."""
    from ..world.registry import parse_world_spec, world_tasks

    spec = spec.strip()
    world = parse_world_spec(spec)
    if world is not None:  # demo:SPLIT[:types] or demo2:...
        name, split, types = world
        return build_pairs(world_tasks(name, split or "train", types=types), seed=seed, limit=limit)
    path = Path(spec).expanduser()
    if spec.endswith(".jsonl") and path.is_file():
        pairs = []
        text = read_text(path, error=ConfigError, allow_empty=True)
        for n, row in jsonl_records(path, text, error=ConfigError, where=lambda n: f"{path} line {n}"):
            try:
                pairs.append(Pair(str(row["observation"]), str(row["answer"]), int(bool(row["label"])),
                                  str(row.get("source", f"{path.name}:{n}"))))
            except (ValueError, KeyError, TypeError) as err:
                raise ConfigError(f"{path} line {n}: expected JSON with observation, answer and label (0 or 1); "
                                  f"{type(err).__name__}: {err}.") from err
        return pairs[:limit] if limit else pairs
    raise ConfigError(f"Verifier data {spec!r}: use demo:train, demo:dev or demo:test (optionally demo:SPLIT:type,...) "
                      "or the path of a .jsonl file with observation, answer and label fields.")


def classification_report(y_true: Iterable[int], y_pred: Iterable[int],
                          labels: Sequence[str] = LABELS) -> dict[str, Any]:
    """Accuracy and per-class precision / recall / F1 / support, plus their macro average.

    Class ``i`` is ``labels[i]``. A precision or recall with nothing to divide by is 0 (as
    scikit-learn's ``zero_division=0``).
    """
    y_true, y_pred = list(y_true), list(y_pred)
    if len(y_true) != len(y_pred):
        raise ValueError(f"{len(y_true)} true labels but {len(y_pred)} predictions; there must be one per example.")
    report: dict[str, Any] = {}
    for c, name in enumerate(labels):
        tp = sum(t == c and p == c for t, p in zip(y_true, y_pred))
        fp = sum(t != c and p == c for t, p in zip(y_true, y_pred))
        fn = sum(t == c and p != c for t, p in zip(y_true, y_pred))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        report[name] = {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn}
    report["macro avg"] = {k: sum(report[n][k] for n in labels) / len(labels) for k in ("precision", "recall", "f1")}
    report["macro avg"]["support"] = len(y_true)
    report["accuracy"] = sum(t == p for t, p in zip(y_true, y_pred)) / len(y_true) if y_true else 0.0
    return report
