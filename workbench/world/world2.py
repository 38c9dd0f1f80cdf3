"""The richer demo world, ``demo2`` (world version 2): the same kinds of fictional entity, written as real text.

Version 1 (``demo``, ``generate.py``) stays as it is: the shipped adapter, the tests and the README's
figures depend on it. Version 2 draws other entities (its own seed stream), then makes them look like
an encyclopedia's: namesakes told apart by a qualifier ("Marl (city)", "Marl (river)", "Marl (novel)")
and a near-duplicate company ("Marl Brewing"); aliases (a country's official name, "the Drume River",
"L. Brandt"); articles of several paragraphs in prose (``prose.py``), the asked fact anywhere. Its
tasks (``tasks2.py``) have several question phrasings, yes/no comparisons, answers copied from the
text and gold thoughts in varied wording.

    >>> world = generate_world2(0)                                  # doctest: +SKIP
    >>> world.corpus.get("Marl (city)") is not None                  # doctest: +SKIP
"""

from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..corpus import Corpus, Document, base_title
from ..errors import InputError, WorldError
from .generate import World, _draw
from .prose import prose_words, write_article
from .records import Entity
from .tasks2 import build_suites2
from .text import KINDS, opening_words

__all__ = ["generate_world2", "load_world2", "write_world2", "WORLD2_VERSION", "prose_name"]

WORLD2_VERSION = "2"
NAMESAKE_RIVERS = 10  # cities whose river takes the city's name: "X (city)" and "X (river)"
NAMESAKE_NOVELS = 8  # novels titled after the city they are set in: "X (novel)"
NAMESAKE_COMPANIES = 8  # companies named after their headquarters' city: "X Brewing"
_ALIAS_STYLES = {"country": ("Republic of {n}", "Kingdom of {n}", "Grand Duchy of {n}", "Federal Republic of {n}"),
                 "company": ("{n} Ltd.", "{n} & Co.", "{n} Company")}


def prose_name(title: str, kind: str) -> str:
    """How an article names an entity: its title without the qualifier; rivers take "the" ("the river Marl")."""
    base = base_title(title)
    if kind != "river":
        return base
    return f"the river {base}" if base != title else f"the {base}"


def _namesakes(kind: dict[str, str], attrs: dict[str, dict[str, Any]], home: dict[str, str],
               rng: random.Random) -> dict[str, str]:
    """Old title -> new title, so that some entities share a name as in a real encyclopedia."""
    renamed: dict[str, str] = {}
    cities = sorted(t for t in attrs if kind[t] == "city")
    rng.shuffle(cities)
    for city in cities:
        river = attrs[city]["river"]
        if sum(v.endswith("(river)") for v in renamed.values()) >= NAMESAKE_RIVERS:
            break
        if river not in renamed and city not in renamed:
            renamed[city], renamed[river] = f"{city} (city)", f"{city} (river)"
    books = sorted(t for t in attrs if kind[t] == "book" and home[t] == home[attrs[t]["setting"]])
    rng.shuffle(books)
    used: set[str] = set()
    for book in books[:NAMESAKE_NOVELS * 2]:
        city = attrs[book]["setting"]
        if city in used or sum(v.endswith("(novel)") for v in renamed.values()) >= NAMESAKE_NOVELS:
            continue
        used.add(city)
        renamed[book] = f"{city} (novel)"
        renamed.setdefault(city, f"{city} (city)")
    companies = sorted(t for t in attrs if kind[t] == "company" and home[t] == home[attrs[t]["hq"]])
    rng.shuffle(companies)
    hqs: set[str] = set()
    for company in companies:
        city = attrs[company]["hq"]
        if city not in hqs and len(hqs) < NAMESAKE_COMPANIES:
            hqs.add(city)
            renamed[company] = f"{city} {company.split()[-1]}"
    return renamed


def _apply(renamed: dict[str, str], kind: dict[str, str], attrs: dict[str, dict[str, Any]],
           home: dict[str, str]) -> tuple[dict[str, str], dict[str, dict[str, Any]], dict[str, str]]:
    def new(value: Any) -> Any:
        if isinstance(value, list):
            return [renamed.get(v, v) for v in value]
        return renamed.get(value, value) if isinstance(value, str) else value

    kind = {renamed.get(t, t): k for t, k in kind.items()}
    attrs = {renamed.get(t, t): {a: new(v) for a, v in values.items()} for t, values in attrs.items()}
    home = {renamed.get(t, t): renamed.get(h, h) for t, h in home.items()}
    return kind, attrs, home


def _values(title: str, k: str, attrs: dict[str, Any], kind: dict[str, str], rng: random.Random) -> dict[str, Any]:
    """The words write_article needs: linked entities as prose names, an alias, dates, a size."""
    def named(value: Any) -> Any:
        if isinstance(value, list):
            return [prose_name(v, kind[v]) if v in kind else v for v in value]
        return prose_name(value, kind[value]) if isinstance(value, str) and value in kind else value

    values: dict[str, Any] = {a: named(v) for a, v in attrs.items() if v not in (None, [])}
    values.update(title=title, name=base_title(title))
    extras = opening_words(k, {a: v for a, v in attrs.items()})
    values["size"] = extras.get("size", "")
    if k == "person":
        values["century"] = extras["century"] or "twentieth"
        values["born_md"] = (rng.randint(1, 28), rng.randint(1, 12))
        if attrs.get("died"):
            values["died_md"] = (rng.randint(1, 28), rng.randint(1, 12))
        first, last = title.split()[0], title.split()[-1]
        values["alias"] = f"{first[0]}. {last}"
    elif k in _ALIAS_STYLES:
        values["alias"] = rng.choice(_ALIAS_STYLES[k]).format(n=base_title(title))
    elif k == "river":
        values["alias"] = f"{base_title(title)} River"
    elif k == "mountain":
        values["alias"] = title.removeprefix("Mount ")
    return values


def generate_world2(seed: int = 0) -> World:
    """The richer world for ``seed``: the same seed always gives the same articles and tasks."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise InputError(f"The world seed must be a non-negative integer, got {seed!r}.")
    kind, attrs, home, _ = _draw(f"demo2:{seed}")  # type: ignore[arg-type]  # its own stream: other entities
    rng = random.Random(f"demo2:{seed}:prose")
    renamed = _namesakes(kind, attrs, home, rng)
    kind, attrs, home = _apply(renamed, kind, attrs, home)
    entities, docs, where = [], [], {}
    for k in KINDS:
        for title in (t for t in attrs if kind[t] == k):
            values = _values(title, k, attrs[title], kind, rng)
            paragraphs, where[title] = write_article(k, values, rng)
            sentences = [s for p in paragraphs for s in p]
            stated = {a: v for a, v in attrs[title].items() if a in where[title] or a == "pronoun"}
            aliases = [values["alias"]] if values.get("alias") else []
            entities.append(Entity(title, k, {**stated, "aliases": aliases}))
            docs.append(Document(title, "\n\n".join(" ".join(p) for p in paragraphs), sentences=sentences,
                                 meta={"kind": k, "aliases": aliases, "paragraphs": [len(p) for p in paragraphs],
                                       **stated}))
    _check(entities, docs, where, kind)
    corpus = Corpus(docs, name=f"demo2-world-{seed}")
    tasks, meta = build_suites2(seed, corpus, {e.title: e for e in entities}, where, home)
    meta.update(world="demo2", generator_version=WORLD2_VERSION, namesakes=len(renamed))
    return World(seed, entities, corpus, tasks, meta)


def _check(entities: list[Entity], docs: list[Document], where: dict[str, Any], kind: dict[str, str]) -> None:
    """Each fact's words stand in the sentence recorded for it; no name hides inside a template word."""
    vocabulary = prose_words()
    for entity, doc in zip(entities, docs):
        base = base_title(entity.title).lower()
        if base in vocabulary:
            raise WorldError(f"Generator bug: the name {entity.title!r} hides inside a template word.")
        for attr, (index, keyword, shown) in where[entity.title].items():
            sentence = doc.sentences[index]
            if shown.lower() not in sentence.lower() or (keyword and keyword not in sentence.lower()):
                raise WorldError(f"Generator bug in {entity.title}: {attr} ({shown!r}, lookup[{keyword}]) is not in "
                                 f"sentence {index}: {sentence!r}.")


@lru_cache(maxsize=2)
def load_world2(seed: int = 0) -> World:
    """The demo2 world, generated in memory (a second or two) and cached per process; treat it as read-only."""
    return generate_world2(seed)


def write_world2(seed: int, out: str | Path) -> Path:
    """Generate the demo2 world for ``seed`` and save it under ``out`` (corpus.jsonl, tasks/, world.json)."""
    return generate_world2(seed).save(out)
