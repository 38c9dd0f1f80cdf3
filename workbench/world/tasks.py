"""The demo world's task suites: gold trajectories made by running the real tools (``gold.py``), and the splits.

``build_suites`` turns a generated world (entities, their corpus and where each fact sits) into
train / dev / test task lists. Test and dev draw on a few held-out countries; train takes only
tasks that touch none of the entities test or dev touched, so no held-out entity ever appears in
a train trajectory. Every gold step is run through ``default_tools()`` and checked as it is made.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable

from ..corpus import Corpus
from ..errors import WorldError
from ..types import TASK_TYPES, Task
from .gold import GoldSteps, arithmetic_tasks, numeric_plan, numeric_roots, task_text
from .records import SPLITS, Entity, Where
from .text import BRIDGES, COMPARISONS, FACTS, KINDS, NOUNS, THOUGHTS, fix_articles, fmt_number, ref

__all__ = ["build_suites", "SuiteKit", "HELD_OUT", "TRAIN_MAX"]

HELD_OUT = {"test": 20, "dev": 20}  # tasks per type in each held-out split
TRAIN_MAX = 400  # train tasks per type, at most


# ---------------------------------------------------------------- gold trajectories


class _Gold(GoldSteps):
    """Writes a gold trajectory of world 1: search a title, look up what its opening does not say."""

    def says(self, title: str, attr: str) -> str:
        e = self.entities[title]
        value, name = e.attrs[attr], ref(title, e.kind)
        text = FACTS[e.kind, attr].says.format(e=name, E=name[0].upper() + name[1:], v=_value_text(value))
        return fix_articles(text) + "."

    def visit(self, thought: str, title: str, attrs: list[str]) -> str:
        """Search ``title``, look up what its opening does not say; return what was learnt."""
        observation = self.act(thought, "search", title)
        for index in sorted({self.where[title][a][0] for a in attrs if self.where[title][a][0] >= 3}):
            here = [a for a in attrs if self.where[title][a][0] == index]
            keyword = self.where[title][here[0]][1]
            thought = THOUGHTS["lookup"].format(topic=self.topic(title, here), keyword=keyword)
            found = self.act(thought, "lookup", keyword)
            shown = all(_value_text(self.entities[title].attrs[a]) in found for a in here)
            if not found.startswith("(Result 1 /") or not shown:
                raise WorldError(f"Generator bug: lookup[{keyword}] in {title} returned {found!r}.")
        for a in attrs:
            if self.where[title][a][0] < 3 and _value_text(self.entities[title].attrs[a]) not in observation:
                raise WorldError(f"Generator bug: search[{title}] does not show its {a}: {observation!r}.")
        return " ".join(self.says(title, a) for a in attrs)


def _value_text(value: Any) -> str:
    return fmt_number(value) if isinstance(value, int) else str(value)


def _answer(value: Any, entities: dict[str, Entity]) -> tuple[str, list[str]]:
    """The answer as finish[] writes it, and other spellings that count: 48200 / 48,200, Drume / the Drume."""
    if isinstance(value, int):
        return str(value), [fmt_number(value)] if fmt_number(value) != str(value) else []
    river = isinstance(value, str) and value in entities and entities[value].kind == "river"
    return str(value), [f"the {value}"] if river else []


def _spec_key(spec: tuple) -> str:
    return ":".join([spec[0], spec[1], "|".join(spec[2])])


def _specs(entities: dict[str, Entity], where: Where) -> dict[str, list[tuple]]:
    """Every task the world allows, cheaply described: (type, subtype, root titles, definition[, deck])."""
    by_kind = {k: [e for e in entities.values() if e.kind == k] for k in KINDS}
    out: dict[str, list[tuple]] = {t: [] for t in TASK_TYPES if t != "arithmetic"}
    for e in entities.values():  # deal lookup and no-lookup facts apart, so suites get both
        out["single_hop"] += [("single_hop", f"{e.kind}.{a}", (e.title,), a, f"{e.kind}.{a}/{where[e.title][a][0] > 2}")
                              for a in e.attrs if (e.kind, a) in FACTS]
    for d in BRIDGES:
        out["bridge"] += [("bridge", f"{d[0]}.{d[1]}>{d[2]}.{d[3]}", (e.title,), d) for e in by_kind[d[0]]
                          if d[1] in e.attrs and d[3] in entities[e.attrs[d[1]]].attrs]
    for d in COMPARISONS:
        have = [e for e in by_kind[d[0]] if d[1] in e.attrs]
        out["comparison"] += [("comparison", f"{d[0]}.{d[1]}", (a.title, b.title), d) for i, a in enumerate(have)
                              for b in have[i + 1:] if a.attrs[d[1]] != b.attrs[d[1]]]
    out["numeric"] = [("numeric", d[0], roots, d)
                      for d, roots in numeric_roots(by_kind, lambda title, path: _operand(entities, title, path))]
    return out


def _operand(entities: dict[str, Entity], title: str, path: str) -> Any:
    *link, attr = path.split(">")
    e = entities[title]
    if link:
        e = entities.get(e.attrs.get(link[0], ""))
    return None if e is None else e.attrs.get(attr)


def _build(spec: tuple, corpus: Corpus, entities: dict[str, Entity], where: Where, seed: int) -> Task:
    """Turn a spec into a Task with its gold trajectory (id and split are set by the caller)."""
    kind, subtype, roots, d = spec[:4]
    g, meta = _Gold(corpus, entities, where), {"subtype": subtype}
    rng = random.Random(f"{seed}:{_spec_key(spec)}")  # per task, so a task never depends on which came before
    build = {"single_hop": _single_hop, "bridge": _bridge, "comparison": _comparison, "numeric": _numeric}[kind]
    question, answer, aliases = build(g, [entities[t] for t in roots], d, rng, meta)
    lookups = sum(s.action == "lookup" for s in g.steps)
    meta.update(hops=sum(s.action == "search" for s in g.steps), lookups=lookups, needs_lookup=lookups > 0)
    return Task("", question, answer, kind, aliases=aliases, trajectory=g.steps, meta=meta)


def _single_hop(g: _Gold, e: list[Entity], attr: str, rng: random.Random, meta: dict) -> tuple[str, str, list[str]]:
    title, name = e[0].title, ref(e[0].title, e[0].kind)
    says = g.visit(THOUGHTS["search"].format(title=title, topic=g.topic(title, [attr])), title, [attr])
    answer, aliases = _answer(e[0].attrs[attr], g.entities)
    g.finish(THOUGHTS["answer"].format(says=says, answer=answer), answer)
    return FACTS[e[0].kind, attr].question.format(e=name), answer, aliases


def _bridge(g: _Gold, e: list[Entity], d: tuple, rng: random.Random, meta: dict) -> tuple[str, str, list[str]]:
    (_, link, kind_b, attr, question), title = d, e[0].title
    middle = e[0].attrs[link]
    says = g.visit(THOUGHTS["bridge"].format(title=title, topic=g.topic(title, [link]), noun=NOUNS[kind_b],
                                             target=FACTS[kind_b, attr].topic), title, [link])
    says = g.visit(THOUGHTS["next"].format(says=says, title=middle, topic=g.topic(middle, [attr])), middle, [attr])
    answer, aliases = _answer(g.entities[middle].attrs[attr], g.entities)
    g.finish(THOUGHTS["answer"].format(says=says, answer=answer), answer)
    return question.format(e=ref(title, e[0].kind)), answer, aliases


def _comparison(g: _Gold, e: list[Entity], d: tuple, rng: random.Random, meta: dict) -> tuple[str, str, list[str]]:
    kind, attr, wins, question, verdict = d
    if rng.random() < 0.5:  # either entity may be named first
        e = e[::-1]
    (a, b), names = e, [ref(x.title, x.kind) for x in e]
    topic = FACTS[kind, attr].topic
    says = g.visit(THOUGHTS["compare"].format(topic=topic, a=names[0], b=names[1], title=a.title,
                                              its=g.topic(a.title, [attr]).split()[0]), a.title, [attr])
    says = g.visit(THOUGHTS["next"].format(says=says, title=b.title, topic=g.topic(b.title, [attr])), b.title, [attr])
    values = [a.attrs[attr], b.attrs[attr]]
    win = values.index(max(values) if wins == "max" else min(values))
    answer, aliases = _answer(e[win].title, g.entities)
    g.finish(THOUGHTS["compare_end"].format(
        says=says, win=fmt_number(values[win]), lose=fmt_number(values[1 - win]), answer=answer,
        rel="is more than" if wins == "max" else "is earlier than", verdict=verdict.format(w=names[win])), answer)
    meta["values"] = {a.title: values[0], b.title: values[1]}
    return question.format(a=names[0], b=names[1]), answer, aliases


def _numeric(g: _Gold, e: list[Entity], d: tuple, rng: random.Random, meta: dict) -> tuple[str, str, list[str]]:
    question = d[2]
    names = [ref(x.title, x.kind) for x in e]
    plan = numeric_plan(g, e, d, names)
    visits, expression = plan.visits, plan.expression
    order = list(visits)
    thought = THOUGHTS["numeric"].format(parts=plan.parts, operation=plan.operation, title=order[0])
    for n, title in enumerate(order):
        says = g.visit(thought, title, visits[title])
        if n + 1 < len(order):
            following = order[n + 1]
            thought = THOUGHTS["next"].format(says=says, title=following, topic=g.topic(following, visits[following]))
    result = g.act(THOUGHTS["calculate"].format(says=says, expression=expression), "calculate", expression)
    plan.check(result)
    g.finish(THOUGHTS["result"].format(result=result), result)
    meta["expression"] = expression
    return question.format(**dict(zip("ab", names))), result, []


# ---------------------------------------------------------------- suites and splits


def _mentions(task: Task, titles: list[tuple[str, str]]) -> list[str]:
    """Titles of every entity named anywhere in the question or the trajectory (case-insensitive)."""
    text = task_text(task)
    return [title for title, low in titles if low in text]


def _interleave(specs: list[tuple], rng: random.Random) -> list[tuple]:
    """Shuffle within each subtype, then deal the subtypes round-robin so every suite mixes them."""
    groups: dict[str, list[tuple]] = {}
    for spec in specs:
        groups.setdefault(spec[-1] if len(spec) > 4 else spec[1], []).append(spec)
    decks = [groups[k] for k in sorted(groups)]
    for deck in decks:
        rng.shuffle(deck)
    rng.shuffle(decks)
    return [deck[i] for i in range(max(map(len, decks), default=0)) for deck in decks if i < len(deck)]


def _arithmetic(n: int, rng: random.Random, used: set[str], corpus: Corpus) -> list[Task]:
    return arithmetic_tasks(n, rng, used, lambda: GoldSteps(corpus, {}, {}),
                            lambda move, **words: THOUGHTS[move].format(**words))


@dataclass(frozen=True)
class SuiteKit:
    """How one version of the world makes its tasks; build_suites deals them into splits the same way for all."""

    specs: Callable[[dict[str, Entity], Any], dict[str, list[tuple]]]  # every task the world allows, by type
    build: Callable[[tuple, Corpus, dict[str, Entity], Any, int], Task]  # a spec -> a Task with its gold trajectory
    mentions: Callable[[dict[str, Entity]], Callable[[Task], list[str]]]  # -> the titles a task touches
    arithmetic: Callable[[int, random.Random, set[str], Corpus], list[Task]]  # n arithmetic tasks


def build_suites(seed: int, corpus: Corpus, entities: dict[str, Entity], where: Any,
                 home: dict[str, str], kit: SuiteKit | None = None) -> tuple[dict[str, list[Task]], dict[str, Any]]:
    """Fill test, then dev, then train, so that no held-out entity ever appears in a train trajectory.

    Test and dev draw on the entities of a few held-out countries (the world is clustered by
    country, so their tasks stay inside them); train takes every task that touches none of the
    entities test or dev touched. ``kit``: how the tasks are made (the demo world's, version 1, when None).
    """
    kit = kit or _KIT
    rng = random.Random(f"{seed}:splits")
    specs = {t: _interleave(s, rng) for t, s in kit.specs(entities, where).items()}
    mentions = kit.mentions(entities)
    built: dict[str, Task] = {}

    def fill(specs: list[tuple], want: int, allowed: set[str] | None, blocked: set[str], used: set[str]) -> list[Task]:
        """The first ``want`` specs whose tasks stay inside ``allowed`` (if given) and avoid ``blocked``."""
        picked: list[Task] = []
        for spec in specs:
            if len(picked) >= want:
                break
            if (allowed is not None and not set(spec[2]) <= allowed) or set(spec[2]) & blocked:
                continue
            key = _spec_key(spec)
            if key not in built:
                built[key] = kit.build(spec, corpus, entities, where, seed)
                built[key].entities = mentions(built[key])
            task = built[key]
            touched = set(task.entities)
            if task.question in used or (allowed is not None and not touched <= allowed) or touched & blocked:
                continue
            used.add(task.question)
            picked.append(task)
        return picked

    countries = sorted(t for t, e in entities.items() if e.kind == "country")
    rng.shuffle(countries)
    suites: dict[str, list[Task]] = {s: [] for s in SPLITS}
    held: dict[str, list[str]] = {}
    used: set[str] = set()
    blocked: set[str] = set()
    for split in ("test", "dev"):
        for n_countries in range(2, len(countries)):
            held[split], attempt = countries[:n_countries], set(used)
            allowed = {t for t in entities if home[t] in held[split]}
            picked = {t: fill(specs[t], HELD_OUT[split], allowed, blocked, attempt) for t in specs}
            if all(len(p) == HELD_OUT[split] for p in picked.values()):
                break
        else:
            raise WorldError(f"The world is too small to fill the {split} split; raise the entity counts.")
        countries = countries[n_countries:]
        used = attempt
        suites[split] = [t for p in picked.values() for t in p]
        blocked |= {title for task in suites[split] for title in task.entities}
    suites["train"] = [t for s in specs.values() for t in fill(s, TRAIN_MAX, None, blocked, used)]
    arithmetic_rng = random.Random(f"{seed}:arithmetic")
    for split in ("test", "dev", "train"):
        want = HELD_OUT.get(split, TRAIN_MAX)
        suites[split] += kit.arithmetic(want, arithmetic_rng, used, corpus)
    for split, tasks in suites.items():
        tasks.sort(key=lambda t: TASK_TYPES.index(t.type))  # stable: keeps the dealt order within a type
        numbers: dict[str, int] = {}
        for task in tasks:
            numbers[task.type] = numbers.get(task.type, 0) + 1
            task.split, task.id = split, f"{split}-{task.type}-{numbers[task.type]:04d}"
    return suites, {"held_out_countries": held}


def _title_mentions(entities: dict[str, Entity]) -> Callable[[Task], list[str]]:
    titles = [(t, t.lower()) for t in entities]
    return lambda task: _mentions(task, titles)


_KIT = SuiteKit(specs=_specs, build=_build, mentions=_title_mentions, arithmetic=_arithmetic)
