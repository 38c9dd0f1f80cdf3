"""FEVER-style claims about the demo world, each with a gold trajectory run through the real tools.

``fever_claims(world, split)`` writes SUPPORTS claims (a fact an article states), REFUTES claims
(the same fact with another value the article does not state) and NOT ENOUGH INFO claims (a kind
of fact no article states), only about entities the split's own tasks use, so test claims stay
about test entities (the demo world's held-out guarantee). ``load_suite("demo-fever:test")``
serves them as a suite.
"""

from __future__ import annotations

import random
import re
from typing import Any

from ..corpus import base_title
from ..errors import WorldError
from ..tools.core import Toolbox, ToolContext, default_tools
from ..types import FEVER_LABELS, GoldStep, Task
from .generate import World
from .records import Entity
from .text import FACTS, UNITS, fix_articles, fmt_number, ref

__all__ = ["fever_claims"]

_S, _R, _N = FEVER_LABELS


def fever_claims(world: World, split: str, per_label: int) -> list[Task]:
    """``per_label`` claims of each label about ``split``'s entities, labels interleaved."""
    return _FeverMaker(world, split).tasks(per_label)


# (kind, lookup keyword, topic, claim): facts no article states, for NOT ENOUGH INFO. {n} is a drawn number.
_ABSENT = (
    ("city", "mayor", "its mayor", "The mayor of {e} is elected every {n} years.", (3, 7)),
    ("city", "twinned", "twin towns", "{E} is twinned with {n} towns abroad.", (2, 9)),
    ("river", "navigable", "shipping", "{E} is navigable for {n} kilometres.", (20, 400)),
    ("river", "freezes", "ice", "{E} freezes over every winter.", None),
    ("mountain", "glacier", "glaciers", "{E} has a glacier on its northern face.", None),
    ("mountain", "cable car", "a cable car", "A cable car runs to the summit of {e}.", None),
    ("person", "cello", "music played", "{E} played the cello.", None),
    ("person", "married", "marriages", "{E} was married {n} times.", (2, 4)),
    ("book", "translated", "translations", "{E} was translated into {n} languages.", (3, 40)),
    ("book", "film", "film adaptations", "{E} was adapted as a film in {n}.", (1930, 2015)),
    ("company", "exports", "exports", "{E} exports to {n} countries.", (3, 60)),
    ("company", "stock exchange", "a stock listing", "{E} is listed on a stock exchange.", None),
    ("country", "official languages", "languages", "{E} has {n} official languages.", (2, 4)),
    ("country", "national flower", "a national flower", "The national flower of {e} is the lily.", None),
)


def _name(entity: Any) -> str:
    """How a claim names the entity: "the Drume"; a qualified title (demo2) as "the river Marl"."""
    base = base_title(entity.title)
    if base == entity.title:
        return ref(entity.title, entity.kind)
    qualifier = entity.title[len(base):].strip(" ()")
    return f"the city of {base}" if qualifier == "city" else f"the {qualifier} {base}"


def _value_text(value: Any) -> str:
    return fmt_number(value) if isinstance(value, int) else base_title(str(value))  # "Marl (city)" -> "Marl"


def _mentions(text: str, value: str) -> bool:
    """``value`` as a whole word or number in ``text`` (1769 is not in 17690, 48,200 not in 148,200)."""
    return re.search(rf"(?<![\w,]){re.escape(value)}(?!\w|,\d)", text, re.IGNORECASE) is not None


class _FeverMaker:
    """Writes claims about one split's entities, each with a gold trajectory run through the real tools.

    Only entities that the split's own tasks search are used, and a claim is kept only if every
    title in its text and trajectory is one the split's tasks already touch: test claims stay
    about test entities (the demo world's held-out guarantee).
    """

    def __init__(self, world: World, split: str) -> None:
        self.world, self.corpus, self.tools = world, world.corpus, default_tools()
        tasks = world.tasks[split]
        self.allowed = {e.lower() for t in tasks for e in t.entities}
        searched = {g.argument.lower() for t in tasks for g in t.trajectory if g.action == "search"}
        self.entities = [e for e in world.entities if e.title.lower() in searched]  # corpus order
        self.rng = random.Random(f"demo-fever:{split}:{world.seed}")
        self.split = split
        text = " ".join(d.text.lower() for d in self.corpus)
        stated = [a[1] for a in _ABSENT if re.search(rf"\b{a[1]}\b", text)]
        if stated:  # the articles' wording changed: these claims would no longer lack evidence
            raise WorldError(f"demo-fever: the corpus now mentions {stated}; pick other NOT ENOUGH INFO facts.")

    def tasks(self, per_label: int) -> list[Task]:
        made: dict[str, list[Task]] = {label: [] for label in FEVER_LABELS}
        facts = [(e, a) for e in self.entities for a in e.attrs if (e.kind, a) in FACTS]
        self.rng.shuffle(facts)
        counts: dict[str, int] = {}  # deal one fact per entity before any entity's second one
        rank = [counts.__setitem__(e.title, counts.get(e.title, 0) + 1) or counts[e.title] for e, _ in facts]
        dealt = [facts[i] for i in sorted(range(len(facts)), key=lambda i: (rank[i], i))]
        for entity, attr in dealt:
            label = min((_S, _R), key=lambda lab: len(made[lab]))  # alternate, so both labels mix entities
            if len(made[label]) >= per_label:
                break
            task = self._fact(entity, attr, label)
            if task is not None:
                made[label].append(task)
        absent = [(e, a) for e in self.entities for a in _ABSENT if a[0] == e.kind]
        self.rng.shuffle(absent)
        for entity, spec in absent:
            if len(made[_N]) >= per_label:
                break
            task = self._absent(entity, spec)
            if task is not None and all(t.question != task.question for t in made[_N]):
                made[_N].append(task)
        # Interleave the labels, so Suite.limit (which deals by type, here all "fever") keeps them balanced.
        out = [made[label][i] for i in range(per_label) for label in FEVER_LABELS if i < len(made[label])]
        for k, task in enumerate(out, 1):
            task.id = f"{self.split}-fever-{k:04d}"
        return out

    def _says(self, entity: Entity, attr: str, value: Any) -> str:
        name = _name(entity)
        text = FACTS[entity.kind, attr].says.format(e=name, E=name[0].upper() + name[1:], v=_value_text(value))
        return fix_articles(text) + "."

    def _altered(self, entity: Entity, attr: str) -> Any:
        """A value of the same kind as the true one that the article does not state, or None."""
        value = entity.attrs[attr]
        if isinstance(value, int):
            year = "year" in FACTS[entity.kind, attr].topic
            step = 10 ** max(0, len(str(value)) - 2)  # keep the look of the number: 47500 -> 66000
            options = [value + d * s for d in (-1, 1) for s in range(3, 61)] if year else [
                max(1, round(value * f / step) * step) for f in (0.5, 0.7, 1.4, 2.0)]
        else:
            linked = self.world.entity(value)
            if linked is not None:  # another entity of the same kind, from this split only
                options = [e.title for e in self.world.entities if e.kind == linked.kind
                           and e.title.lower() in self.allowed]
            else:  # a word such as a genre or an occupation: another one the world uses
                options = sorted({e.attrs[attr] for e in self.world.entities if e.kind == entity.kind
                                  and isinstance(e.attrs.get(attr), str)})
        text = self.corpus.get(entity.title).text
        options = [o for o in options if o != value and not _mentions(text, _value_text(o))
                   and not (isinstance(o, int) and "year" in FACTS[entity.kind, attr].topic and o >= 2020)]
        return self.rng.choice(options) if options else None

    def _fact(self, entity: Entity, attr: str, label: str) -> Task | None:
        """A SUPPORTS claim (the fact as stated) or a REFUTES one (an altered value), or None."""
        doc, true = self.corpus.get(entity.title), _value_text(entity.attrs[attr])
        index = next((i for i, s in enumerate(doc.sentences) if _mentions(s, true)), None)
        claimed = entity.attrs[attr] if label == _S else self._altered(entity, attr)
        if index is None or claimed is None:
            return None
        its = {"she": "her", "he": "his"}.get(entity.attrs.get("pronoun", ""), "its")
        topic = f"{its} {FACTS[entity.kind, attr].topic}"
        ctx, steps = ToolContext(corpus=self.corpus), []
        seen = _act(self.tools, ctx, steps, f"I need to search {entity.title} and find {topic}.", "search",
                    entity.title)
        if index >= 3:  # search shows three sentences; the rest is reached by the fact's lookup keyword
            keyword = next((u.keyword for u in UNITS[entity.kind]
                            if attr in u.attrs and u.keyword in doc.sentences[index].lower()), None)
            if keyword is None:
                return None
            seen = _act(self.tools, ctx, steps, f"The opening sentences do not give {topic}, so I will look up "
                        f"{keyword}.", "lookup", keyword)
        if not _mentions(seen, true):
            return None
        verdict = "This supports the claim" if label == _S else f"The claim says {_value_text(claimed)}, so it is false"
        steps.append(GoldStep(f"{self._says(entity, attr, entity.attrs[attr])} {verdict}. So the answer is {label}.",
                              "finish", label, None))
        meta = {"attribute": attr, "claimed": _value_text(claimed), "true": true}
        return self._task(self._says(entity, attr, claimed), label, entity, steps, meta)

    def _absent(self, entity: Entity, spec: tuple) -> Task | None:
        """A NOT ENOUGH INFO claim: a fact of a type no article of the world states."""
        _, keyword, topic, template, numbers = spec
        name = _name(entity)
        claim = template.format(e=name, E=name[0].upper() + name[1:], n=self.rng.randint(*numbers) if numbers else 0)
        ctx, steps = ToolContext(corpus=self.corpus), []
        _act(self.tools, ctx, steps, f"I need to search {entity.title} and find anything about {topic}.", "search",
             entity.title)
        _act(self.tools, ctx, steps, f"The opening sentences say nothing about {topic}, so I will look up {keyword}.",
             "lookup", keyword)
        steps.append(GoldStep(f"The article of {entity.title} says nothing about {topic}, so the claim can be neither "
                              f"confirmed nor refuted. So the answer is {_N}.", "finish", _N, None))
        return self._task(claim, _N, entity, steps, {"attribute": f"absent:{keyword}", "claimed": keyword, "true": ""})

    def _task(self, claim: str, label: str, entity: Entity, steps: list[GoldStep], meta: dict[str, Any]) -> Task | None:
        text = " ".join([claim] + [f"{s.thought} {s.argument} {s.observation or ''}" for s in steps]).lower()
        named = [d.title for d in self.corpus if d.title.lower() in text]
        if any(t.lower() not in self.allowed for t in named):
            return None  # the trajectory would reveal an entity of another split
        evidence = [entity.title] if label != _N else []
        return Task("", claim, label, type="fever", split=self.split, entities=named, trajectory=steps,
                    meta={"label": label, "evidence": evidence, "entity": entity.title, **meta})


def _act(tools: Toolbox, ctx: ToolContext, steps: list[GoldStep], thought: str, action: str, argument: str) -> str:
    observation = tools.run(action, argument, ctx)
    steps.append(GoldStep(thought, action, argument, observation))
    return observation
