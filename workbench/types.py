"""The records every other module speaks: Segment, ToolCall, Step, Trace.

They are plain dataclasses that round-trip through JSON exactly, so a trace saved by one version
of the app can be reopened, compared and attributed later:

    >>> trace = Trace(task="What is 2 + 3?", mode="react")
    >>> Trace.from_json(trace.to_json()) == trace
    True
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:  # pandas is imported only when a table is asked for
    import pandas as pd

__all__ = ["Segment", "ToolCall", "StepGeneration", "Step", "Trace", "GoldStep", "Task", "SegmentKind", "StepKind",
           "GenerationStop", "RunEnd", "ErrorKind", "SEGMENT_KINDS", "STOP_REASONS", "TASK_TYPES", "FEVER_LABELS"]

# What a piece of the prompt is. Attribution groups scores by these kinds.
SegmentKind = Literal[
    "scaffold",  # template glue: chat markers, headers, "Question:", step primers
    "instruction",  # the system instruction
    "tools",  # the tool descriptions
    "example",  # one few-shot trajectory
    "task",  # the user's instruction / question
    "thought",  # a thought the model wrote at an earlier step
    "action",  # an action the model wrote at an earlier step
    "observation",  # what a tool returned
    "answer",  # an answer the model wrote (cot / direct modes)
]
SEGMENT_KINDS: tuple[SegmentKind, ...] = get_args(SegmentKind)

# Why a run ended (Trace.stop_reason, and Step.run_end on the run's last step).
RunEnd = Literal[
    "finished",  # the model called finish / wrote an answer
    "max_steps",  # the step budget ran out
    "repeated_action",  # the same action twice in a row: the agent forced a finish
    "context_full",  # the prompt reached the model's context length
    "no_answer",  # cot / direct: the model wrote no answer
    "cancelled",  # the caller stopped the run
    "error",  # something outside the model failed (recorded on the last step)
]
STOP_REASONS: tuple[RunEnd, ...] = get_args(RunEnd)

# What a step is.
StepKind = Literal[
    "react",  # Thought -> Action -> Observation
    "act",  # Action -> Observation, no thought
    "answer",  # cot / direct: one step that answers
    "forced_finish",  # after a repeated action: the agent primed finish[ and took the answer
    "halt",  # no generation: the run could not go on (context full, an internal error)
]

# Why one generation stopped.
GenerationStop = Literal[
    "stop_string",  # the stop function cut the text
    "eos",  # the model wrote an end-of-sequence id
    "max_new_tokens",  # the token budget (or the context) ran out
    "cancelled",  # the caller stopped it
    "script",  # a ScriptedModel's completion ran out
]

# What kind of failure the model caused in a step.
ErrorKind = Literal[
    "invalid_action",  # unreadable, unknown or empty action
    "tool",  # a tool failed
    "repeat",  # the same action again
]


@dataclass
class Segment:
    """A labelled piece of a prompt, with its token span in the model's input ids.

    The texts of a prompt's segments, joined, are the exact prompt. ``start`` and ``end`` index
    the token ids fed to the model (end exclusive); they are -1 when no tokenizer was involved.
    """

    kind: SegmentKind
    label: str  # human label, unique within a prompt: "example 2", "observation 3"
    text: str  # the exact text of this piece
    start: int = -1  # first token index in the prompt ids
    end: int = -1  # one past the last token index

    def __post_init__(self) -> None:
        if self.kind not in SEGMENT_KINDS:
            raise ValueError(f"Unknown segment kind {self.kind!r}. Available: {', '.join(SEGMENT_KINDS)}.")

    @property
    def n_tokens(self) -> int:
        return max(0, self.end - self.start)


@dataclass
class ToolCall:
    """An action the model asked for: ``search[High Plains]`` -> ToolCall("search", "High Plains")."""

    name: str  # the tool's canonical name (lower case)
    argument: str  # the text between the brackets, stripped of quotes and whitespace
    raw: str = ""  # the action text exactly as the model wrote it

    def __str__(self) -> str:
        return f"{self.name}[{self.argument}]"


@dataclass
class StepGeneration:
    """What the model generated in one step and what it cost: ids, log-probs, token counts, timings.

    When the agent asks for a missing action, the step's two generations become one record with
    :meth:`merged`. Timings are in seconds; token counts are for the model's ids.
    """

    token_ids: list[int] = field(default_factory=list)  # generated ids, exactly as decoded
    tokens: list[str] = field(default_factory=list)  # each generated id as text
    logprobs: list[float] = field(default_factory=list)  # log p of each generated id (temperature 1)
    alternatives: list[list[list]] = field(default_factory=list)  # per id: the 5 likeliest [token, id, log p]
    entropy: list[float] = field(default_factory=list)  # per id: entropy (nats) of the distribution it came from
    prompt_tokens: int = 0  # tokens in the context when generation started
    reused_tokens: int = 0  # of those, tokens whose keys / values came from the cache
    prefill_tokens: int = 0  # of those, tokens computed at this step
    generated_tokens: int = 0  # ids generated (len(token_ids) for the agent's steps)
    draft_tokens: int = 0  # greedy lookahead: tokens proposed from the context
    accepted_tokens: int = 0  # of those, tokens the model confirmed (each saved a forward pass)
    stop: GenerationStop | Literal[""] = ""  # why generation stopped ("" when there was none)
    t_prefill: float = 0.0  # seconds spent computing the prompt's keys / values
    t_decode: float = 0.0  # seconds spent generating

    def __post_init__(self) -> None:
        if len(self.token_ids) != len(self.logprobs) and self.logprobs:
            raise ValueError(
                f"{len(self.token_ids)} token ids but {len(self.logprobs)} log-probabilities; "
                "there must be one per generated token."
            )

    @property
    def tokens_per_second(self) -> float:
        return self.generated_tokens / self.t_decode if self.t_decode > 0 else 0.0

    def merged(self, then: StepGeneration) -> StepGeneration:
        """This generation followed by ``then`` in the same sequence, as one record.

        Ids, tokens and log-probs are concatenated; work done (prefill, generated, drafted,
        accepted, time) adds up; the prompt it started from is this one's; it stopped as ``then`` did.
        """
        return StepGeneration(
            token_ids=self.token_ids + then.token_ids, tokens=self.tokens + then.tokens,
            logprobs=self.logprobs + then.logprobs, alternatives=self.alternatives + then.alternatives,
            entropy=self.entropy + then.entropy, prompt_tokens=self.prompt_tokens,
            reused_tokens=self.reused_tokens, prefill_tokens=self.prefill_tokens + then.prefill_tokens,
            generated_tokens=self.generated_tokens + then.generated_tokens,
            draft_tokens=self.draft_tokens + then.draft_tokens, accepted_tokens=self.accepted_tokens + then.accepted_tokens,
            stop=then.stop, t_prefill=self.t_prefill + then.t_prefill, t_decode=self.t_decode + then.t_decode,
        )


# The keys of StepGeneration, which traces written before it existed kept flat on the step.
_GENERATION_KEYS = tuple(f.name for f in fields(StepGeneration))


@dataclass
class Step:
    """One Thought -> Action -> Observation step (or one answer in cot / direct modes).

    A failure the model caused (no action, an unknown tool, a tool that raised) is the ``error``
    field; the run goes on. What the model generated and what that cost is ``generation``.
    """

    index: int  # 1-based step number
    kind: StepKind = "react"
    prompt_segments: list[Segment] = field(default_factory=list)  # the exact prompt of this step
    primer: str = ""  # text the agent fed right before generating ("Thought 2:")
    completion: str = ""  # the raw text the model generated, cut at the stop string
    action_primer: str = ""  # when the model wrote no action: the "Action N:" the agent fed to ask for one
    action_completion: str = ""  # what the model generated after action_primer
    thought: str | None = None
    action: ToolCall | None = None
    observation: str | None = None
    opened: str | None = None  # the title of the article a search opened (for supporting-fact recall)
    error: str | None = None  # what went wrong, as shown to the model
    error_kind: ErrorKind | Literal[""] = ""  # set with error
    answer: str | None = None  # set when this step finishes the run
    generation: StepGeneration = field(default_factory=StepGeneration)  # ids, log-probs, token counts, timings
    target_spans: dict[str, list[int]] = field(default_factory=dict)  # "thought" / "action" / "answer" -> [a, b) in generation.token_ids
    gen_split: int = -1  # when the agent asked for the action: ids of the first generation (the rest came after action_primer)
    run_end: RunEnd | Literal[""] = ""  # set on the last step of a run: why the run ended
    t_tool: float = 0.0  # seconds the tool took
    t_total: float = 0.0  # seconds of the whole step: generation(s) and tool (the step's wall time, so not in generation)
    verifier_score: float | None = None  # with an answer verifier: its best support for this step's finish answer
    edited: Literal["", "thought", "action", "observation", "token"] = ""  # the part a person wrote (a fork, step by step)

    @property
    def prompt(self) -> str:
        """The exact prompt text of this step (its segments joined)."""
        return "".join(s.text for s in self.prompt_segments)

    @property
    def output(self) -> str:
        """Everything the model generated in this step, with any text the agent fed in between."""
        return self.primer + self.completion + self.action_primer + self.action_completion

    @property
    def finished(self) -> bool:
        return self.answer is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Step":
        """A Step from its dict; a step saved with the generation figures flat on it (before
        StepGeneration) loads with them moved into ``generation``."""
        generation = data.get("generation")
        if not isinstance(generation, dict):
            generation = {k: data[k] for k in _GENERATION_KEYS if k in data}
        data = _known(cls, data)
        data["generation"] = StepGeneration(**_known(StepGeneration, generation))
        data["prompt_segments"] = [Segment(**_known(Segment, s)) for s in data.get("prompt_segments", [])]
        if data.get("action") is not None:
            data["action"] = ToolCall(**_known(ToolCall, data["action"]))
        return cls(**data)


@dataclass
class Trace:
    """A whole run: the task, every step, the answer and why it ended.

    ``run()`` is ``Trace(steps=list(stream()))`` plus this metadata.
    """

    task: str
    mode: str = "react"
    steps: list[Step] = field(default_factory=list)
    answer: str | None = None
    stop_reason: RunEnd | Literal[""] = ""  # set once the run has ended
    model: str = ""  # the model's name as loaded
    prompt_name: str = ""  # the preset or version name
    prompt_hash: str = ""  # sha256 of the prompt template data (its version)
    rendered_hash: str = ""  # sha256 of the rendered prompt of step 1
    config: dict[str, Any] = field(default_factory=dict)  # the agent settings of this run
    gold: str | None = None  # the expected answer, when the task came from a suite
    meta: dict[str, Any] = field(default_factory=dict)  # free-form: task id, suite, tags
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    created_at: float = field(default_factory=time.time)
    wall_time: float = 0.0

    @property
    def finished(self) -> bool:
        return self.stop_reason == "finished"

    @property
    def generated_tokens(self) -> int:
        return sum(s.generation.generated_tokens for s in self.steps)

    @property
    def n_errors(self) -> int:
        return sum(1 for s in self.steps if s.error)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Trace":
        data = _known(cls, data)
        data["steps"] = [Step.from_dict(s) for s in data.get("steps", [])]
        return cls(**data)

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    @classmethod
    def from_json(cls, text: str) -> "Trace":
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> Path:
        """Write the trace as JSON (atomically: a crash never leaves half a file)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json(indent=1), encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Trace":
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def to_dataframe(self) -> "pd.DataFrame":
        """One row per step: thought, action, observation, error, tokens and timings."""
        import pandas as pd

        rows = [_step_row(s) for s in self.steps]
        return pd.DataFrame(rows, columns=list(_step_row(Step(index=0))))


def _step_row(s: Step) -> dict[str, Any]:
    """One row of the step table."""
    g = s.generation
    return {
        "step": s.index,
        "kind": s.kind,
        "thought": s.thought or "",
        "action": str(s.action) if s.action else "",
        "observation": s.observation or "",
        "answer": s.answer or "",
        "error": s.error or "",
        "prompt_tokens": g.prompt_tokens,
        "reused_tokens": g.reused_tokens,
        "prefill_tokens": g.prefill_tokens,
        "generated_tokens": g.generated_tokens,
        "lookahead_accepted": g.accepted_tokens,
        "t_prefill_s": round(g.t_prefill, 4),
        "t_decode_s": round(g.t_decode, 4),
        "t_tool_s": round(s.t_tool, 4),
        "t_total_s": round(s.t_total, 4),
        "tokens_per_s": round(g.tokens_per_second, 1),
        "mean_logprob": round(sum(g.logprobs) / len(g.logprobs), 4) if g.logprobs else None,
    }


# The kinds of task in a suite.
TASK_TYPES = ("single_hop", "bridge", "comparison", "numeric", "arithmetic")
# The labels of a FEVER-style claim.
FEVER_LABELS = ("SUPPORTS", "REFUTES", "NOT ENOUGH INFO")


@dataclass
class GoldStep:
    """One step of a gold (reference) trajectory: what a correct agent thinks, does and sees."""

    thought: str
    action: str  # tool name: search | lookup | calculate | finish
    argument: str
    observation: str | None = None  # None for the finishing step

    @property
    def call(self) -> str:
        return f"{self.action}[{self.argument}]"


@dataclass
class Task:
    """A question with its answer and, for generated suites, a gold trajectory that solves it."""

    id: str
    question: str
    answer: str
    type: str = ""  # one of TASK_TYPES for the demo world; free text elsewhere
    split: str = ""  # train | dev | test
    aliases: list[str] = field(default_factory=list)  # other answers that count as correct
    entities: list[str] = field(default_factory=list)  # titles of every entity the trajectory touches
    trajectory: list[GoldStep] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Task":
        data = _known(cls, data)
        data["trajectory"] = [GoldStep(**_known(GoldStep, g)) for g in data.get("trajectory", [])]
        return cls(**data)


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """Keep the keys the dataclass knows, so traces written by a newer version still load."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in dict(data).items() if k in names}
