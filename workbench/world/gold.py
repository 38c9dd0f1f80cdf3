"""What the two worlds' task builders share: the steps of a gold trajectory made by running the real tools,
the numeric tasks a world allows and what each reads, arithmetic tasks, and the text a task names things in.

World 1 (``tasks.py``) and world 2 (``tasks2.py``) differ in how they phrase questions and thoughts and in
how a trajectory reads an article; these pieces are the same logic for both, so they live here once.
"""

from __future__ import annotations

import random
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from ..corpus import Corpus
from ..errors import WorldError
from ..tools.core import ToolContext, default_tools
from ..types import GoldStep, Task
from .records import Entity
from .text import ARITHMETIC, FACTS, NUMERIC, OPERATIONS

__all__ = ["GoldSteps", "numeric_roots", "NumericPlan", "numeric_plan", "arithmetic_tasks", "task_text"]


class GoldSteps:
    """The steps of a gold trajectory, each made by running the real tool; both worlds' writers build on it."""

    def __init__(self, corpus: Corpus, entities: dict[str, Entity], where: Any) -> None:
        self.tools, self.context = default_tools(), ToolContext(corpus=corpus)
        self.entities, self.where = entities, where
        self.steps: list[GoldStep] = []

    @staticmethod
    def topic_of(kind: str, attr: str) -> str:
        """How a thought names one fact of a kind ("population"); world 2 names a few more."""
        return FACTS[kind, attr].topic

    def act(self, thought: str, action: str, argument: str) -> str:
        observation = self.tools.run(action, argument, self.context)
        self.steps.append(GoldStep(thought, action, argument, observation))
        return observation

    def topic(self, title: str, attrs: Iterable[str]) -> str:
        e = self.entities[title]
        its = {"she": "her", "he": "his"}.get(e.attrs.get("pronoun", ""), "its")
        return " and ".join(f"{its} {self.topic_of(e.kind, a)}" for a in attrs)

    def finish(self, thought: str, answer: str) -> str:
        if self.tools.run("finish", answer, self.context) != answer:
            raise WorldError(f"Generator bug: finish[{answer}] does not return the answer.")
        self.steps.append(GoldStep(thought, "finish", answer, None))
        return answer


def numeric_roots(by_kind: dict[str, list[Entity]],
                  operand: Callable[[str, str], Any]) -> Iterator[tuple[tuple, tuple[str, ...]]]:
    """(definition, root titles) of every NUMERIC task a world allows: each operand known (``operand(title, path)``
    is not None), the two values apart, and a difference taken from the larger."""
    for d in NUMERIC:
        roots = [[e for e in by_kind[k] if all(operand(e.title, p) is not None
                                               for i, p in d[3] if d[1][i] == k)] for k in d[1]]
        pairs = [(a,) for a in roots[0]] if len(roots) == 1 else [
            (a, b) for i, a in enumerate(roots[0]) for b in roots[1][(i + 1 if d[1][0] == d[1][1] else 0):]]
        for pair in pairs:
            values = [operand(pair[i].title, p) for i, p in d[3]]
            if d[4] == "sub" and len(pair) == 2 and values[0] < values[1]:
                pair, values = pair[::-1], values[::-1]
            if values[0] != values[1] and (d[4] != "sub" or values[0] > values[1]):
                yield d, tuple(e.title for e in pair)


class NumericPlan(NamedTuple):
    """What a numeric task reads, where, and what it calculates."""

    visits: dict[str, list[str]]  # title -> attributes to read there, in the order of reading
    parts: str  # the operands as a thought names them: "the population of Marl and the population of Drume"
    values: list[Any]  # the operands' values, in the expression's order
    expression: str  # what calculate[] is given
    operation: str  # the operation's words: "their sum"
    op: str  # the operation: sub, diff, sum or floordiv

    def check(self, result: str) -> None:
        """The calculator's ``result`` of the expression is what the operation gives."""
        a, b = self.values
        expected = a + b if self.op == "sum" else a // b if self.op == "floordiv" else a - b
        if result != str(expected):
            raise WorldError(f"Generator bug: calculate[{self.expression}] gave {result}, expected {expected}.")


def numeric_plan(g: GoldSteps, e: list[Entity], d: tuple, names: list[str]) -> NumericPlan:
    """The plan of the numeric task ``d`` over the roots ``e``; ``names``: how its thought names each root."""
    _, _, _, operands, op = d
    visits: dict[str, list[str]] = {}
    parts, values = [], []
    for i, path in operands:
        *link, attr = path.split(">")
        if link:
            visits.setdefault(e[i].title, []).append(link[0])
        target = g.entities[e[i].attrs[link[0]]] if link else e[i]
        visits.setdefault(target.title, []).append(attr)
        of = f" of the {FACTS[e[i].kind, link[0]].topic}" if link else ""
        parts.append(f"the {g.topic_of(target.kind, attr)}{of} of {names[i]}")
        values.append(target.attrs[attr])
    if op == "diff":
        values.sort(reverse=True)
    if operands[0][0] == operands[1][0] and ">" not in operands[0][1] + operands[1][1]:  # two facts of one entity
        parts[0] = parts[0].rsplit(" of ", 1)[0]
    template, operation = OPERATIONS[op]
    return NumericPlan(visits, " and ".join(parts), values, template.format(*values), operation, op)


def arithmetic_tasks(n: int, rng: random.Random, used: set[str], gold: Callable[[], GoldSteps],
                     phrase: Callable[..., str]) -> list[Task]:
    """``n`` ARITHMETIC tasks drawn by ``rng`` whose questions are not in ``used`` (each is added to it): a fresh
    ``gold()`` calculates and finishes, ``phrase(move, **words)`` words its "arithmetic" and "result" thoughts."""
    tasks: list[Task] = []
    while len(tasks) < n:
        name, question_t, expression_t = ARITHMETIC[rng.randrange(len(ARITHMETIC))]
        a, b = rng.randint(12, 99), rng.randint(3, 40)
        numbers = {"a": a, "b": b, "c": rng.randint(2, min(500, a * b - 1, a * a - 1)), "p": a * b}
        question, expression = question_t.format(**numbers), expression_t.format(**numbers)
        if question in used:
            continue
        used.add(question)
        g = gold()
        result = g.act(phrase("arithmetic", expression=expression), "calculate", expression)
        g.finish(phrase("result", result=result), result)
        meta = {"subtype": name, "expression": expression, "hops": 0, "lookups": 0, "needs_lookup": False}
        tasks.append(Task("", question, result, "arithmetic", trajectory=g.steps, meta=meta))
    return tasks


def task_text(task: Task) -> str:
    """The question and every step's thought, argument and observation, lower-cased: where a task names things."""
    steps = [f"{s.thought}\n{s.argument}\n{s.observation or ''}" for s in task.trajectory]
    return "\n".join([task.question, *steps]).lower()
