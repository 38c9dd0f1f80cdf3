"""Writing one Step from one generation: feed the primer, generate, parse, label the token spans.

The agent (agent.py) decides what happens next: which primer, which tool, when the run ends. A
StepWriter does the writing: it feeds a primer to the run's session, records what the model
generated and what that cost on a new Step, reads the thought / action / answer out of it, labels
where each lies in the generated ids, and asks for the action when a thought came without one.

    >>> from workbench.testing import ScriptedModel
    >>> from workbench.generation import GenerationConfig
    >>> from workbench.parsing import answer_stop
    >>> writer = StepWriter(ScriptedModel([" 5\\nAnswer: 5"]).new_session(), GenerationConfig())
    >>> step, text = writer.generate("Thought:", answer_stop)
    >>> text, step.generation.generated_tokens
    ('Thought: 5\\nAnswer: 5', 3)
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Literal

from .generation import GenerationConfig, Session, StopFn
from .parsing import ParsedStep, answer_stop, parse_answer, parse_step, react_stop
from .prompts import step_labels
from .tools.core import FINISH, Toolbox
from .types import Segment, Step, ToolCall

__all__ = ["StepWriter", "label_spans", "Forced"]

# Given first ids of a generation, with what was recorded for them: (ids, log-probs, alternatives, entropy).
Forced = tuple[list[int], list[float], list[list[list]], list[float]]


@dataclass
class StepWriter:
    """Writes the steps of one run on its session, generating with ``config`` until ``cancel`` is set."""

    session: Session
    config: GenerationConfig
    cancel: threading.Event | None = None

    def generate(self, primer: str, stop: StopFn, label: str = "primer", forced: Forced | None = None) -> tuple[Step, str]:
        """Feed the primer, generate, and return a Step with the generation's figures, and its text.

        ``forced``: the generation starts with these given ids (a fork at a token) and goes on from them."""
        self.session.feed(primer, "scaffold", label)
        prompt_segments = [replace(s) for s in self.session.segments]
        if forced is not None:
            self.session.force(*forced)  # type: ignore[attr-defined]  # DecodeSession only (interventions checks)
        wrapped = lambda text: _shift(stop(primer + text), len(primer))  # noqa: E731
        t0 = time.perf_counter()
        gen = self.session.generate(stop=wrapped, config=self.config, cancel=self.cancel)
        step = Step(index=0, prompt_segments=prompt_segments, primer=primer, completion=gen.text,
                    generation=gen.record(), t_total=time.perf_counter() - t0)
        return step, primer + gen.text

    def react(self, index: int, mode: Literal["react", "act"], style: str, tools: Toolbox,
              forced: Forced | None = None) -> tuple[Step, ParsedStep, str]:
        """Step ``index`` of a react / act run: generate from its primer, parse and label it.

        Returns the step (its thought and action set), the parse and the text the step wrote."""
        thought_h, action_h, _ = step_labels(style, index)
        step, text = self.generate(thought_h if mode == "react" else action_h, react_stop, forced=forced)
        step.index, step.kind = index, mode
        parsed = parse_step(text, tools)
        gen = step.generation
        if parsed.action is None and mode == "react" and gen.stop != "cancelled":
            # A thought but no action: keep the thought and ask for the action, as the ReAct
            # paper's own code does ("Thought i: ...\nAction i:").
            label_spans(step, self.session.label_generated([("thought", f"thought {index}", len(step.completion))]),
                        gen.prompt_tokens, 0)
            first = len(gen.token_ids)
            text, second_start = self.ask_for_action(step, text, action_h)
            parsed = parse_step(text, tools)
            step.gen_split = first
            label_spans(step, self.session.label_generated([("action", f"action {index}", len(step.action_completion))]),
                        second_start, first)
        else:
            split = max(0, parsed.thought_end - len(step.primer))
            parts = [("thought", f"thought {index}", split)] if split > 0 else []
            label_spans(step, self.session.label_generated(parts + [("action", f"action {index}", len(step.completion))]),
                        gen.prompt_tokens, 0)
        step.thought = parsed.thought if mode == "react" else None
        step.action = parsed.action
        return step, parsed, text

    def ask_for_action(self, step: Step, text: str, action_h: str,
                       stop_for: Callable[[str], StopFn] = lambda primer: react_stop) -> tuple[str, int]:
        """Feed ``\\nAction N:`` after a thought that had no action, generate it, merge it into ``step``.

        ``stop_for``: the stop rule for a given primer (a forced finish primes ``Action N: finish[``).
        Returns the step's text so far and where the second generation began in the sequence."""
        primer = f"{'' if text.endswith(chr(10)) else chr(10)}{action_h}"
        more, _ = self.generate(primer, stop_for(primer), label="action primer")
        step.action_primer, step.action_completion = more.primer, more.completion
        step.generation = step.generation.merged(more.generation)
        step.t_total += more.t_total
        return text + more.primer + more.completion, more.generation.prompt_tokens

    def forced_finish(self, index: int, style: str, think: bool = False) -> Step:
        """After a repeated action: prime ``finish[`` and take what the model writes as the answer.

        ``think``: first let the model write one thought line ("So the birth year of X is 1896."), then prime
        ``finish[``: primed at once, a model that looped on ``lookup[born]`` tends to answer "born"."""
        thought_h, action_h, _ = step_labels(style, index)
        finish = "Finish[" if style == "numbered" else "finish["
        if think:
            step, text = self.generate(thought_h, _line_stop(thought_h))
            label_spans(step, self.session.label_generated([("thought", f"thought {index}", len(step.completion))]),
                        step.generation.prompt_tokens, 0)
            step.gen_split, step.thought = len(step.generation.token_ids), step.completion.strip() or None
            _, start = self.ask_for_action(step, text, f"{action_h} {finish}", _answer_stop)
            written, offset = step.action_completion, step.gen_split
        else:
            step, _ = self.generate(f"{action_h} {finish}", _answer_stop(f"{action_h} {finish}"))
            written, start, offset = step.completion, step.generation.prompt_tokens, 0
        label_spans(step, self.session.label_generated([("answer", f"answer {index}", len(written))]), start, offset)
        step.index, step.kind, step.run_end = index, "forced_finish", "repeated_action"
        # The model sometimes writes the primer again ("finish[finish[Bronwyn"): the answer is what follows it.
        answer = re.sub(r"^(?:\s*finish\[)+", "", written, flags=re.IGNORECASE).split("]")[0].strip()
        step.action = ToolCall(FINISH, answer, f"{finish}{written}")
        step.answer = answer or None
        return step

    def answer(self, mode: Literal["cot", "direct"], answer_prefix: str) -> Step:
        """cot / direct: the one step that reasons (cot) and answers, with why the run ends."""
        step, text = self.generate("Thought:" if mode == "cot" else answer_prefix, answer_stop)
        step.index, step.kind = 1, "answer"
        thought, answer = parse_answer(text, answer_prefix)
        if answer is None and mode == "direct":
            answer = step.completion.strip().split("\n")[0].strip() or None
        step.thought, step.answer = thought, answer
        # The answer part starts at the last "Answer:" line (cot); in direct mode all of it is the answer.
        lines = list(re.finditer(r"\n[ \t]*(?:final[ \t]+)?answer", step.completion, re.IGNORECASE))
        where = lines[-1].start() if lines and answer else -1
        parts = [("thought", "thought 1", where)] if where > 0 else []
        label_spans(step, self.session.label_generated(parts + [("answer", "answer", len(step.completion))]),
                    step.generation.prompt_tokens, 0)
        if step.generation.stop == "cancelled":
            step.run_end = "cancelled"
        elif answer is None:
            step.error = f"No answer found: the model did not write '{answer_prefix} ...'."
            step.run_end = "no_answer"
        else:
            step.run_end = "finished"
        return step


def _answer_stop(primer: str) -> StopFn:
    """Cut a forced answer after its closing bracket, or before the end of its line."""
    return lambda text: next((i + (ch == "]") for i, ch in enumerate(text) if i >= len(primer) and ch in "]\n"), None)


def _line_stop(primer: str) -> StopFn:
    """Cut a one-line thought at its end of line (the primer's own text never counts)."""
    def stop(text: str) -> int | None:
        end = text.find("\n", len(primer))
        return None if end < 0 else end
    return stop


def label_spans(step: Step, segments: list[Segment], gen_start: int, offset: int) -> None:
    """Record where each labelled part (thought, action, answer) lies in ``step.generation.token_ids``."""
    for seg in segments:
        step.target_spans[seg.kind] = [offset + seg.start - gen_start, offset + seg.end - gen_start]


def _shift(cut: int | None, offset: int) -> int | None:
    return None if cut is None else max(0, cut - offset)
