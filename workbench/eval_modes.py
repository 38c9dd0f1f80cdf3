"""Evaluation modes as compositions of agent runs, each declaring the agent modes it uses.

A mode answers one task: ``Single("react")`` runs the agent once; ``SelfConsistency()`` samples k
chains of thought and takes the majority answer; ``Fallback(first, then, when)`` runs ``first``
and, when its outcome calls for it, ``then`` (the ReAct paper's hybrids). The table ``MODES`` is the
one place that names them: the valid choices, the dispatch and the question "which prompts does
this mode run?" (``agent_modes``) all read it, as DSPy composes self-consistency from small modules.

    >>> sorted(agent_modes("react_cot_sc"))
    ['cot', 'react']
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from .agent import Agent
from .datasets import Suite, normalize_fever_label
from .errors import InputError
from .prompts import list_presets
from .types import Task, Trace

__all__ = ["Outcome", "Item", "EvalMode", "Single", "SelfConsistency", "Fallback", "MODES", "EVAL_MODES",
           "agent_modes", "get_mode", "normalize_answer"]


def normalize_answer(text: str | None) -> str:
    """The standard answer normalisation (SQuAD, HotpotQA): lower case, no punctuation or articles."""
    import re
    import string

    text = (text or "").lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


@dataclass
class Outcome:
    """What a mode made of one task: its answer, every trace it ran, and how it got there."""

    answer: str | None
    traces: list[Trace] = field(default_factory=list)
    backed_off: bool = False  # a Fallback ran its second part
    majority: float | None = None  # self-consistency: the share of chains that gave the answer


@dataclass
class Item:
    """One task to answer, with everything an agent run needs (model, suite, settings, prompts)."""

    model: Any
    suite: Suite
    task: Task
    config: Any  # an EvalConfig
    prompts: dict | None = None  # agent mode -> PromptTemplate instead of the preset

    @property
    def question(self) -> str:
        return f"Claim: {self.task.question}" if self.suite.kind == "fever" else self.task.question

    def agent(self, mode: str, **overrides: Any) -> Agent:
        cfg = self.config
        settings = dict(mode=mode, max_steps=cfg.max_steps, max_new_tokens=cfg.max_new_tokens,
                        retrieval=cfg.retrieval, n_examples=cfg.n_examples)
        settings.update(overrides)
        fever = f"{mode}-fever"  # FEVER suites use the *-fever presets where they exist
        prompt = (self.prompts or {}).get(mode) or (fever if self.suite.kind == "fever" and fever in list_presets()
                                                    else None)
        return Agent(self.model, corpus=self.suite.corpus_for(self.task), prompt=prompt, **settings)

    def answer_of(self, trace: Trace) -> str | None:
        return normalize_fever_label(trace.answer or "") if self.suite.kind == "fever" else trace.answer


class EvalMode(Protocol):
    """A way of answering one task; ``uses`` names the agent modes (and so the prompts) it runs."""

    @property
    def uses(self) -> frozenset[str]: ...

    def run(self, item: Item) -> Outcome: ...


@dataclass(frozen=True)
class Single:
    """One agent run in ``mode`` (react, cot, act or direct)."""

    mode: str

    @property
    def uses(self) -> frozenset[str]:
        return frozenset({self.mode})

    def run(self, item: Item) -> Outcome:
        trace = item.agent(self.mode).run(item.question)
        return Outcome(item.answer_of(trace), [trace])


@dataclass(frozen=True)
class SelfConsistency:
    """k sampled chains (config.sc_samples, at config.sc_temperature); the majority answer and its share."""

    mode: str = "cot"

    @property
    def uses(self) -> frozenset[str]:
        return frozenset({self.mode})

    def run(self, item: Item) -> Outcome:
        from .batching import default_batch, parallel_map

        cfg = item.config
        traces, answers = [], []
        chains = parallel_map(  # the k chains decode together (batching.py); each keeps its own seed
            lambda i: item.agent(self.mode, temperature=cfg.sc_temperature, seed=cfg.seed + i).run(item.question),
            list(range(cfg.sc_samples)), default_batch(item.model))
        for trace in chains:
            traces.append(trace)
            answer = item.answer_of(trace)
            if answer:
                answers.append(answer)
        if not answers:
            return Outcome(None, traces, majority=0.0)
        top, n = Counter(normalize_answer(a) for a in answers).most_common(1)[0]
        winner = next(a for a in answers if normalize_answer(a) == top)  # the first spelling of the majority
        return Outcome(winner, traces, majority=n / cfg.sc_samples)


@dataclass(frozen=True)
class Fallback:
    """Run ``first``; when ``when(outcome, config)`` says so, run ``then`` and take its answer."""

    first: Any  # an EvalMode
    then: Any  # an EvalMode
    when: Callable[[Outcome, Any], bool]

    @property
    def uses(self) -> frozenset[str]:
        return self.first.uses | self.then.uses

    def run(self, item: Item) -> Outcome:
        first = self.first.run(item)
        if not self.when(first, item.config):
            return first
        second = self.then.run(item)
        majority = first.majority if first.majority is not None else second.majority
        return Outcome(second.answer, first.traces + second.traces, backed_off=True, majority=majority)


def _did_not_finish(outcome: Outcome, config: Any) -> bool:
    return outcome.traces[0].stop_reason != "finished"


def _weak_majority(outcome: Outcome, config: Any) -> bool:
    return (outcome.majority or 0.0) < config.sc_threshold


# The one table of evaluation modes (the ReAct paper's, Table 1).
MODES: dict[str, Any] = {
    "react": Single("react"),
    "cot": Single("cot"),
    "act": Single("act"),
    "direct": Single("direct"),
    "cot_sc": SelfConsistency(),
    "react_cot_sc": Fallback(Single("react"), SelfConsistency(), when=_did_not_finish),  # ReAct -> CoT-SC
    "cot_sc_react": Fallback(SelfConsistency(), Single("react"), when=_weak_majority),  # CoT-SC -> ReAct
}
EVAL_MODES = tuple(MODES)


def get_mode(name: str) -> Any:
    """The mode called ``name``, or an InputError listing the valid ones."""
    try:
        return MODES[name]
    except KeyError:
        raise InputError(f"Unknown evaluation mode {name!r}. Available: {', '.join(EVAL_MODES)}.") from None


def agent_modes(name: str) -> frozenset[str]:
    """The agent modes (so the prompts) evaluation mode ``name`` runs."""
    return get_mode(name).uses
