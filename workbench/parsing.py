"""Completion text -> thought, action and argument, forgiving the ways small models write them.

Reads this project's format (``Thought: ...`` / ``Action: search[X]``) and the ReAct paper's
numbered format (``Thought 2: ...`` / ``Action 2: Search[High Plains]`` / ``Finish[...]``), in any
case, with extra whitespace, quotes, round brackets or a missing closing bracket. It never raises
on model output: what it cannot read becomes ``ParsedStep.error``, which the agent shows the model
as the observation (listing the valid tools) before the run goes on.

    >>> p = parse_step('Thought 2: I should look it up.\\nAction 2: Search["High Plains"', ["search", "finish"])
    >>> p.thought, p.action.name, p.action.argument
    ('I should look it up.', 'search', 'High Plains')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable

from .errors import ParseError
from .types import ToolCall

__all__ = ["ParsedStep", "parse_step", "parse_answer", "parse_action", "cut_observation", "react_stop", "answer_stop"]

_OBSERVATION = re.compile(r"(?:^|\n)[ \t]*observation\b", re.IGNORECASE)
_QUESTION = re.compile(r"\n[ \t]*question[ \t]*\d*[ \t]*:", re.IGNORECASE)
_THOUGHT_HEAD = re.compile(r"^[ \t]*thought[ \t]*\d*[ \t]*[:：]?[ \t]*", re.IGNORECASE)
_ACTION_HEAD = re.compile(r"(?:^|\n)[ \t]*action[ \t]*\d*[ \t]*[:：]", re.IGNORECASE)
_ACTION_LINE_DONE = re.compile(r"(?:^|\n)[ \t]*action[ \t]*\d*[ \t]*[:：][^\n]*\S[^\n]*(\n)", re.IGNORECASE)
_ANSWER = re.compile(r"(?:^|\n)[ \t]*(?:final[ \t]+)?answer[ \t]*[:：][ \t]*([^\n]*)", re.IGNORECASE)
_ANSWER_IS = re.compile(r"the (?:final )?answer is[:\s]+([^\n]+?)\s*(?:\.\s*)?$", re.IGNORECASE | re.MULTILINE)
_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_\-]*)[ \t]*([\[\(\{<])")
_QUOTES = "\"'`“”‘’*"
_CLOSE = {"[": "]", "(": ")", "{": "}", "<": ">"}


@dataclass
class ParsedStep:
    """What the parser read from one completion."""

    thought: str | None = None
    action: ToolCall | None = None  # None when no action could be read
    error: str | None = None  # shown to the model as the observation when set
    cut: bool = False  # a hallucinated "Observation" (and all after it) was removed
    thought_end: int = 0  # offset in the cut text where the action part begins

    @property
    def ok(self) -> bool:
        return self.error is None and self.action is not None


def cut_observation(text: str) -> tuple[str, bool]:
    """Drop a hallucinated ``Observation`` and everything after it."""
    m = _OBSERVATION.search(text)
    return (text[: m.start()], True) if m else (text, False)


def _strip_quotes(text: str) -> str:
    prev = None
    text = text.strip()
    while prev != text:
        prev = text
        text = text.strip().strip(_QUOTES).strip()
    return text


def _bracketed(rest: str, opener: str) -> str:
    """The text up to the bracket that closes ``opener`` (nesting respected), or all of it."""
    closer, depth = _CLOSE[opener], 1
    for i, ch in enumerate(rest):
        if ch == opener:
            depth += 1
        elif ch == closer:
            depth -= 1
            if depth == 0:
                return rest[:i]
    return rest.split("\n")[0]  # a missing closing bracket: take the line


def _read_call(text: str, resolve: Callable[[str], str | None]) -> tuple[str, str] | None:
    """``search[X]``, ``search(X)``, ``search: X`` or ``search X`` -> (name as written, argument)."""
    s = text.strip().strip("`*").strip()
    if not s:
        return None
    m = _CALL.match(s)
    if m:
        name, opener = m.group(1), m.group(2)
        return name, _strip_quotes(_bracketed(s[m.end():], opener))
    m = re.match(r"([A-Za-z_][A-Za-z0-9_\-]*)[ \t]*[:=]?[ \t]*(.*)", s, re.DOTALL)
    if not m:
        return None
    return m.group(1), _strip_quotes(m.group(2).split("\n")[0])


def _names_resolver(tools: Iterable[str] | object) -> tuple[Callable[[str], str | None], list[str]]:
    resolve = getattr(tools, "resolve", None)
    names = list(getattr(tools, "names", None) or tools)  # type: ignore[arg-type]
    if resolve is None:
        lowered = {n.lower(): n for n in names}
        resolve = lambda name: lowered.get(name.strip().lower())  # noqa: E731
    return resolve, names


def _tools_hint(names: list[str]) -> str:
    return ", ".join(f"{n}[...]" for n in names)


def parse_step(text: str, tools: Iterable[str] | object) -> ParsedStep:
    """Read a react / act completion (primer included). Never raises on model output.

    ``tools`` is a Toolbox (its ``resolve`` forgives aliases) or a list of valid tool names.
    """
    resolve, names = _names_resolver(tools)
    text, cut = cut_observation(text if isinstance(text, str) else str(text))
    head = _ACTION_HEAD.search(text)
    if head:
        thought_part, action_part = text[: head.start()], text[head.end():]
        thought_end = head.start()
        if not action_part.strip():
            action_part = ""
        else:  # the action is the first non-empty line after the header
            action_part = next(line for line in action_part.split("\n") if line.strip())
    else:
        thought_part, action_part, thought_end = text, "", len(text)
        # No "Action:" header: the paper's inline "Finish[x]", or a known tool called in the text.
        for m in _CALL.finditer(text):
            if resolve(m.group(1)) is not None:
                thought_part, action_part, thought_end = text[: m.start()], text[m.start():], m.start()
                action_part = action_part.split("\n")[0]
                break
        else:
            answer = _ANSWER.search(text)
            if answer and answer.group(1).strip() and resolve("finish") is not None:
                thought_part, thought_end = text[: answer.start()], answer.start()
                action_part = f"finish[{answer.group(1).strip()}]"
    thought = _THOUGHT_HEAD.sub("", thought_part.strip(), count=1).strip() or None
    if not action_part.strip():
        return ParsedStep(
            thought=thought,
            error=f"No action found. Write the next step as 'Action: tool[argument]'. Valid tools: {_tools_hint(names)}.",
            cut=cut,
            thought_end=thought_end,
        )
    call = _read_call(action_part, resolve)
    if call is None:
        return ParsedStep(thought=thought, error=f"Could not read the action {action_part.strip()!r}. "
                          f"Write it as tool[argument]. Valid tools: {_tools_hint(names)}.", cut=cut, thought_end=thought_end)
    name, argument = call
    canonical = resolve(name)
    action = ToolCall(name=(canonical or name).lower(), argument=argument, raw=action_part.strip())
    if canonical is None:
        return ParsedStep(thought=thought, action=action, cut=cut, thought_end=thought_end,
                          error=f"Unknown tool {name!r}. Valid tools: {_tools_hint(names)}.")
    return ParsedStep(thought=thought, action=action, cut=cut, thought_end=thought_end)


def parse_answer(text: str, answer_prefix: str = "Answer:") -> tuple[str | None, str | None]:
    """Read a cot / direct completion: returns (thought, answer); answer is None if none was given."""
    text, _ = cut_observation(text if isinstance(text, str) else str(text))
    m = None
    prefix = answer_prefix.strip().rstrip(":：").strip()
    pattern = re.compile(r"(?:^|\n)[ \t]*(?:final[ \t]+)?" + re.escape(prefix) + r"[ \t]*[:：][ \t]*([^\n]*)", re.IGNORECASE)
    for m in pattern.finditer(text):
        pass  # the last answer line wins
    if m is None:
        for m in _ANSWER.finditer(text):
            pass
    if m is not None and _strip_quotes(m.group(1)):
        thought = _THOUGHT_HEAD.sub("", text[: m.start()].strip(), count=1).strip() or None
        return thought, _strip_quotes(m.group(1)).rstrip(".").strip() or None
    m2 = _ANSWER_IS.search(text)
    if m2:
        thought = _THOUGHT_HEAD.sub("", text.strip(), count=1).strip() or None
        return thought, _strip_quotes(m2.group(1))
    return (_THOUGHT_HEAD.sub("", text.strip(), count=1).strip() or None), None


def parse_action(text: str, tools: Iterable[str] | object) -> ToolCall:
    """Strict: read one action or raise ParseError saying what is wrong (for validating examples)."""
    resolve, names = _names_resolver(tools)
    call = _read_call(text, resolve)
    if call is None:
        raise ParseError(f"{text!r} is not an action. Write it as tool[argument], e.g. search[Varnholt].")
    name, argument = call
    canonical = resolve(name)
    if canonical is None:
        raise ParseError(f"Unknown tool {name!r} in {text!r}. Valid tools: {', '.join(names)}.")
    return ToolCall(canonical, argument, raw=text)


# ------------------------------------------------------------------------- stop conditions


def _stray_line(text: str) -> int | None:
    """The newline after which a line starts that is not an Action line (or a blank line).

    A thought is one line; whatever else the model starts writing after it (a second thought, a
    made-up answer, a blank line) is cut, and the agent then asks for the action itself.
    """
    p = text.find("\n")
    while p >= 0 and not text[:p].strip():  # newlines before any text do not end a thought
        p = text.find("\n", p + 1)
    if p < 0:
        return None
    rest = text[p + 1 :].lstrip(" \t")
    if not rest:
        return None  # cannot tell yet
    if rest[0] == "\n" or not "action".startswith(rest[:6].lower()):
        return p
    return None  # an Action line (or the start of one) follows: _ACTION_LINE_DONE decides


def react_stop(text: str) -> int | None:
    """Where to cut a react / act completion while it is being generated, or None to go on.

    Cuts before a hallucinated Observation or a new Question, right after a complete Action
    line (the observation is the tool's to write, not the model's), and after a thought line
    that is not followed by an Action line.
    """
    cuts = [m.start() for m in (_OBSERVATION.search(text), _QUESTION.search(text)) if m]
    done = _ACTION_LINE_DONE.search(text)
    if done:
        cuts.append(done.start(1))
    elif (stray := _stray_line(text)) is not None:
        cuts.append(stray)
    return min(cuts) if cuts else None


def answer_stop(text: str) -> int | None:
    """Where to cut a cot / direct completion: after the answer line, or before a new Question."""
    cuts = [m.start() for m in (_QUESTION.search(text), _OBSERVATION.search(text)) if m]
    m = re.search(r"(?:^|\n)[ \t]*(?:final[ \t]+)?answer[ \t]*[:：][^\n]*\S[^\n]*(\n)", text, re.IGNORECASE)
    if m:
        cuts.append(m.start(1))
    return min(cuts) if cuts else None
