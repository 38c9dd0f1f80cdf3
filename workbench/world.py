"""The synthetic demo world: a seeded fictional encyclopedia and task suites with gold trajectories.

No language model has read about the cities, rivers and novels it invents, so a model must
search, look up and calculate to answer. ``generate_world(seed)`` builds ~340 entities
(countries, cities, rivers, mountains, people, novels, companies), one short article each, and
five kinds of task (TASK_TYPES) whose gold trajectories were produced by running the real tools
on the corpus. Test entities never appear in
a train or dev trajectory, and dev entities never appear in a train one.

    >>> world = generate_world(0)
    >>> task = world.tasks["test"][0]
    >>> task.trajectory[-1].action, task.trajectory[-1].argument == task.answer
    ('finish', True)
    >>> load_tasks("dev", types=["arithmetic"])[0].type
    'arithmetic'
"""

from __future__ import annotations

import json
import math
import os
import random
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from .corpus import Corpus, Document
from .errors import CorpusError, InputError, WorldError
from .tools import ToolContext, default_tools
from .types import TASK_TYPES, GoldStep, Task
from .world_text import (ARITHMETIC, BRIDGES, COMPARISONS, FACTS, GENRES, INDUSTRIES, KINDS, NOUNS, NUMERIC,
                         OPERATIONS, THOUGHTS, NameMaker, build_article, fix_articles, fmt_number, opening_words, ref)

__all__ = ["Entity", "World", "generate_world", "write_world", "load_world", "load_tasks", "example_questions",
           "SPLITS", "GENERATOR_VERSION", "DEMO_DATA_DIR"]

GENERATOR_VERSION = "1"
SPLITS = ("train", "dev", "test")
DEMO_DATA_DIR = Path(__file__).resolve().parents[1] / "demo_data"
PRESENT = 2020  # the world's "now": people born later than PRESENT - lifespan are alive
COUNTS = {"country": 12, "city": 64, "river": 22, "mountain": 22, "book": 64, "company": 44}
OCCUPATIONS = {"novelist": 32, "entrepreneur": 28, "engineer": 16, "painter": 16, "composer": 16}
WORKS = {"engineer": ("bridges", 3, 90), "painter": ("paintings", 40, 900), "composer": ("symphonies", 1, 15)}
HELD_OUT = {"test": 20, "dev": 20}  # tasks per type in each held-out split
TRAIN_MAX = 400  # train tasks per type, at most
Where = dict[str, dict[str, tuple[int, str]]]  # title -> attribute -> (sentence index, lookup keyword)
_FILES = ("corpus.jsonl", "tasks/train.jsonl", "tasks/dev.jsonl", "tasks/test.jsonl", "world.json")


@dataclass
class Entity:
    """One thing the world knows about: its title, kind and the attributes its article states."""

    title: str
    kind: str  # one of world_text.KINDS
    attrs: dict[str, Any] = field(default_factory=dict)  # numbers, titles or lists of titles


@dataclass
class World:
    """A generated (or loaded) world: its entities, their corpus and the task suites by split."""

    seed: int
    entities: list[Entity]
    corpus: Corpus
    tasks: dict[str, list[Task]]
    meta: dict[str, Any] = field(default_factory=dict)  # how it was made: the held-out countries

    def entity(self, title: str) -> Entity | None:
        return next((e for e in self.entities if e.title.lower() == title.lower()), None)

    def counts(self) -> dict[str, Any]:
        kinds = {k: sum(e.kind == k for e in self.entities) for k in KINDS}
        tasks = {s: {t: sum(x.type == t for x in self.tasks.get(s, [])) for t in TASK_TYPES} for s in SPLITS}
        return {"entities": len(self.entities), "kinds": kinds, "tasks": tasks}

    def save(self, directory: str | Path) -> Path:
        """Write corpus.jsonl, tasks/{train,dev,test}.jsonl and world.json under ``directory``."""
        root = Path(directory)
        (root / "tasks").mkdir(parents=True, exist_ok=True)
        self.corpus.to_jsonl(root / "corpus.jsonl")
        for split in SPLITS:
            lines = [json.dumps(t.to_dict(), ensure_ascii=False) + "\n" for t in self.tasks.get(split, [])]
            (root / "tasks" / f"{split}.jsonl").write_text("".join(lines), encoding="utf-8")
        info = {"seed": self.seed, "generator_version": GENERATOR_VERSION, **self.meta, "counts": self.counts(),
                "corpus_fingerprint": self.corpus.fingerprint}
        (root / "world.json").write_text(json.dumps(info, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        return root


# ---------------------------------------------------------------- entities and articles


def _log_uniform(rng: random.Random, low: int, high: int, step: int) -> int:
    return int(round(math.exp(rng.uniform(math.log(low), math.log(high))) / step)) * step


def _draw(seed: int) -> tuple[dict[str, str], dict[str, dict[str, Any]], dict[str, str], random.Random]:
    """Kinds, full attributes and home country of every entity (before any article is written)."""
    rng, names = random.Random(seed), NameMaker(random.Random(f"{seed}:names"))
    kind: dict[str, str] = {}
    attrs: dict[str, dict[str, Any]] = {}

    def new(k: str, title: str, **values: Any) -> str:
        kind[title], attrs[title] = k, values
        return title

    def of(k: str, **where: Any) -> list[str]:
        return [t for t in attrs if kind[t] == k and all(attrs[t].get(a) == v for a, v in where.items())]

    countries = [new("country", names.country(), independence=rng.randint(1640, 1960),
                     area=rng.randrange(18000, 420000, 100)) for _ in range(COUNTS["country"])]

    def spread(n: int, each: int) -> list[str]:  # every country gets ``each``, the rest fall at random
        return countries * each + [rng.choice(countries) for _ in range(n - each * len(countries))]

    for country in spread(COUNTS["mountain"], 1):
        new("mountain", names.mountain(), country=country, height=rng.randint(1100, 7900),
            climbed=rng.randint(1770, 1990))
    for country in spread(COUNTS["river"], 1):
        new("river", names.river(), country=country, length=rng.randrange(60, 2400),
            source=rng.choice(of("mountain", country=country)), discharge=rng.randrange(15, 4000))
    for country in spread(COUNTS["city"], 3):  # three at least: a capital and two more to compare
        new("city", names.city(), country=country, river=rng.choice(of("river", country=country)),
            founded=rng.randint(780, 1650), population=_log_uniform(rng, 2500, 650000, 100),
            elevation=rng.randint(3, 1900))
    cities = of("city")
    for country in countries:
        here = sorted(of("city", country=country), key=lambda c: (-attrs[c]["population"], c))
        attrs[here[0]]["population"] = int(round(attrs[here[0]]["population"] * rng.uniform(1.3, 2.0), -2))
        attrs[here[0]]["capital_of"] = country
        total = sum(attrs[c]["population"] for c in here)
        attrs[country].update(capital=here[0], population=int(round(total * rng.uniform(1.8, 4.5), -3)),
                              highest=max(of("mountain", country=country), key=lambda m: (attrs[m]["height"], m)),
                              longest=max(of("river", country=country), key=lambda r: (attrs[r]["length"], r)))
    for r in of("river"):
        attrs[r]["cities"] = [c for c in cities if attrs[c]["river"] == r][:3]
    for m in of("mountain"):
        attrs[m]["rivers"] = [r for r in of("river") if attrs[r]["source"] == m][:3]
    for occupation, n in OCCUPATIONS.items():
        for _ in range(n):
            pronoun = rng.choice(("she", "he"))
            born = rng.randint(1760, 1955)
            died = born + rng.randint(42, 94)
            values: dict[str, Any] = {"occupation": occupation, "pronoun": pronoun, "birth_year": born,
                                      "birthplace": rng.choice(cities), "died": died if died < PRESENT else None}
            if occupation in WORKS:
                name, low, high = WORKS[occupation]
                values[name] = rng.randint(low, high)
            new("person", names.person(pronoun), **values)
    home = {t: (t if kind[t] == "country" else attrs[t].get("country")) for t in attrs}
    home.update({p: home[attrs[p]["birthplace"]] for p in of("person")})

    def near(person: str, stay: float) -> str:  # a city in the person's country, mostly
        local = [c for c in cities if home[c] == home[person]]
        return rng.choice(local if rng.random() < stay else cities)

    for kind_name, occupation in (("book", "novelist"), ("company", "entrepreneur")):
        people = of("person", occupation=occupation)
        makers = people + [rng.choice(people) for _ in range(COUNTS[kind_name] - len(people))]
        for person in makers:
            born, end = attrs[person]["birth_year"], attrs[person]["died"] or PRESENT - 1
            year = rng.randint(born + 20, min(end, born + 72))
            if kind_name == "book":
                title = new("book", names.book(), author=person, genre=rng.choice(GENRES),
                            published=year, pages=rng.randrange(96, 980), setting=near(person, 0.8))
            else:
                suffix = rng.choice(sorted(INDUSTRIES))
                title = new("company", names.company(suffix), industry=INDUSTRIES[suffix], founder=person, founded=year,
                            hq=near(person, 0.85), employees=_log_uniform(rng, 40, 95000, 10))
            home[title] = home[person]
            attrs[person].setdefault("books" if kind_name == "book" else "companies", []).append(title)
    return kind, attrs, home, rng


def _articles(seed: int) -> tuple[list[Entity], Corpus, Where, dict[str, str]]:
    """The entities as their articles state them, the corpus, where each fact sits, and home countries."""
    kind, attrs, home, rng = _draw(seed)
    entities, docs, where = [], [], {}
    for k in KINDS:
        for title in (t for t in attrs if kind[t] == k):
            values = {a: v for a, v in attrs[title].items() if v not in (None, [])}
            sentences, where[title] = build_article(k, title, values, opening_words(k, values), rng)
            stated = {a: v for a, v in values.items() if a in where[title] or a == "pronoun"}
            entities.append(Entity(title, k, stated))
            docs.append(Document(title, " ".join(sentences), sentences=sentences, meta={"kind": k, **stated}))
    _check(entities, docs, where)
    return entities, Corpus(docs, name=f"demo-world-{seed}"), where, home


def _check(entities: list[Entity], docs: list[Document], where: Where) -> None:
    """Articles mention only the entities they link to, and every lookup keyword finds its own sentence."""
    titles = [e.title.lower() for e in entities]
    for entity, doc in zip(entities, docs):
        values = [x for v in entity.attrs.values() for x in (v if isinstance(v, list) else [v])]
        linked = {entity.title.lower()} | {str(x).lower() for x in values}
        stray = [t for t in titles if t in doc.text.lower() and t not in linked]
        if stray or not 2 <= len(doc.sentences) <= 5:
            raise WorldError(f"Generator bug in the article of {entity.title}: stray names {stray} or bad length.")
        for attr, (index, keyword) in where[entity.title].items():
            first = next((i for i, s in enumerate(doc.sentences) if keyword and keyword in s.lower()), index)
            if first != index:
                raise WorldError(f"Generator bug: lookup[{keyword}] in {entity.title} finds sentence {first}, "
                                 f"not {index}.")


# ---------------------------------------------------------------- gold trajectories


class _Gold:
    """Writes a gold trajectory by running the real tools, one step at a time."""

    def __init__(self, corpus: Corpus, entities: dict[str, Entity], where: Where) -> None:
        self.tools, self.context = default_tools(), ToolContext(corpus=corpus)
        self.entities, self.where = entities, where
        self.steps: list[GoldStep] = []

    def act(self, thought: str, action: str, argument: str) -> str:
        observation = self.tools.run(action, argument, self.context)
        self.steps.append(GoldStep(thought, action, argument, observation))
        return observation

    def topic(self, title: str, attrs: Iterable[str]) -> str:
        e = self.entities[title]
        its = {"she": "her", "he": "his"}.get(e.attrs.get("pronoun", ""), "its")
        return " and ".join(f"{its} {FACTS[e.kind, a].topic}" for a in attrs)

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

    def finish(self, thought: str, answer: str) -> str:
        if self.tools.run("finish", answer, self.context) != answer:
            raise WorldError(f"Generator bug: finish[{answer}] does not return the answer.")
        self.steps.append(GoldStep(thought, "finish", answer, None))
        return answer


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
    for d in NUMERIC:
        roots = [[e for e in by_kind[k] if all(_operand(entities, e.title, p) is not None
                                               for i, p in d[3] if d[1][i] == k)] for k in d[1]]
        pairs = [(a,) for a in roots[0]] if len(roots) == 1 else [
            (a, b) for i, a in enumerate(roots[0]) for b in roots[1][(i + 1 if d[1][0] == d[1][1] else 0):]]
        for pair in pairs:
            values = [_operand(entities, pair[i].title, p) for i, p in d[3]]
            if d[4] == "sub" and len(pair) == 2 and values[0] < values[1]:
                pair, values = pair[::-1], values[::-1]
            if values[0] != values[1] and (d[4] != "sub" or values[0] > values[1]):
                out["numeric"].append(("numeric", d[0], tuple(e.title for e in pair), d))
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
    _, _, question, operands, op = d
    names = [ref(x.title, x.kind) for x in e]
    visits: dict[str, list[str]] = {}  # title -> attributes to read there, in the order of reading
    parts, values = [], []
    for i, path in operands:
        *link, attr = path.split(">")
        if link:
            visits.setdefault(e[i].title, []).append(link[0])
        target = g.entities[e[i].attrs[link[0]]] if link else e[i]
        visits.setdefault(target.title, []).append(attr)
        of = f" of the {FACTS[e[i].kind, link[0]].topic}" if link else ""
        parts.append(f"the {FACTS[target.kind, attr].topic}{of} of {names[i]}")
        values.append(target.attrs[attr])
    if op == "diff":
        values.sort(reverse=True)
    if operands[0][0] == operands[1][0] and ">" not in operands[0][1] + operands[1][1]:  # two facts of one entity
        parts[0] = parts[0].rsplit(" of ", 1)[0]
    template, operation = OPERATIONS[op]
    expression = template.format(*values)
    order = list(visits)
    thought = THOUGHTS["numeric"].format(parts=" and ".join(parts), operation=operation, title=order[0])
    for n, title in enumerate(order):
        says = g.visit(thought, title, visits[title])
        if n + 1 < len(order):
            following = order[n + 1]
            thought = THOUGHTS["next"].format(says=says, title=following, topic=g.topic(following, visits[following]))
    result = g.act(THOUGHTS["calculate"].format(says=says, expression=expression), "calculate", expression)
    a, b = values
    expected = a + b if op == "sum" else a // b if op == "floordiv" else a - b
    if result != str(expected):
        raise WorldError(f"Generator bug: calculate[{expression}] gave {result}, expected {expected}.")
    g.finish(THOUGHTS["result"].format(result=result), result)
    meta["expression"] = expression
    return question.format(**dict(zip("ab", names))), result, []


# ---------------------------------------------------------------- suites and splits


def _mentions(task: Task, titles: list[tuple[str, str]]) -> list[str]:
    """Titles of every entity named anywhere in the question or the trajectory (case-insensitive)."""
    steps = [f"{s.thought}\n{s.argument}\n{s.observation or ''}" for s in task.trajectory]
    text = "\n".join([task.question, *steps]).lower()
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
    tasks: list[Task] = []
    while len(tasks) < n:
        name, question_t, expression_t = ARITHMETIC[rng.randrange(len(ARITHMETIC))]
        a, b = rng.randint(12, 99), rng.randint(3, 40)
        numbers = {"a": a, "b": b, "c": rng.randint(2, min(500, a * b - 1, a * a - 1)), "p": a * b}
        question, expression = question_t.format(**numbers), expression_t.format(**numbers)
        if question in used:
            continue
        used.add(question)
        g = _Gold(corpus, {}, {})
        result = g.act(THOUGHTS["arithmetic"].format(expression=expression), "calculate", expression)
        g.finish(THOUGHTS["result"].format(result=result), result)
        meta = {"subtype": name, "expression": expression, "hops": 0, "lookups": 0, "needs_lookup": False}
        tasks.append(Task("", question, result, "arithmetic", trajectory=g.steps, meta=meta))
    return tasks


def _suites(seed: int, corpus: Corpus, entities: dict[str, Entity], where: Where,
            home: dict[str, str]) -> tuple[dict[str, list[Task]], dict[str, Any]]:
    """Fill test, then dev, then train, so that no held-out entity ever appears in a train trajectory.

    Test and dev draw on the entities of a few held-out countries (the world is clustered by
    country, so their tasks stay inside them); train takes every task that touches none of the
    entities test or dev touched.
    """
    rng = random.Random(f"{seed}:splits")
    specs = {t: _interleave(s, rng) for t, s in _specs(entities, where).items()}
    titles = [(t, t.lower()) for t in entities]
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
                built[key] = _build(spec, corpus, entities, where, seed)
                built[key].entities = _mentions(built[key], titles)
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
        suites[split] += _arithmetic(want, arithmetic_rng, used, corpus)
    for split, tasks in suites.items():
        tasks.sort(key=lambda t: TASK_TYPES.index(t.type))  # stable: keeps the dealt order within a type
        numbers: dict[str, int] = {}
        for task in tasks:
            numbers[task.type] = numbers.get(task.type, 0) + 1
            task.split, task.id = split, f"{split}-{task.type}-{numbers[task.type]:04d}"
    return suites, {"held_out_countries": held}


def generate_world(seed: int = 0) -> World:
    """Build the world for ``seed``: the same seed always gives byte-identical files."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise InputError(f"The world seed must be a non-negative integer, got {seed!r}.")
    entities, corpus, where, home = _articles(seed)
    tasks, meta = _suites(seed, corpus, {e.title: e for e in entities}, where, home)
    return World(seed, entities, corpus, tasks, meta)


def write_world(seed: int, out: str | Path) -> Path:
    """Generate the world for ``seed`` and save it under ``out`` (what `workbench world` runs)."""
    return generate_world(seed).save(out)


# ---------------------------------------------------------------- reading


def load_world(directory: str | Path | None = None) -> World:
    """Read a saved world; with None: $WORKBENCH_DEMO_DATA, else the repository's demo_data/, else seed 0 in memory.

    Worlds are cached per process (keyed by folder and file times), so treat the result as read-only.
    """
    if directory is None:
        env = os.environ.get("WORKBENCH_DEMO_DATA", "").strip()
        if env:
            directory = env
        elif (DEMO_DATA_DIR / "corpus.jsonl").is_file():
            directory = DEMO_DATA_DIR
        else:  # installed without the repository: the data is a function of the code anyway
            return _generated(0)
    root = Path(directory).expanduser().resolve()
    missing = [f for f in _FILES if not (root / f).is_file()]
    if missing:
        raise WorldError(f"No demo world at {root} (missing {', '.join(missing)}). "
                         f"Generate one with `workbench world --seed 0 --out {root}`.")
    stamp = tuple((f, (root / f).stat().st_mtime_ns, (root / f).stat().st_size) for f in _FILES)
    return _read(str(root), stamp)


@lru_cache(maxsize=2)
def _generated(seed: int) -> World:
    return generate_world(seed)


@lru_cache(maxsize=8)
def _read(root: str, stamp: tuple) -> World:
    path, where = Path(root), "world.json"
    try:
        info = json.loads((path / "world.json").read_text(encoding="utf-8"))
        corpus = Corpus.from_jsonl(path / "corpus.jsonl", name=f"demo-world-{info['seed']}")
        tasks: dict[str, list[Task]] = {}
        for split in SPLITS:
            tasks[split] = []
            for n, line in enumerate((path / "tasks" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines(), 1):
                where = f"tasks/{split}.jsonl:{n}"
                if line.strip():
                    tasks[split].append(Task.from_dict(json.loads(line)))
    except (ValueError, KeyError, TypeError, AttributeError, CorpusError) as err:
        raise WorldError(f"The demo world at {root} cannot be read ({where}: {err}). "
                         f"Regenerate it with `workbench world --seed 0 --out {root}`.") from err
    entities = [Entity(d.title, str(d.meta.get("kind", "")), {k: v for k, v in d.meta.items() if k != "kind"})
                for d in corpus]
    skip = {"seed", "generator_version", "counts", "corpus_fingerprint"}
    return World(int(info["seed"]), entities, corpus, tasks, {k: v for k, v in info.items() if k not in skip})


def load_tasks(split: str, world_dir: str | Path | None = None, types: Iterable[str] | str | None = None) -> list[Task]:
    """The tasks of one split (train, dev or test), optionally only some TASK_TYPES."""
    if split not in SPLITS:
        raise InputError(f"Unknown split {split!r}. Available: {', '.join(SPLITS)}.")
    wanted = (types,) if isinstance(types, str) else tuple(types) if types is not None else TASK_TYPES
    unknown = [t for t in wanted if t not in TASK_TYPES]
    if unknown:
        raise InputError(f"Unknown task type(s) {unknown}. Available: {', '.join(TASK_TYPES)}.")
    return [t for t in load_world(world_dir).tasks[split] if t.type in wanted]


def example_questions(n: int = 8, split: str = "dev") -> list[str]:
    """``n`` questions of the default world for an example box, dealt across the task types."""
    if n < 1:
        raise InputError(f"n must be at least 1, got {n}.")
    tasks = load_tasks(split)
    by_type = [[t for t in tasks if t.type == kind] for kind in TASK_TYPES]
    dealt = [g[i].question for i in range(max(map(len, by_type), default=0)) for g in by_type if i < len(g)]
    return dealt[:n]
