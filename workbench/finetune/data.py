"""Training data: trajectories in, token ids with a per-token mask out, packed without padding.

A trajectory is a question and its steps (thought, action, argument, observation), as in the
demo world's gold data. It is rendered *exactly* as the agent would see it at inference: the same
prompt (by default the react preset with no few-shot examples), the same chat template, the same
step headers, each piece tokenised as the agent's session tokenises it. Only the model's own
tokens are trained: thought tokens (kind 1) and action tokens (kind 2, with the observation header
that ends an action); the prompt and the observations are context only (kind 0).

    >>> recs = load_trajectories("demo:train")            # doctest: +SKIP
    >>> ex = build_example(lm, recs[0])                    # doctest: +SKIP
    >>> preview(ex, lm.tokenizer)[:3]                      # doctest: +SKIP
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ..errors import DatasetError
from ..readers import jsonl_records, read_text
from ..types import GoldStep, Trace

__all__ = ["Trajectory", "TrainExample", "Batch", "load_trajectories", "parse_trajectories", "traces_to_trajectories",
           "export_trajectories", "traces_from_store", "build_example", "build_examples", "preview", "preview_html",
           "pack", "KIND_NAMES", "MAX_JSONL_BYTES"]

KIND_NAMES = ("context", "thought", "action")  # per-token kinds: 0 not trained, 1 reasoning loss, 2 action loss
MAX_JSONL_BYTES = 200 * 1024 * 1024
_ACTIONS = {"search", "lookup", "calculate", "finish"}


@dataclass
class Trajectory:
    """A question and the steps a correct agent takes on it."""

    question: str
    steps: list[GoldStep]
    answer: str = ""
    id: str = ""
    type: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "question": self.question, "answer": self.answer, "type": self.type,
                "trajectory": [{"thought": s.thought, "action": s.action, "argument": s.argument,
                                "observation": s.observation} for s in self.steps]}


@dataclass
class TrainExample:
    """One trajectory as token ids with a kind per id (see KIND_NAMES)."""

    ids: list[int]
    kinds: list[int]
    source: str = ""  # the trajectory's id

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.kinds):
            raise ValueError(f"ids ({len(self.ids)}) and kinds ({len(self.kinds)}) must have the same length")

    def __len__(self) -> int:
        return len(self.ids)

    def count(self, kind: int) -> int:
        return sum(1 for k in self.kinds if k == kind)


@dataclass
class Batch:
    """Examples packed into one row: position ids restart at each example, so attention stays inside it."""

    input_ids: list[int]
    position_ids: list[int]
    kinds: list[int]  # kind of each *target*: kinds[t] is the kind of input_ids[t] (predicted from t-1)
    n_examples: int
    sources: list[str] = field(default_factory=list)

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)


# ---------------------------------------------------------------------- reading


def parse_trajectories(lines: Iterable[str], where: str = "trajectories") -> list[Trajectory]:
    """Trajectories from JSONL lines; a malformed line raises DatasetError naming the line and the field."""
    text = "\n".join(line.removesuffix("\n") for line in lines)  # lines from splitlines() or from a file
    at = lambda n: f"{where}, line {n}"  # noqa: E731
    out = [_trajectory(rec, at(n)) for n, rec in jsonl_records(where, text, error=DatasetError, where=at)]
    if not out:
        raise DatasetError(f"{where} holds no trajectories. Each line needs question and trajectory "
                           "(a list of {thought, action, argument, observation}).")
    return out


def _trajectory(rec: Any, where: str) -> Trajectory:
    if not isinstance(rec, dict):
        raise DatasetError(f"{where}: expected a JSON object with question and trajectory, got {type(rec).__name__}.")
    question = rec.get("question")
    if not isinstance(question, str) or not question.strip():
        raise DatasetError(f"{where}, field 'question': missing or empty; give the task text.")
    steps = rec.get("trajectory", rec.get("steps"))
    if not isinstance(steps, list) or not steps:
        raise DatasetError(f"{where}, field 'trajectory': missing or empty; give a list of steps, each with "
                           "thought, action, argument and observation.")
    parsed: list[GoldStep] = []
    for i, step in enumerate(steps):
        at = f"{where}, field 'trajectory[{i}]"
        if not isinstance(step, dict):
            raise DatasetError(f"{at}': expected an object with thought, action, argument, observation.")
        action = step.get("action")
        if not isinstance(action, str) or action.strip().lower() not in _ACTIONS:
            raise DatasetError(f"{at}.action': {action!r} is not a tool; use one of {', '.join(sorted(_ACTIONS))}.")
        for name in ("thought", "argument"):
            if not isinstance(step.get(name, ""), str):
                raise DatasetError(f"{at}.{name}': must be a string.")
        obs = step.get("observation")
        last = i == len(steps) - 1
        if action.strip().lower() != "finish" and not isinstance(obs, str):
            raise DatasetError(f"{at}.observation': a {action} step needs the observation the tool returned.")
        parsed.append(GoldStep(thought=step.get("thought", "") or "", action=action.strip().lower(),
                               argument=step.get("argument", "") or "", observation=obs if not last or obs else None))
    if parsed[-1].action != "finish":
        raise DatasetError(f"{where}, field 'trajectory': the last step must be finish[answer], so the model learns "
                           "to end; drop unfinished trajectories.")
    return Trajectory(question=question.strip(), steps=parsed, answer=str(rec.get("answer", parsed[-1].argument)),
                      id=str(rec.get("id", "")), type=str(rec.get("type", "")))


def load_trajectories(spec: str | Path, limit: int = 0, store: Any = None) -> list[Trajectory]:
    """Trajectories from ``demo:train`` / ``demo2:train`` / ``demo:test[:type]``, ``hotpotqa:PATH`` (gold
    trajectories built from a HotpotQA-format file's supporting facts), a JSONL file or ``store:RUN,RUN``."""
    from ..world.registry import parse_world_spec

    text = str(spec).strip()
    world = parse_world_spec(text)
    if world is not None:
        from ..world.registry import world_tasks

        name, split, types = world
        tasks = world_tasks(name, split or "train", types=types)
        recs = [Trajectory(question=t.question, steps=list(t.trajectory), answer=t.answer, id=t.id, type=t.type)
                for t in tasks if t.trajectory]
    elif text.startswith("hotpotqa:"):
        from ..hotpot_gold import hotpot_trajectories

        recs = [Trajectory(question=t.question, steps=list(t.trajectory), answer=t.answer, id=t.id, type=t.type)
                for t in hotpot_trajectories(text.removeprefix("hotpotqa:").strip(), limit=limit)]
    elif text.startswith("store:"):
        from ..store.runs import Store

        store = store or Store()
        traces = [store.get_trace(run_id.strip()) for run_id in text[6:].split(",") if run_id.strip()]
        recs = traces_to_trajectories(traces, strict=True)
    else:
        path = Path(text).expanduser()
        if not path.is_file():
            raise DatasetError(f"No training data at {path}. Pass demo:train, demo2:train, hotpotqa:PATH, a JSONL file "
                               "of trajectories, or store:RUN_ID[,RUN_ID...].")
        if path.stat().st_size > MAX_JSONL_BYTES:
            raise DatasetError(f"{path} is over {MAX_JSONL_BYTES // 2**20} MB; split it or pass fewer trajectories.")
        text = read_text(path, error=DatasetError, allow_empty=True)  # empty: parse_trajectories says what it needs
        recs = parse_trajectories(text.split("\n"), where=str(path))
    return recs[:limit] if limit else recs


def traces_to_trajectories(traces: Iterable[Trace], strict: bool = False) -> list[Trajectory]:
    """Traces from the store as trajectories: react runs that ended with finish[...] and no error step.

    ``strict``: a trace that cannot be used raises DatasetError saying why, instead of being skipped."""
    out: list[Trajectory] = []
    for trace in traces:
        why = _unusable(trace)
        if why:
            if strict:
                raise DatasetError(f"Run {trace.id} cannot be training data: {why}.")
            continue
        steps = [GoldStep(thought=(s.thought or "").strip(), action=s.action.name, argument=s.action.argument,
                          observation=s.observation if s.action.name != "finish" else None)
                 for s in trace.steps if s.action is not None]
        gold = trace.meta.get("gold") if isinstance(trace.meta, dict) else None
        out.append(Trajectory(question=trace.task, steps=steps, answer=str(gold or trace.answer or ""), id=trace.id,
                              type=str(trace.meta.get("type", "")) if isinstance(trace.meta, dict) else ""))
    return out


def _unusable(trace: Trace) -> str:
    if trace.mode != "react":
        return f"it is a {trace.mode} run; only react runs have thoughts and actions to learn"
    if not trace.steps or trace.steps[-1].action is None or trace.steps[-1].action.name != "finish":
        return "it did not end with finish[answer]"
    bad = [s.index for s in trace.steps if s.action is None or s.error or s.action.name not in _ACTIONS]
    if bad:
        return f"step(s) {bad} have no valid action or an error observation"
    return ""


def export_trajectories(traces_or_trajectories: Iterable[Trace | Trajectory], path: str | Path) -> int:
    """Write trajectories (or usable traces, converted) as training JSONL; returns how many were written."""
    items = list(traces_or_trajectories)
    recs = [t for t in items if isinstance(t, Trajectory)] + traces_to_trajectories(
        [t for t in items if isinstance(t, Trace)])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    tmp.replace(path)
    return len(recs)


def traces_from_store(store: Any, mode: str = "react", limit: int = 100_000) -> list[Trace]:
    """The store's runs of ``mode``, newest first, as traces to export (an unreadable row is skipped, never fatal).

    >>> export_trajectories(traces_from_store(store), "runs.jsonl")      # doctest: +SKIP
    """
    traces = []
    for row in store.list_runs(limit=limit, mode=mode):
        try:
            traces.append(store.get_trace(row.id))
        except Exception:  # a damaged row must not lose the others
            continue
    return traces


# ---------------------------------------------------------------------- tokenising


def build_example(lm: Any, traj: Trajectory, prompt: Any = None, n_examples: int = 0, agent: Any = None) -> TrainExample:
    """``traj`` as the exact token sequence the agent would hold after running it, with kinds per token."""
    from ..agent import Agent
    from ..generation import DecodeSession, encode_fed
    from ..prompts import format_action, step_labels

    agent = agent or Agent(lm, prompt=prompt, n_examples=n_examples, share_prefix=False)
    session = DecodeSession(lm)  # feeding only tokenises; no forward pass runs
    agent._open(session, traj.question)
    kinds = [0] * len(session.ids)
    style = "numbered" if agent.prompt.style == "numbered" else "plain"
    tok = lm.tokenizer

    def feed(text: str, kind: int) -> None:
        ids = encode_fed(tok, text)  # exactly as the agent's session tokenises what it feeds
        session.ids.extend(ids)
        kinds.extend([kind] * len(ids))

    for i, step in enumerate(traj.steps, 1):
        thought_h, action_h, obs_h = step_labels(style, i)
        call = f"{format_action(step.action, style)}[{step.argument}]"
        feed(thought_h, 0)
        thought = f" {step.thought.strip()}" if step.thought.strip() else ""
        completion = f"{thought}\n{action_h} {call}"
        ids = encode_fed(tok, completion)
        split = _char_to_token(tok, ids, len(thought))
        session.ids.extend(ids)
        kinds.extend([1] * split + [2] * (len(ids) - split))
        if step.action == "finish":
            break
        feed(f"\n{obs_h}", 2)  # the header ends the action: the model learns to stop there
        feed(" " + (step.observation or ""), 0)
        feed("\n", 0)
    return TrainExample(ids=list(session.ids), kinds=kinds, source=traj.id)


def _char_to_token(tok: Any, ids: list[int], n_chars: int) -> int:
    """How many of ``ids`` it takes to cover the first ``n_chars`` characters of their text."""
    if n_chars <= 0:
        return 0
    for i in range(1, len(ids) + 1):
        if len(tok.decode(ids[:i])) >= n_chars:
            return i
    return len(ids)


def build_examples(lm: Any, trajectories: list[Trajectory], max_length: int, prompt: Any = None,
                   n_examples: int = 0) -> tuple[list[TrainExample], int]:
    """Examples of the trajectories that fit ``max_length``; also returns how many were too long."""
    from ..agent import Agent

    agent = Agent(lm, prompt=prompt, n_examples=n_examples, share_prefix=False)
    out, dropped = [], 0
    for traj in trajectories:
        ex = build_example(lm, traj, agent=agent)
        if len(ex) > max_length:
            dropped += 1
            continue
        out.append(ex)
    return out, dropped


def preview(example: TrainExample, tokenizer: Any) -> list[tuple[str, str]]:
    """(token text, kind name) per token: exactly which tokens are trained and with which loss."""
    return [(tokenizer.decode([i]), KIND_NAMES[k]) for i, k in zip(example.ids, example.kinds)]


def preview_html(example: TrainExample, tokenizer: Any, max_tokens: int = 600) -> str:
    """The example as the model sees it, as HTML: trained tokens coloured by their loss (thought: reasoning loss,
    action: action loss), the context plain; the last ``max_tokens`` tokens are shown, all are counted."""
    import html

    tokens = preview(example, tokenizer)
    colours = {"thought": "#c7e9c0", "action": "#fdd0a2"}
    spans = "".join(f'<span class="wb-tok" title="{k}" style="background:{colours.get(k, "transparent")}">'
                    f'{html.escape(t)}</span>' for t, k in tokens[-max_tokens:])
    n = {k: sum(1 for _, kk in tokens if kk == k) for k in KIND_NAMES}
    shown = f" — showing the last {max_tokens}" if len(tokens) > max_tokens else ""
    return (f"<p>{len(tokens)} tokens: <b style='background:#c7e9c0'>{n['thought']} thought</b> (reasoning loss), "
            f"<b style='background:#fdd0a2'>{n['action']} action</b> (action loss), {n['context']} context (not "
            f"trained: prompt and observations){shown}</p><pre style='white-space:pre-wrap'>{spans}</pre>")


# ---------------------------------------------------------------------- packing


def pack(examples: list[TrainExample], batch_tokens: int, seed: int = 0, shuffle: bool = True) -> list[Batch]:
    """Pack examples into rows of at most ``batch_tokens`` tokens with no padding (first-fit decreasing
    within shuffled windows, so batches stay random but nearly full)."""
    order = list(range(len(examples)))
    if shuffle:
        random.Random(seed).shuffle(order)
    batches: list[Batch] = []
    window = 64
    for w in range(0, len(order), window):
        chunk = sorted(order[w:w + window], key=lambda i: -len(examples[i]))
        rows: list[list[int]] = []
        fill: list[int] = []
        for i in chunk:
            n = len(examples[i])
            for r, used in enumerate(fill):
                if used + n <= batch_tokens:
                    rows[r].append(i)
                    fill[r] += n
                    break
            else:
                rows.append([i])
                fill.append(n)
        for row in rows:
            ids, pos, kinds, srcs = [], [], [], []
            for i in row:
                ex = examples[i]
                ids += ex.ids
                pos += list(range(len(ex)))
                kinds += [0] + ex.kinds[1:]  # the first token of an example is never a target
                srcs.append(ex.source)
            batches.append(Batch(ids, pos, kinds, len(row), srcs))
    if shuffle:
        random.Random(seed + 1).shuffle(batches)
    return batches
