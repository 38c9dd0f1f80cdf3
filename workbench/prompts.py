"""Prompt templates as data: presets in ``workbench/prompts/*.yaml``, rendered strictly to segments.

A template has a system part and a user part with placeholders ``{instruction}``, ``{tools}``,
``{examples}`` and ``{task}``; the few-shot examples are structured trajectories, so each one
becomes its own labelled Segment that attribution can score and the prompt lab can edit. A
misspelled placeholder fails at render time, naming the valid ones:

    >>> p = load_prompt("react")
    >>> system, user = p.render("What is 2 + 3?", tools_text="- calculate[expression]: arithmetic")
    >>> [s.kind for s in system]
    ['instruction', 'scaffold', 'tools']
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import PromptError, TemplateError
from .readers import read_text, yaml_data
from .types import Segment

__all__ = ["PromptTemplate", "Example", "ExampleStep", "load_prompt", "list_presets", "MODES", "PLACEHOLDERS",
           "format_action", "step_labels"]

MODES = ("react", "cot", "act", "direct")
PLACEHOLDERS = ("instruction", "tools", "examples", "task")
_PRESET_DIR = Path(__file__).parent / "prompts"
_DEFAULT_PRESET = {"react": "react", "cot": "cot", "act": "act", "direct": "direct"}


@dataclass
class ExampleStep:
    """One step of a few-shot trajectory (react / act) or the reasoning of a cot example."""

    thought: str = ""
    action: str = ""  # "search[Varnholt]"; empty in cot / direct examples
    observation: str = ""


@dataclass
class Example:
    """A few-shot example: a question, its steps and (cot / direct) its final answer."""

    question: str
    steps: list[ExampleStep] = field(default_factory=list)
    answer: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Example":
        steps = [ExampleStep(**s) for s in data.get("steps", [])]
        return cls(question=data["question"], steps=steps, answer=str(data.get("answer", "")))


def format_action(action: str, style: str) -> str:
    """``search[X]`` as the style writes it: the ReAct paper capitalises tool names."""
    if style == "numbered" and action and action[0].islower():
        return action[0].upper() + action[1:]
    return action


def step_labels(style: str, index: int) -> tuple[str, str, str]:
    """The Thought / Action / Observation headers of step ``index`` in this style."""
    if style == "numbered":
        return f"Thought {index}:", f"Action {index}:", f"Observation {index}:"
    return "Thought:", "Action:", "Observation:"


@dataclass
class PromptTemplate:
    """A prompt preset or version. Render with :meth:`render`; the hash names its content."""

    name: str
    mode: str  # one of MODES
    instruction: str
    system: str  # template of the system message
    user: str  # template of the user message
    examples: list[Example] = field(default_factory=list)
    style: str = "plain"  # "plain" (Thought:) or "numbered" (Thought 1:, the ReAct paper)
    description: str = ""
    answer_prefix: str = "Answer:"  # cot / direct: what precedes the final answer
    tool_descriptions: dict[str, str] = field(default_factory=dict)  # tool name -> description shown instead

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise PromptError(f"Prompt {self.name!r}: unknown mode {self.mode!r}. Available: {', '.join(MODES)}.")
        if self.style not in ("plain", "numbered"):
            raise PromptError(f"Prompt {self.name!r}: unknown style {self.style!r}. Available: plain, numbered.")
        for part, text in (("system", self.system), ("user", self.user)):
            _placeholders(text, f"{self.name}.{part}")  # fail now on a misspelled placeholder
        if "task" not in _placeholders(self.user, f"{self.name}.user"):
            raise TemplateError(f"Prompt {self.name!r}: the user template must contain {{task}}, or the question is never shown.")

    # ------------------------------------------------------------------ identity
    def content(self) -> dict[str, Any]:
        """Everything that changes what the model sees (not the name or description)."""
        data = {
            "mode": self.mode,
            "style": self.style,
            "instruction": self.instruction,
            "system": self.system,
            "user": self.user,
            "answer_prefix": self.answer_prefix,
            "examples": [
                {"question": e.question, "answer": e.answer, "steps": [vars(s) for s in e.steps]} for e in self.examples
            ],
        }
        if self.tool_descriptions:  # only when set, so prompts without overrides keep their hash
            data["tool_descriptions"] = dict(sorted(self.tool_descriptions.items()))
        return data

    @property
    def hash(self) -> str:
        """sha256 of the content: two prompts with the same hash render identically."""
        blob = json.dumps(self.content(), sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def with_examples(self, n: int | None) -> "PromptTemplate":
        """A copy keeping the first ``n`` examples (None keeps all; 0 is zero-shot)."""
        clone = copy.deepcopy(self)
        if n is not None:
            if n < 0:
                raise PromptError(f"The number of examples must be 0 or more, got {n}.")
            clone.examples = clone.examples[:n]
        return clone

    # ------------------------------------------------------------------ rendering
    def render_example(self, example: Example) -> str:
        """One example as text, in exactly the format the model is asked to continue."""
        lines = [f"Question: {example.question}"]
        if self.mode in ("react", "act"):
            for i, step in enumerate(example.steps, 1):
                thought_h, action_h, obs_h = step_labels(self.style, i)
                if self.mode == "react":
                    lines.append(f"{thought_h} {step.thought}")
                lines.append(f"{action_h} {format_action(step.action, self.style)}")
                if step.observation:
                    lines.append(f"{obs_h} {step.observation}")
        elif self.mode == "cot":
            thought = " ".join(s.thought for s in example.steps if s.thought)
            lines.append(f"Thought: {thought}")
            lines.append(f"{self.answer_prefix} {example.answer}")
        else:
            lines.append(f"{self.answer_prefix} {example.answer}")
        return "\n".join(lines) + "\n"

    def render(self, task: str, tools_text: str = "") -> tuple[list[Segment], list[Segment]]:
        """The system and the user message as segments (no chat markers: the session adds them)."""
        values = {"instruction": self.instruction, "tools": tools_text, "task": task}
        return (self._expand(self.system, values, f"{self.name}.system"),
                self._expand(self.user, values, f"{self.name}.user"))

    def _expand(self, template: str, values: dict[str, str], where: str) -> list[Segment]:
        segments: list[Segment] = []
        for literal, name, _spec, _conv in string.Formatter().parse(template):
            if literal and segments and segments[-1].kind == "scaffold":  # "{{" splits a literal in two
                segments[-1].text += literal
            elif literal:
                segments.append(Segment("scaffold", "template", literal))
            if name is None:
                continue
            if name == "examples":
                for i, ex in enumerate(self.examples, 1):
                    segments.append(Segment("example", f"example {i}", self.render_example(ex)))
            elif name == "tools":
                segments.append(Segment("tools", "tools", values["tools"]))
            elif name == "instruction":
                segments.append(Segment("instruction", "instruction", values["instruction"]))
            elif name == "task":
                segments.append(Segment("task", "task", values["task"]))
        return [s for s in segments if s.text or s.kind != "scaffold"]

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        data = {"name": self.name, "description": self.description}
        data.update(self.content())
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "prompt") -> "PromptTemplate":
        missing = [k for k in ("mode", "system", "user") if k not in data]
        if missing:
            raise PromptError(f"{source}: missing field(s) {', '.join(missing)}. A prompt needs mode, system and user.")
        try:
            examples = [Example.from_dict(e) for e in data.get("examples") or []]
        except (KeyError, TypeError) as err:
            raise PromptError(f"{source}: an example is malformed ({err}); each needs a question and a list of steps.") from err
        return cls(
            name=str(data.get("name") or source),
            mode=data["mode"],
            instruction=str(data.get("instruction", "")),
            system=str(data["system"]),
            user=str(data["user"]),
            examples=examples,
            style=str(data.get("style", "plain")),
            description=str(data.get("description", "")),
            answer_prefix=str(data.get("answer_prefix", "Answer:")),
            tool_descriptions={str(k): str(v) for k, v in (data.get("tool_descriptions") or {}).items()},
        )

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=100)

    @classmethod
    def from_yaml(cls, text: str, source: str = "prompt") -> "PromptTemplate":
        """A prompt from YAML text; a syntax error names ``source`` (the file) and the line."""
        data = yaml_data(text, source, error=PromptError)
        if not isinstance(data, dict):
            raise PromptError(f"{source}: expected a mapping with mode, system, user and examples.")
        return cls.from_dict(data, source)


def _placeholders(template: str, where: str) -> set[str]:
    """The placeholders of a template; unknown, positional or formatted ones raise TemplateError."""
    found: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise TemplateError(f"{where}: {err}. Write a literal brace as '{{{{' or '}}}}'.") from err
    for _literal, name, spec, conv in parsed:
        if name is None:
            continue
        if name == "" or name.isdigit():
            raise TemplateError(f"{where}: empty placeholder '{{}}'. Name it: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}.")
        if name not in PLACEHOLDERS:
            close = difflib.get_close_matches(name, PLACEHOLDERS, n=1)
            hint = f" Did you mean {{{close[0]}}}?" if close else ""
            raise TemplateError(
                f"{where}: unknown placeholder {{{name}}}.{hint} Available: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}."
            )
        if spec or conv:
            raise TemplateError(f"{where}: placeholder {{{name}}} cannot carry a format spec or conversion.")
        found.add(name)
    return found


def list_presets() -> list[str]:
    """Names of the presets shipped with the package."""
    return sorted(p.stem for p in _PRESET_DIR.glob("*.yaml"))


def load_prompt(name_or_path: str | Path | None = None, mode: str = "react") -> PromptTemplate:
    """A preset by name (``react``, ``cot``, ``act``, ``direct``, ``react-paper``) or a YAML file path."""
    if name_or_path is None:
        if mode not in MODES:
            raise PromptError(f"Unknown mode {mode!r}. Available: {', '.join(MODES)}.")
        name_or_path = _DEFAULT_PRESET[mode]
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return PromptTemplate.from_yaml(read_text(path, error=PromptError, allow_empty=True), source=str(path))
    preset = _PRESET_DIR / f"{name_or_path}.yaml"
    if not preset.is_file():
        raise PromptError(
            f"No prompt preset or file named {str(name_or_path)!r}. Presets: {', '.join(list_presets())}; "
            "or pass the path of a .yaml file."
        )
    return PromptTemplate.from_yaml(read_text(preset, error=PromptError), source=preset.name)
