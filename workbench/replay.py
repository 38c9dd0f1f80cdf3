"""Writing steps that a person (or a parent run) decided: the part of the agent loop that forks and pauses use.

A fork replays its parent up to a step and changes one thing there (interventions.py builds it); the
step-by-step mode lets a person replace an action before its tool runs, or an observation after. This
module writes those steps on the run's session so the model sees exactly what a normal run would show it:

- a replayed step feeds the parent's primer and its *generated ids* as they were (nothing is decoded or
  re-tokenized), then its observation; with the parent's keys / values kept (generation.RUN_CACHE) nothing
  before the edit is computed again;
- an edited thought is fed as text and the model writes the action after it;
- an edited action replaces the model's action tokens (the session is cut where they began);
- an edited observation is fed like any observation: as data, on one line, special tokens split;
- a token fork starts the step's generation with the parent's ids up to a position and another token there.

    >>> Edit("observation", "Varnholt was founded in 1523.").describe()
    {'part': 'observation', 'text': 'Varnholt was founded in 1523.'}
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .errors import InputError
from .parsing import ParsedStep, parse_step, react_stop
from .prompts import step_labels
from .steps import StepWriter, label_spans
from .types import Step, Trace

if TYPE_CHECKING:
    from .generation import Session
    from .tools.core import Toolbox

__all__ = ["Edit", "EditPart", "EDIT_PARTS", "Replay", "Gate", "replace_action", "one_line", "fork_meta"]

EditPart = Literal["none", "thought", "action", "observation", "token", "task"]
EDIT_PARTS: tuple[str, ...] = ("none", "thought", "action", "observation", "token", "task")
MAX_EDIT_CHARS = 4000


def one_line(text: Any, what: str = "text") -> str:
    """A person's text for the model: on one line, not empty, not too long, else an InputError saying so."""
    if not isinstance(text, str):
        raise InputError(f"The new {what} must be text, got {type(text).__name__}.")
    text = " ".join(text.split())
    if not text:
        raise InputError(f"The new {what} is empty. Type the {what} the model should see.")
    if len(text) > MAX_EDIT_CHARS:
        raise InputError(f"The new {what} has {len(text):,} characters; the limit is {MAX_EDIT_CHARS:,}. Shorten it.")
    return text


@dataclass
class Edit:
    """What a fork changes at its step: nothing, the thought, the action, the observation, one token or the task."""

    part: EditPart = "none"
    text: str = ""  # the new thought / action / observation / task
    position: int = -1  # part "token": index of the token in the step's generated ids
    token_id: int = -1  # part "token": the id chosen there instead

    def __post_init__(self) -> None:
        if self.part not in EDIT_PARTS:
            raise InputError(f"Unknown edit {self.part!r}. Available: {', '.join(EDIT_PARTS)}.")
        if self.part in ("thought", "action", "observation"):  # a task keeps its lines (agent.validate_task)
            self.text = one_line(self.text, self.part)

    def describe(self) -> dict[str, Any]:
        """The edit as stored on the fork (only the fields that say something)."""
        keep = {"part": self.part}
        if self.text:
            keep["text"] = self.text
        if self.part == "token":
            keep.update(position=self.position, token_id=self.token_id)
        return keep


class Gate(Protocol):
    """Where a person steps in (the step-by-step mode). Each may block; each returns new text or None to keep."""

    def action(self, step: Step) -> str | None: ...  # after the model wrote its action, before the tool runs

    def observation(self, step: Step) -> str | None: ...  # after the tool ran, before the model sees it


@dataclass
class Replay:
    """Run ``parent`` again up to step ``step`` (1-based) and change it there by ``edit``."""

    parent: Trace
    step: int
    edit: Edit

    def covers(self, index: int) -> bool:
        """Whether step ``index`` is written from the parent's record (or the edit) instead of generated freely."""
        return index < self.step or (index == self.step and self.edit.part != "none")

    def boundaries(self) -> list[int]:
        """Without an edit, where the parent's prefills began: the cache is cut back to one of these, so the rerun
        step is computed exactly as the parent's was. With an edit, none: the cache is cut at the edit itself."""
        if self.edit.part != "none":
            return []
        return sorted({0} | {s.generation.reused_tokens for s in self.parent.steps})

    def prepare(self, session: Session) -> bool:
        """Offer the parent's kept keys / values to the fork's session; False when they are gone (then the
        replayed ids are prefilled once, in one pass, and still not generated again)."""
        resume = getattr(session, "resume_from", None)
        return bool(resume and resume(self.parent.id, self.boundaries()))

    def write(self, index: int, writer: StepWriter, mode: str, style: str, tools: Toolbox) -> tuple[Step, ParsedStep, str]:
        """Step ``index``: the parent's step again, or the parent's step with the edit."""
        parent = self.parent.steps[index - 1]
        part = self.edit.part if index == self.step else "none"
        if part == "thought":
            return _write_thought(writer, index, mode, style, tools, self.edit.text)
        if part == "token":
            g = parent.generation
            j = self.edit.position
            forced = (g.token_ids[:j] + [self.edit.token_id], g.logprobs[:j] + [_alt_logprob(parent, j, self.edit.token_id)],
                      g.alternatives[: j + 1], g.entropy[: j + 1])
            step, parsed, text = writer.react(index, mode, style, tools, forced=forced)  # type: ignore[arg-type]
            step.edited = "token"
            return step, parsed, text
        step, parsed, text = _replayed(writer, parent, tools)
        if part == "action":
            return replace_action(writer, step, self.edit.text, style, tools)
        return step, parsed, text

    def observation(self, index: int) -> str | None:
        """The observation step ``index`` shows the model: the parent's before the fork, the edit at it, else None."""
        if index < self.step:
            return self.parent.steps[index - 1].observation
        if index == self.step and self.edit.part == "observation":
            return self.edit.text
        return None


def _alt_logprob(step: Step, position: int, token_id: int) -> float:
    for alt in step.generation.alternatives[position] if position < len(step.generation.alternatives) else []:
        if int(alt[1]) == token_id:
            return float(alt[2])
    return float("nan")  # a token outside the recorded top: its probability was not kept


def _replayed(writer: StepWriter, parent: Step, tools: Toolbox) -> tuple[Step, ParsedStep, str]:
    """Feed the parent step's primer and generated ids as they were; return a copy of the step, its parse, its text."""
    session = writer.session
    session.feed(parent.primer, "scaffold", "primer")
    segments = [replace(s) for s in session.segments]
    _feed_step(session, parent)
    step = copy.deepcopy(parent)
    step.prompt_segments = segments
    step.observation = step.error = step.answer = None  # the tool and the loop set them again
    step.error_kind, step.run_end = "", ""  # ``edited`` stays: a fork of a fork replays the person's text too
    text = parent.output
    if parent.edited == "action":  # parse the action the person wrote, not the text before it
        parsed = parse_step(parent.action_primer.lstrip("\n") + parent.action_completion, tools)
        parsed.thought = parent.thought
    elif parent.edited == "thought":
        parsed = parse_step(parent.action_primer.lstrip("\n") + parent.action_completion, tools)
        parsed.thought = parent.thought
    else:
        parsed = parse_step(text, tools)
    return step, parsed, text


def _feed(session: Session, ids: list[int], tokens: list[str], kind: str, label: str) -> None:
    if not ids:
        return
    if hasattr(session, "feed_ids"):
        session.feed_ids(ids, kind, label)  # type: ignore[attr-defined]
    else:  # a scripted session: its tokens are its text
        session.feed("".join(tokens), kind, label)  # type: ignore[arg-type]


def _feed_step(session: Session, step: Step) -> None:
    """The ids (and any text a person wrote) that ``step`` added after its primer, in order, labelled as before."""
    g, i = step.generation, step.index
    ids, toks, n = g.token_ids, g.tokens, len(g.token_ids)
    if step.edited == "thought":
        session.feed(step.completion, "thought", f"thought {i}")
    kind = "answer" if step.kind == "forced_finish" else "action"
    if step.gen_split >= 0:  # two generations with the agent's "Action:" between them
        _feed(session, ids[: step.gen_split], toks[: step.gen_split], "thought", f"thought {i}")
        session.feed(step.action_primer, "scaffold", "action primer")
        _feed(session, ids[step.gen_split :], toks[step.gen_split :], kind, f"{kind} {i}")
        return
    cut = step.target_spans.get("thought", [0, 0])[1] if kind == "action" else 0
    _feed(session, ids[:cut], toks[:cut], "thought", f"thought {i}")
    _feed(session, ids[cut:], toks[cut:], kind, f"{kind} {i}")
    if step.edited == "action":
        session.feed(step.action_primer + step.action_completion, "action", f"action {i}")


def _truncate(session: Session, n: int) -> None:
    if hasattr(session, "truncate"):
        session.truncate(n)  # type: ignore[attr-defined]
        return
    session.segments[:] = [s for s in session.segments if s.start < n]  # a scripted session: positions are words
    if hasattr(session, "n_tokens"):
        session.n_tokens = n  # type: ignore[attr-defined]


def replace_action(writer: StepWriter, step: Step, action: str, style: str, tools: Toolbox) -> tuple[Step, ParsedStep, str]:
    """Put a person's action in place of the model's in ``step``: the session is cut where the model's action
    tokens began and the new action is fed there. Returns the step, the parse of the new action and its text."""
    action = one_line(action, "action")
    g = step.generation
    n = len(g.token_ids)
    cut = step.gen_split if step.gen_split >= 0 else step.target_spans.get("action", [n, n])[0]
    _truncate(writer.session, g.prompt_tokens + cut)
    _, action_h, _ = step_labels(style, step.index)
    fed = f"\n{action_h} {action}"
    writer.session.feed(fed, "action", f"action {step.index}")
    if step.gen_split < 0:
        step.completion = "".join(g.tokens[:cut])
    step.action_primer, step.action_completion = f"\n{action_h} ", action
    step.generation = replace(g, token_ids=g.token_ids[:cut], tokens=g.tokens[:cut], logprobs=g.logprobs[:cut],
                              alternatives=g.alternatives[:cut], entropy=g.entropy[:cut], generated_tokens=cut)
    step.target_spans = {"thought": [0, cut]} if cut > 0 else {}
    step.gen_split, step.edited = -1, "action"
    parsed = parse_step(f"{action_h} {action}", tools)
    parsed.thought = step.thought
    step.action = parsed.action
    return step, parsed, fed.lstrip("\n")


def _write_thought(writer: StepWriter, index: int, mode: str, style: str, tools: Toolbox,
                   thought: str) -> tuple[Step, ParsedStep, str]:
    """A person's thought at step ``index``; the model writes the action after it."""
    if mode != "react":
        raise InputError(f"A {mode} run writes no thoughts; edit the action or the observation instead.")
    session = writer.session
    thought_h, action_h, _ = step_labels(style, index)
    session.feed(thought_h, "scaffold", "primer")
    segments = [replace(s) for s in session.segments]
    session.feed(f" {thought}", "thought", f"thought {index}")
    more, _ = writer.generate(f"\n{action_h}", react_stop, label="action primer")
    step = Step(index=index, kind="react", prompt_segments=segments, primer=thought_h, completion=f" {thought}",
                action_primer=more.primer, action_completion=more.completion, generation=more.generation, gen_split=0,
                t_total=more.t_total, edited="thought")
    label_spans(step, session.label_generated([("action", f"action {index}", len(more.completion))]),
                more.generation.prompt_tokens, 0)
    parsed = parse_step(more.primer.lstrip("\n") + more.completion, tools)  # only the model's action is parsed
    parsed.thought = step.thought = thought
    step.action = parsed.action
    return step, parsed, thought_h + step.completion + more.primer + more.completion


def fork_meta(parent: Trace, step: int, edit: Edit) -> dict[str, Any]:
    """What a fork records about itself in ``Trace.meta['fork']``."""
    return {"parent": parent.id, "step": step, "edit": edit.describe()}
