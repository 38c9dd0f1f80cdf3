"""Test doubles that ship with the package: a scripted model and a tiny random model.

ScriptedModel replays given completions, step by step, through the same Session interface the
real model uses, so the agent, the store and the app can be tested exactly and instantly:

    >>> from workbench.agent import Agent
    >>> model = ScriptedModel(["Thought: add them.\\nAction: calculate[2 + 3]", "Thought: done.\\nAction: finish[5]"])
    >>> Agent(model).run("What is 2 + 3?").answer
    '5'
"""

from __future__ import annotations

import re
import threading
from typing import Callable, Iterable

from .generation import Generation, GenerationConfig, StopFn
from .models import tiny_model
from .sampling import trim_to_cut
from .types import Segment, SegmentKind

__all__ = ["ScriptedModel", "ScriptedSession", "tiny_model", "free_port", "CHROMIUM", "CHROMIUM_ARGS"]

_PIECE = re.compile(r"\s*\S+|\s+")


class ScriptedSession:
    """A Session whose generate returns the next scripted completion (cut at the stop condition).

    Its "tokens" are whitespace-led words; their ids are hashes and their log-probs 0."""

    def __init__(self, model: "ScriptedModel") -> None:
        self.model = model
        self.segments: list[Segment] = []
        self.n_tokens = 0
        self._gen_start = 0
        self._last: list[str] = []

    def feed(self, text: str, kind: SegmentKind = "scaffold", label: str = "") -> Segment:
        pieces = _PIECE.findall(text)
        seg = Segment(kind, label or kind, text, self.n_tokens, self.n_tokens + len(pieces))
        self.n_tokens += len(pieces)
        self.segments.append(seg)
        return seg

    def generate(self, max_new_tokens: int = 128, stop: StopFn | None = None,
                 config: GenerationConfig | None = None, cancel: threading.Event | None = None) -> Generation:
        config = config or GenerationConfig(max_new_tokens=max_new_tokens)
        if cancel is not None and cancel.is_set():
            return Generation(text="", stop="cancelled", prompt_tokens=self.n_tokens)
        text = self.model.next_completion("".join(seg.text for seg in self.segments))
        tokens = _PIECE.findall(text)[: config.max_new_tokens]
        pieces = ["".join(tokens[: i + 1]) for i in range(len(tokens))]
        reason = "script"
        for i, piece in enumerate(pieces):  # stop as the real session would, token by token
            if stop is not None and stop(piece) is not None:
                tokens = tokens[: trim_to_cut(pieces[: i + 1], stop(piece))]  # type: ignore[arg-type]
                reason = "stop_string"
                break
        prompt_tokens = self.n_tokens
        self._gen_start, self._last = self.n_tokens, tokens
        self.n_tokens += len(tokens)
        ids = [abs(hash(t)) % 50_000 for t in tokens]
        return Generation(text="".join(tokens), token_ids=ids, tokens=tokens, logprobs=[0.0] * len(tokens),
                          stop=reason, prompt_tokens=prompt_tokens, reused_tokens=prompt_tokens)

    def label_generated(self, parts: list[tuple[SegmentKind, str, int]]) -> list[Segment]:
        text = "".join(self._last)
        start_char, start_tok = 0, self._gen_start
        made: list[Segment] = []
        for n, (kind, label, end_char) in enumerate(parts):
            end_char = len(text) if n == len(parts) - 1 else end_char
            n_tok = len(_PIECE.findall(text[:end_char]))
            if end_char > start_char:
                made.append(Segment(kind, label, text[start_char:end_char], start_tok, self._gen_start + n_tok))
                self.segments.append(made[-1])
            start_char, start_tok = end_char, self._gen_start + n_tok
        return made


class ScriptedModel:
    """A stand-in model (a LanguageModel) that replays ``completions`` in order, one per generate call.

    ``completions`` may instead be a function of the prompt so far that returns the completion,
    for tests that need answers depending on the task (evaluation, concurrency). When a list runs
    out, ``fallback`` is repeated (by default an action that finishes with no answer).
    """

    def __init__(self, completions: Iterable[str] | Callable[[str], str], name: str = "scripted",
                 fallback: str = "Action: finish[]") -> None:
        self.respond = completions if callable(completions) else None
        self.completions = [] if callable(completions) else list(completions)
        self.name = name
        self.fallback = fallback
        self.calls = 0

    def next_completion(self, prompt: str = "") -> str:
        self.calls += 1
        if self.respond is not None:
            return self.respond(prompt)
        n = self.calls - 1
        return self.completions[n] if n < len(self.completions) else self.fallback

    def new_session(self) -> ScriptedSession:
        return ScriptedSession(self)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for tests that serve the app)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Debian's chromium for the browser tests (Playwright drives it headless, offline).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
