"""The demo world: determinism, article shape, split guarantee, gold trajectories that replay exactly."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

from workbench.corpus import Corpus
from workbench.errors import InputError, WorldError
from workbench.tools import ToolContext, default_tools
from workbench.types import TASK_TYPES, Task
from workbench.world import (DEMO_DATA_DIR, SPLITS, World, example_questions, generate_world, load_tasks, load_world,
                             write_world)
from workbench.world.text import KEYWORDS

FILES = ("corpus.jsonl", "tasks/train.jsonl", "tasks/dev.jsonl", "tasks/test.jsonl", "world.json")


@pytest.fixture(scope="module")
def generated() -> World:
    return generate_world(0)


@pytest.fixture(scope="module")
def generated_1() -> World:
    return generate_world(1)


@pytest.fixture(scope="module")
def saved(generated: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generated.save(tmp_path_factory.mktemp("world0"))


@pytest.fixture(scope="module")
def world(saved: Path) -> World:
    return load_world(saved)


def _text(task: Task) -> str:
    """Everything a trajectory shows, lower-cased: question, thoughts, arguments, observations."""
    parts = [task.question] + [f"{s.thought}\n{s.argument}\n{s.observation or ''}" for s in task.trajectory]
    return "\n".join(parts).lower()


def _touched(tasks: list[Task], titles: list[str]) -> set[str]:
    texts = [_text(t) for t in tasks]
    return {title for title in titles if any(title.lower() in text for text in texts)}


# ---------------------------------------------------------------- determinism


def test_same_seed_writes_identical_files(saved: Path, tmp_path: Path) -> None:
    again = write_world(0, tmp_path / "again")
    for name in FILES:
        assert (again / name).read_bytes() == (saved / name).read_bytes(), name


def test_other_seed_gives_another_world(world: World, generated_1: World) -> None:
    other = generated_1
    assert other.corpus.fingerprint != world.corpus.fingerprint
    assert set(other.corpus.titles) != set(world.corpus.titles)
    assert [t.question for t in other.tasks["test"]] != [t.question for t in world.tasks["test"]]


def test_committed_demo_data_matches_the_generator(saved: Path) -> None:
    for name in FILES:
        committed = DEMO_DATA_DIR / name
        assert committed.is_file(), f"demo_data/{name} is missing: run `workbench world --seed 0 --out demo_data`"
        assert committed.read_bytes() == (saved / name).read_bytes(), (
            f"demo_data/{name} drifted from the generator: run `workbench world --seed 0 --out demo_data`")


def test_bad_seed_is_refused() -> None:
    with pytest.raises(InputError, match="non-negative integer"):
        generate_world(-1)
    with pytest.raises(InputError):
        generate_world("0")  # type: ignore[arg-type]


# ---------------------------------------------------------------- entities and articles


def test_entities_many_kinds_unique_titles(world: World) -> None:
    kinds = Counter(e.kind for e in world.entities)
    assert len(world.entities) >= 300 and len(kinds) >= 5
    assert min(kinds.values()) >= 12
    lowered = [t.lower() for t in world.corpus.titles]
    assert len(set(lowered)) == len(lowered)
    for a in lowered:  # no title hides inside another, so substring matching names the right entity
        assert not any(a != b and a in b for b in lowered), a
    assert [e.title for e in world.entities] == world.corpus.titles


def test_names_are_clear_of_lookup_keywords(world: World) -> None:
    for title in world.corpus.titles:
        assert not any(k in title.lower() for k in KEYWORDS), title


def test_articles_have_two_to_five_sentences_and_search_shows_three(world: World) -> None:
    tools = default_tools()
    lengths = Counter()
    for doc in world.corpus:
        assert 2 <= len(doc.sentences) <= 5, doc.title
        assert doc.text == " ".join(doc.sentences)
        noun = {"book": "novel", "person": doc.meta.get("occupation")}.get(doc.meta["kind"], doc.meta["kind"])
        assert doc.sentences[0].startswith((doc.title, f"The {doc.title}")) and f" {noun}" in doc.sentences[0]
        lengths[len(doc.sentences)] += 1
        seen = tools.run("search", doc.title, ToolContext(corpus=world.corpus))
        assert seen == " ".join(doc.sentences[:3])
    assert lengths[4] + lengths[5] > 100  # many facts can only be reached with lookup


def test_article_numbers_use_thousands_separators(world: World) -> None:
    for doc in world.corpus:
        assert not re.search(r"\b\d{5,}\b", doc.text), doc.text  # 48,200 never 48200
        assert not re.search(r"(?<![\d,])\d,\d{3}(?![\d,])", doc.text), doc.text  # 4200 never 4,200


def test_attributes_are_consistent(world: World) -> None:
    by = {e.title: e for e in world.entities}
    for e in world.entities:
        a = e.attrs
        if e.kind == "book":
            assert a["published"] >= by[a["author"]].attrs["birth_year"] + 18
            assert by[a["author"]].attrs["occupation"] == "novelist"
            assert a["published"] <= by[a["author"]].attrs.get("died", 2020)
        if e.kind == "company":
            assert a["founded"] >= by[a["founder"]].attrs["birth_year"] + 18
            assert by[a["hq"]].kind == "city"
        if e.kind == "city":
            assert by[a["river"]].attrs["country"] == a["country"]
        if e.kind == "country":
            assert by[a["capital"]].attrs["country"] == e.title
        if e.kind == "person" and "died" in a:
            assert a["died"] > a["birth_year"]


# ---------------------------------------------------------------- suites and splits


def test_every_type_in_every_split_with_expected_counts(world: World, saved: Path) -> None:
    for split in ("dev", "test"):
        assert Counter(t.type for t in world.tasks[split]) == {t: 20 for t in TASK_TYPES}
    train = Counter(t.type for t in world.tasks["train"])
    assert set(train) == set(TASK_TYPES) and sum(train.values()) >= 1000 and min(train.values()) >= 150
    info = json.loads((saved / "world.json").read_text())
    assert info["counts"]["tasks"]["train"] == dict(train)


def test_ids_splits_and_no_duplicate_questions(world: World) -> None:
    questions = [t.question for s in SPLITS for t in world.tasks[s]]
    assert len(questions) == len(set(questions))
    ids = [t.id for s in SPLITS for t in world.tasks[s]]
    assert len(ids) == len(set(ids))
    for split in SPLITS:
        for task in world.tasks[split]:
            assert task.split == split and re.fullmatch(rf"{split}-{task.type}-\d{{4}}", task.id)


def test_held_out_entities_never_appear_in_train(world: World) -> None:
    titles = world.corpus.titles
    test, dev = _touched(world.tasks["test"], titles), _touched(world.tasks["dev"], titles)
    assert len(test) >= 20 and len(dev) >= 20
    assert not test & dev
    train_texts = [_text(t) for t in world.tasks["train"]]
    for title in sorted(test | dev):
        low = title.lower()
        assert not any(low in text for text in train_texts), f"{title} is held out but appears in train"


def test_task_entities_are_exactly_the_titles_named(world: World) -> None:
    titles = world.corpus.titles
    for task in world.tasks["test"] + world.tasks["dev"] + world.tasks["train"][::7]:
        assert sorted(task.entities) == sorted(_touched([task], titles)), task.id
        assert bool(task.entities) == (task.type != "arithmetic")


def _replay(task: Task, corpus: Corpus) -> None:
    tools, context = default_tools(), ToolContext(corpus=corpus)
    *steps, last = task.trajectory
    for step in steps:
        assert step.action in ("search", "lookup", "calculate") and step.thought
        assert tools.run(step.action, step.argument, context) == step.observation, (task.id, step.call)
    assert last.action == "finish" and last.observation is None
    assert last.argument == task.answer == tools.run("finish", last.argument, context)
    if task.type in ("numeric", "arithmetic"):
        assert steps[-1].action == "calculate" and steps[-1].observation == task.answer
        assert re.fullmatch(r"-?\d+", task.answer)
    if task.type != "arithmetic":
        assert any(s.action == "search" for s in steps)
    assert task.meta["needs_lookup"] == any(s.action == "lookup" for s in steps)


def test_gold_trajectories_replay_exactly(world: World) -> None:
    for task in world.tasks["dev"] + world.tasks["test"] + world.tasks["train"][::5]:
        _replay(task, world.corpus)


def test_trajectory_shapes_by_type(world: World) -> None:
    for task in world.tasks["test"] + world.tasks["dev"]:
        searches = [s.argument for s in task.trajectory if s.action == "search"]
        if task.type == "single_hop":
            assert len(searches) == 1
        elif task.type in ("bridge", "comparison"):
            assert len(searches) == 2 and searches[0] != searches[1]
        elif task.type == "arithmetic":
            assert [s.action for s in task.trajectory] == ["calculate", "finish"]
        if task.type == "comparison":
            assert task.answer in searches
    lookups = Counter(t.type for t in world.tasks["test"] + world.tasks["dev"] if t.meta["needs_lookup"])
    assert all(lookups[t] >= 5 for t in ("single_hop", "bridge", "comparison", "numeric"))


def test_lookups_find_facts_beyond_the_opening(world: World) -> None:
    docs = {d.title: d for d in world.corpus}
    found = 0
    for task in world.tasks["test"]:
        opened = None
        for step in task.trajectory:
            if step.action == "search":
                opened = docs[step.argument]
            if step.action == "lookup":
                sentence = step.observation.split(") ", 1)[1]
                assert sentence in opened.sentences[3:]  # never something search already showed
                found += 1
    assert found >= 10


# ---------------------------------------------------------------- loading


def test_loaded_world_equals_generated(world: World, generated: World) -> None:
    fresh = generated
    assert fresh.entities == world.entities
    assert [d.sentences for d in fresh.corpus] == [d.sentences for d in world.corpus]
    assert {s: [t.to_dict() for t in ts] for s, ts in fresh.tasks.items()} == {
        s: [t.to_dict() for t in ts] for s, ts in world.tasks.items()}


def test_load_world_default_and_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, generated_1: World) -> None:
    monkeypatch.delenv("WORKBENCH_DEMO_DATA", raising=False)
    default = load_world()
    assert default.seed == 0 and len(default.corpus) >= 300
    assert load_world() is default  # cached per process
    generated_1.save(tmp_path / "one")
    monkeypatch.setenv("WORKBENCH_DEMO_DATA", str(tmp_path / "one"))
    assert load_world().seed == 1
    monkeypatch.setenv("WORKBENCH_DEMO_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(WorldError, match="workbench world"):
        load_world()


def test_missing_or_broken_world_names_the_fix(tmp_path: Path, saved: Path) -> None:
    with pytest.raises(WorldError, match=r"workbench world --seed 0 --out"):
        load_world(tmp_path / "missing")
    broken = Path(shutil.copytree(saved, tmp_path / "broken"))
    (broken / "tasks" / "dev.jsonl").write_text("{not json\n", encoding="utf-8")
    with pytest.raises(WorldError, match=r"tasks/dev.jsonl:1.*workbench world"):
        load_world(broken)


def test_load_tasks_and_examples(saved: Path) -> None:
    dev = load_tasks("dev", saved)
    assert len(dev) == 100
    assert {t.type for t in load_tasks("test", saved, types=["bridge", "numeric"])} == {"bridge", "numeric"}
    assert {t.type for t in load_tasks("train", saved, types="arithmetic")} == {"arithmetic"}
    with pytest.raises(InputError, match="Available: train, dev, test"):
        load_tasks("validation", saved)
    with pytest.raises(InputError, match="single_hop"):
        load_tasks("dev", saved, types=["trivia"])
    questions = example_questions(8)
    assert len(questions) == 8 and len(set(questions)) == 8
    by_question = {t.question: t.type for t in load_tasks("dev")}
    assert {by_question[q] for q in questions} == set(TASK_TYPES)
    with pytest.raises(InputError):
        example_questions(0)
