"""Tasks of the richer demo world (demo2): gold trajectories over prose, dealt into splits as version 1's are.

What differs from version 1 (``tasks.py``): a question is phrased one of several ways and may name an
entity by an alias or as "the city of Marl"; the gold trajectory searches what the question (or the
last observation) names, and when that opens a namesake it searches the qualified title; it looks
a fact up by a word of its sentence and looks up again when the first result is another sentence;
comparisons are asked as "which", as "is A more than B" (yes/no) and as "are both A and B ..."
(yes/no); answers are spans of the text; the thoughts vary in wording. Splits come from the same
``build_suites`` (no held-out entity in a train trajectory), with ``SuiteKit`` supplying these tasks.
"""

from __future__ import annotations

import random
from typing import Any, Callable

from ..corpus import Corpus, base_title
from ..errors import WorldError
from ..tools.core import ToolContext
from ..tools.matching import keywords_for
from ..types import TASK_TYPES, Task
from .gold import GoldSteps, arithmetic_tasks, numeric_plan, numeric_roots, task_text
from .phrasing import BOTH_QUESTIONS, BRIDGE_QUESTIONS, MORE_QUESTIONS, QUESTIONS, say
from .prose import number_forms
from .records import Entity
from .tasks import SuiteKit, build_suites
from .text import BRIDGES, COMPARISONS, FACTS, KINDS, NOUNS

__all__ = ["build_suites2", "KIT2", "called"]

_OPENING = 3  # sentences a search shows
_TOPICS = {("company", "industry"): "industry"}  # facts version 1 never asks about


def _topic(kind: str, attr: str) -> str:
    return _TOPICS.get((kind, attr)) or FACTS[kind, attr].topic
_BOTH_WHAT = {"country": "in {v}", "occupation": "{v}s", "genre": "{v} novels", "industry": "{v} companies"}


def called(entity: Entity, rng: random.Random) -> tuple[str, str]:
    """(how a question names the entity, what the gold trajectory searches for it)."""
    base = base_title(entity.title)
    qualifier = entity.title[len(base):].strip(" ()")
    if qualifier:
        return f"the {qualifier} {base}" if qualifier != "city" else f"the city of {base}", base
    aliases = entity.attrs.get("aliases") or []
    if aliases and entity.kind in ("country", "person", "company") and rng.random() < 0.25:
        alias = aliases[0]
        return (f"the {alias}" if entity.kind == "country" else alias), alias
    return (f"the {base}" if entity.kind == "river" else base), base


class _Gold2(GoldSteps):
    """Writes a gold trajectory of world 2 by running the real tools, checking each step as it is made."""

    topic_of = staticmethod(_topic)

    def __init__(self, corpus: Corpus, entities: dict[str, Entity], where: dict[str, Any], rng: random.Random) -> None:
        super().__init__(corpus, entities, where)
        self.rng = rng
        self.namesakes = 0  # searches that opened a namesake, so the qualified title was searched next
        self.facts: list[list[Any]] = []  # [title, sentence index] of each fact read, as HotpotQA's supporting facts

    def act(self, thought: str, action: str, argument: str) -> str:
        observation = super().act(thought, action, argument)
        if "(Note: " in observation or self.context.loop:
            raise WorldError(f"Generator bug: {action}[{argument}] met the loop guard: {observation!r}.")
        return observation

    def says(self, title: str, attr: str) -> str:
        e = self.entities[title]
        name = base_title(title)
        return say("says", self.rng, topic=_topic(e.kind, attr), name=name, value=self.where[title][attr][2])

    def read(self, title: str, attrs: list[str], query: str, thought: str) -> str:
        """Open ``title`` (searching ``query`` first), look up what its opening does not show; return what was learnt."""
        if any(s.action == "search" and s.argument == query for s in self.steps):
            query = title  # searched before (it opened a namesake): the exact title now
        observation = self.act(thought, "search", query)
        document = self.context.document
        if document is None or document.title != title:
            opened = document.title if document is not None else query
            nudge = say("namesake", self.rng, opened=opened, noun=NOUNS[self.entities[title].kind], title=title)
            observation = self.act(nudge, "search", title)
            self.namesakes += 1
            document = self.context.document
        if document is None or document.title != title:
            raise WorldError(f"Generator bug: search[{title}] does not open its article.")
        seen = observation
        for a in attrs:
            index, keyword, shown = self.where[title][a]
            if [title, index] not in self.facts:
                self.facts.append([title, index])
            sentence = document.sentences[index]
            if index < _OPENING or sentence in seen:
                if shown.lower() not in seen.lower():
                    raise WorldError(f"Generator bug: {title}'s {a} ({shown}) is not in {seen!r}.")
                continue
            keyword = self._fresh(title, index, keyword)
            thought = say("lookup", self.rng, topic=self.topic(title, [a]), keyword=keyword)
            for _ in range(6):
                found = self.act(thought, "lookup", keyword)
                seen += " " + found
                if sentence in found:
                    break
                thought = say("again", self.rng, topic=self.topic(title, [a]), keyword=keyword)
            else:
                raise WorldError(f"Generator bug: lookup[{keyword}] in {title} never reaches sentence {index}.")
        return " ".join(self.says(title, a) for a in attrs)

    def _fresh(self, title: str, index: int, keyword: str) -> str:
        """``keyword``, unless its lookups would show an observation this trajectory has seen (a filler other
        articles share): then another word of the sentence, as the loop guard would otherwise object."""
        seen = {s.observation for s in self.steps}
        document = self.context.document
        for word in (keyword, *keywords_for(document.sentences, index)):
            scratch = ToolContext(corpus=self.context.corpus)
            self.tools.run("search", title, scratch)
            shown = [self.tools.run("lookup", word, scratch) for _ in range(6)]
            reach = next((i for i, o in enumerate(shown) if document.sentences[index] in o), None)
            if reach is not None and not seen & set(shown[: reach + 1]):
                return word
        raise WorldError(f"Generator bug: no lookup in {title} reaches sentence {index} without repeating itself.")


def _answer(g: _Gold2, title: str, attr: str) -> tuple[str, list[str]]:
    """The answer as the text writes it, and other spellings that count."""
    value, shown = g.entities[title].attrs[attr], g.where[title][attr][2]
    if isinstance(value, int) and not isinstance(value, bool):
        return shown, [f for f in number_forms(value) if f != shown]
    if isinstance(value, str) and value in g.entities:
        name = base_title(value)
        return name, list(dict.fromkeys(x for x in (value, shown) if x != name))
    return shown, []


def _stated(entities: dict[str, Entity], where: dict[str, Any], title: str, attr: str) -> bool:
    return attr in where.get(title, {}) and attr in entities[title].attrs


def _specs(entities: dict[str, Entity], where: dict[str, Any]) -> dict[str, list[tuple]]:
    """Every task the world allows: (type, subtype, root titles, definition, deck)."""
    by_kind = {k: [e for e in entities.values() if e.kind == k] for k in KINDS}
    out: dict[str, list[tuple]] = {t: [] for t in TASK_TYPES if t != "arithmetic"}
    for e in entities.values():
        out["single_hop"] += [("single_hop", f"{e.kind}.{a}", (e.title,), a, f"{e.kind}.{a}/{where[e.title][a][0] > 2}")
                              for a in where[e.title] if (e.kind, a) in QUESTIONS and a in e.attrs]
    for d in BRIDGES:
        out["bridge"] += [("bridge", f"{d[0]}.{d[1]}>{d[2]}.{d[3]}", (e.title,), d, f"{d[0]}.{d[1]}>{d[3]}")
                          for e in by_kind[d[0]] if _stated(entities, where, e.title, d[1])
                          and _stated(entities, where, e.attrs[d[1]], d[3])]
    for d in COMPARISONS:
        have = [e for e in by_kind[d[0]] if _stated(entities, where, e.title, d[1])]
        for form in ("which", "more"):
            out["comparison"] += [("comparison", f"{form}.{d[0]}.{d[1]}", (a.title, b.title), (form, *d),
                                   f"{form}.{d[0]}.{d[1]}") for i, a in enumerate(have) for b in have[i + 1:]
                                  if a.attrs[d[1]] != b.attrs[d[1]]]
    for kind, attr in BOTH_QUESTIONS:
        have = [e for e in by_kind[kind] if _stated(entities, where, e.title, attr)]
        out["comparison"] += [("comparison", f"both.{kind}.{attr}", (a.title, b.title), ("both", kind, attr),
                               f"both.{kind}.{attr}/{a.attrs[attr] == b.attrs[attr]}")
                              for i, a in enumerate(have) for b in have[i + 1:]]
    out["numeric"] = [("numeric", d[0], roots, d, d[0]) for d, roots in
                      numeric_roots(by_kind, lambda title, path: _operand(entities, where, title, path))]
    return out


def _operand(entities: dict[str, Entity], where: dict[str, Any], title: str, path: str) -> Any:
    *link, attr = path.split(">")
    if link:
        if not _stated(entities, where, title, link[0]):
            return None
        title = entities[title].attrs[link[0]]
    return entities[title].attrs.get(attr) if _stated(entities, where, title, attr) else None


def _build(spec: tuple, corpus: Corpus, entities: dict[str, Entity], where: dict[str, Any], seed: int) -> Task:
    kind, subtype, roots, d = spec[:4]
    rng = random.Random(f"demo2:{seed}:{kind}:{subtype}:{'|'.join(roots)}")
    g, meta = _Gold2(corpus, entities, where, rng), {"subtype": subtype}
    build: Callable[..., tuple[str, str, list[str]]] = {
        "single_hop": _single_hop, "bridge": _bridge, "comparison": _comparison, "numeric": _numeric}[kind]
    question, answer, aliases = build(g, [entities[t] for t in roots], d, meta)
    lookups = sum(s.action == "lookup" for s in g.steps)
    searches = sum(s.action == "search" for s in g.steps)
    meta.update(hops=searches - g.namesakes, lookups=lookups, needs_lookup=lookups > 0, searches=searches,
                namesakes=g.namesakes, supporting_facts=g.facts,
                supporting_titles=sorted({t for t, _ in g.facts}))  # evaluation reports their recall
    return Task("", question[0].upper() + question[1:], answer, kind, aliases=aliases, trajectory=g.steps, meta=meta)


def _single_hop(g: _Gold2, e: list[Entity], attr: str, meta: dict) -> tuple[str, str, list[str]]:
    named, query = called(e[0], g.rng)
    says = g.read(e[0].title, [attr], query, say("search", g.rng, name=query, topic=g.topic(e[0].title, [attr])))
    answer, aliases = _answer(g, e[0].title, attr)
    g.finish(say("answer", g.rng, says=says, answer=answer), answer)
    return g.rng.choice(QUESTIONS[e[0].kind, attr]).format(e=named), answer, aliases


def _bridge(g: _Gold2, e: list[Entity], d: tuple, meta: dict) -> tuple[str, str, list[str]]:
    (_, link, kind_b, attr, question), title = d, e[0].title
    named, query = called(e[0], g.rng)
    middle = e[0].attrs[link]
    thought = say("bridge", g.rng, topic="the " + _topic(e[0].kind, link), name=query, noun=NOUNS[kind_b],
                  target=_topic(kind_b, attr))
    says = g.read(title, [link], query, thought)
    hop = base_title(middle)
    says = g.read(middle, [attr], hop, say("next", g.rng, says=says, name=hop, topic=g.topic(middle, [attr])))
    answer, aliases = _answer(g, middle, attr)
    g.finish(say("answer", g.rng, says=says, answer=answer), answer)
    phrasing = g.rng.choice((question, *BRIDGE_QUESTIONS.get((d[0], link, attr), ())))
    return phrasing.format(e=named), answer, aliases


def _comparison(g: _Gold2, e: list[Entity], d: tuple, meta: dict) -> tuple[str, str, list[str]]:
    if g.rng.random() < 0.5:  # either entity may be named first
        e = e[::-1]
    (a, b), called_ab = e, [called(x, g.rng) for x in e]
    names, queries = [c[0] for c in called_ab], [c[1] for c in called_ab]
    if d[0] == "both":
        return _both(g, e, d, names, queries, meta)
    form, kind, attr, wins, question, verdict = d
    topic = _topic(kind, attr)
    says = g.read(a.title, [attr], queries[0], say("compare", g.rng, topic=topic, a=queries[0], b=queries[1]))
    says = g.read(b.title, [attr], queries[1], say("next", g.rng, says=says, name=queries[1],
                                                   topic=g.topic(b.title, [attr])))
    values = [a.attrs[attr], b.attrs[attr]]
    win = values.index(max(values) if wins == "max" else min(values))
    shown = [g.where[x.title][attr][2] for x in e]
    rel = "is more than" if wins == "max" else "is earlier than"
    meta["values"] = {a.title: values[0], b.title: values[1]}
    if form == "more":
        answer = "yes" if win == 0 else "no"
        says = f"{says} {shown[win]} {rel} {shown[1 - win]}, so {verdict.format(w=base_title(e[win].title))}."
        g.finish(say("yes_no_end", g.rng, says=says, answer=answer), answer)
        return MORE_QUESTIONS[kind, attr].format(a=names[0], b=names[1]), answer, []
    answer = base_title(e[win].title)
    g.finish(say("compare_end", g.rng, says=says, win=shown[win], lose=shown[1 - win], rel=rel,
                 verdict=verdict.format(w=answer), answer=answer), answer)
    return question.format(a=names[0], b=names[1]), answer, [e[win].title] if e[win].title != answer else []


def _both(g: _Gold2, e: list[Entity], d: tuple, names: list[str], queries: list[str],
          meta: dict) -> tuple[str, str, list[str]]:
    _, kind, attr = d
    pick = g.rng.randrange(2)
    value = e[pick].attrs[attr]
    v = base_title(value) if value in g.entities else str(value)
    what = _BOTH_WHAT[attr].format(v=v)
    says = g.read(e[0].title, [attr], queries[0], say("both", g.rng, a=queries[0], b=queries[1], what=what))
    says = g.read(e[1].title, [attr], queries[1], say("next", g.rng, says=says, name=queries[1],
                                                      topic=g.topic(e[1].title, [attr])))
    yes = all(x.attrs[attr] == value for x in e)
    odd = next((x for x in e if x.attrs[attr] != value), None)
    says += " Both are " + what + "." if yes else f" {base_title(odd.title)} is not {what}."
    answer = "yes" if yes else "no"
    g.finish(say("yes_no_end", g.rng, says=says, answer=answer), answer)
    meta["asked"] = v
    return g.rng.choice(BOTH_QUESTIONS[kind, attr]).format(a=names[0], b=names[1], v=v), answer, []


def _numeric(g: _Gold2, e: list[Entity], d: tuple, meta: dict) -> tuple[str, str, list[str]]:
    question = d[2]
    called_e = [called(x, g.rng) for x in e]
    names = [c[0] for c in called_e]
    plan = numeric_plan(g, e, d, [c[1] for c in called_e])  # the thought names each root as it searches it
    visits, expression = plan.visits, plan.expression
    queries = {x.title: c[1] for x, c in zip(e, called_e)}
    for title in visits:  # an entity reached through a link is searched by its name
        queries.setdefault(title, base_title(title))
    order = list(visits)
    thought = say("numeric", g.rng, parts=plan.parts, operation=plan.operation, name=queries[order[0]])
    for n, title in enumerate(order):
        says = g.read(title, visits[title], queries[title], thought)
        if n + 1 < len(order):
            nxt = order[n + 1]
            thought = say("next", g.rng, says=says, name=queries[nxt], topic=g.topic(nxt, visits[nxt]))
    result = g.act(say("calculate", g.rng, says=says, expression=expression), "calculate", expression)
    plan.check(result)
    g.finish(say("result", g.rng, result=result), result)
    meta["expression"] = expression
    return question.format(**dict(zip("ab", names))), result, []


def _arithmetic(n: int, rng: random.Random, used: set[str], corpus: Corpus) -> list[Task]:
    rng = random.Random(f"demo2:arithmetic:{rng.getrandbits(64)}")  # other numbers than world 1's, same seed
    return arithmetic_tasks(n, rng, used, lambda: _Gold2(corpus, {}, {}, rng),
                            lambda move, **words: say(move, rng, **words))


def _needle_mentions(entities: dict[str, Entity]) -> Callable[[Task], list[str]]:
    """A task touches every entity whose name (without qualifier) or alias its text shows: namesakes all count."""
    needles = [(t, [base_title(t).lower(), *(str(a).lower() for a in e.attrs.get("aliases") or [])])
               for t, e in entities.items()]

    def mentions(task: Task) -> list[str]:
        text = task_text(task)
        return [t for t, words in needles if any(w in text for w in words)]

    return mentions


KIT2 = SuiteKit(specs=_specs, build=_build, mentions=_needle_mentions, arithmetic=_arithmetic)


def build_suites2(seed: int, corpus: Corpus, entities: dict[str, Entity], where: dict[str, Any],
                  home: dict[str, str]) -> tuple[dict[str, list[Task]], dict[str, Any]]:
    """demo2's train / dev / test tasks (see ``build_suites``: no held-out entity in a train trajectory)."""
    return build_suites(seed, corpus, entities, where, home, kit=KIT2)
