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
from typing import Any, Callable, Iterable

from ..corpus import Corpus, Document
from ..errors import CorpusError, InputError, WorldError
from ..types import TASK_TYPES, Task
from .names import NameMaker
from .records import SPLITS, Entity, Where
from .tasks import build_suites
from .text import GENRES, INDUSTRIES, KINDS, build_article, opening_words

__all__ = ["World", "generate_world", "write_world", "load_world", "load_tasks", "select_tasks", "example_questions",
           "GENERATOR_VERSION", "DEMO_DATA_DIR"]

GENERATOR_VERSION = "1"
DEMO_DATA_DIR = Path(__file__).resolve().parents[2] / "demo_data"
PRESENT = 2020  # the world's "now": people born later than PRESENT - lifespan are alive
COUNTS = {"country": 12, "city": 64, "river": 22, "mountain": 22, "book": 64, "company": 44}
OCCUPATIONS = {"novelist": 32, "entrepreneur": 28, "engineer": 16, "painter": 16, "composer": 16}
WORKS = {"engineer": ("bridges", 3, 90), "painter": ("paintings", 40, 900), "composer": ("symphonies", 1, 15)}
_FILES = ("corpus.jsonl", "tasks/train.jsonl", "tasks/dev.jsonl", "tasks/test.jsonl", "world.json")


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
# (the tasks and their gold trajectories are made in world_tasks.py)


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


def generate_world(seed: int = 0) -> World:
    """Build the world for ``seed``: the same seed always gives byte-identical files."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise InputError(f"The world seed must be a non-negative integer, got {seed!r}.")
    entities, corpus, where, home = _articles(seed)
    tasks, meta = build_suites(seed, corpus, {e.title: e for e in entities}, where, home)
    return World(seed, entities, corpus, tasks, meta)


def write_world(seed: int, out: str | Path) -> Path:
    """Generate the world for ``seed`` and save it under ``out`` (`workbench world` runs it by name: registry)."""
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


def select_tasks(world: Callable[[], World], split: str, types: Iterable[str] | str | None = None) -> list[Task]:
    """The tasks of one split (train, dev or test) of ``world()``, optionally only some TASK_TYPES; the split and
    the types are checked before the world is read."""
    if split not in SPLITS:
        raise InputError(f"Unknown split {split!r}. Available: {', '.join(SPLITS)}.")
    wanted = (types,) if isinstance(types, str) else tuple(types) if types is not None else TASK_TYPES
    unknown = [t for t in wanted if t not in TASK_TYPES]
    if unknown:
        raise InputError(f"Unknown task type(s) {unknown}. Available: {', '.join(TASK_TYPES)}.")
    return [t for t in world().tasks[split] if t.type in wanted]


def load_tasks(split: str, world_dir: str | Path | None = None, types: Iterable[str] | str | None = None) -> list[Task]:
    """The tasks of one split (train, dev or test), optionally only some TASK_TYPES."""
    return select_tasks(lambda: load_world(world_dir), split, types)


def example_questions(n: int = 8, split: str = "dev") -> list[str]:
    """``n`` questions of the default world for an example box, dealt across the task types."""
    if n < 1:
        raise InputError(f"n must be at least 1, got {n}.")
    tasks = load_tasks(split)
    by_type = [[t for t in tasks if t.type == kind] for kind in TASK_TYPES]
    dealt = [g[i].question for i in range(max(map(len, by_type), default=0)) for g in by_type if i < len(g)]
    return dealt[:n]
