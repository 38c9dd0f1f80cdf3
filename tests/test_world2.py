"""The richer demo world (demo2): prose articles, namesakes, aliases, varied questions and thoughts, a clean split."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter, defaultdict

import pytest

from workbench.corpus import base_title
from workbench.tools import ToolContext, default_tools
from workbench.types import TASK_TYPES
from workbench.world.registry import parse_world_spec, suite_world, world_by_name, world_tasks
from workbench.world.world2 import generate_world2, load_world2

TOOLS = default_tools()


@pytest.fixture(scope="module")
def world():
    return load_world2(0)


def _text(task) -> str:
    return "\n".join([task.question] + [f"{s.thought}\n{s.argument}\n{s.observation or ''}"
                                        for s in task.trajectory]).lower()


def test_the_same_seed_gives_the_same_world_in_another_process(world):
    code = ("from workbench.world.world2 import generate_world2; w = generate_world2(0); "
            "print(w.corpus.fingerprint, len(w.tasks['train']), w.tasks['test'][7].question)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123", "PATH": ""}).stdout.split(maxsplit=2)
    assert out[0] == world.corpus.fingerprint and int(out[1]) == len(world.tasks["train"])
    assert out[2].strip() == world.tasks["test"][7].question
    again = generate_world2(0)
    assert [t.to_dict() for t in again.tasks["dev"]] == [t.to_dict() for t in world.tasks["dev"]]
    assert generate_world2(1).corpus.fingerprint != world.corpus.fingerprint


def test_it_leaves_the_first_demo_world_as_it_was(world):
    old = world_by_name("demo")
    assert old.corpus.fingerprint != world.corpus.fingerprint
    assert not {d.title for d in old.corpus} & {d.title for d in world.corpus}  # other entities altogether
    asked = [{t.question for s in ("train", "dev", "test") for t in w.tasks[s] if t.type != "arithmetic"}
             for w in (old, world)]
    assert not asked[0] & asked[1]
    held = [{t.question for s in ("dev", "test") for t in w.tasks[s]} for w in (old, world)]
    assert not held[0] & held[1]  # arithmetic too: other numbers than world 1's held-out tasks
    assert world.meta["world"] == "demo2" and world.meta["generator_version"] == "2"


def test_articles_are_prose_in_several_paragraphs_with_facts_beyond_the_opening(world):
    docs = list(world.corpus)
    paragraphs = Counter(len(d.meta["paragraphs"]) for d in docs)
    assert paragraphs[1] < len(docs) * 0.2 and paragraphs[3] > len(docs) * 0.3
    lengths = Counter(len(d.sentences) for d in docs)
    assert min(lengths) >= 3 and max(lengths) >= 8
    assert all("\n\n" in d.text for d in docs if len(d.meta["paragraphs"]) > 1)
    # Numbers and dates in several formats; pronouns and surnames for people.
    text = " ".join(d.text for d in docs)
    assert re.search(r"\b\d{2,3},\d{3}\b", text) and re.search(r"\b\d{2,3} \d{3}\b", text)
    assert re.search(r"\b\d{1,2} (January|March|May|July) \d{4}\b", text)
    assert re.search(r"\b(January|March|May|July) \d{1,2}, \d{4}\b", text)
    assert re.search(r"\. (She|He) ", text)
    lookups = [t for t in world.tasks["train"] if t.meta["needs_lookup"]]
    assert len(lookups) > 600  # the asked fact is often past the opening sentences


def test_namesakes_and_aliases_and_what_search_says_of_them(world):
    titles = [d.title for d in world.corpus]
    kinds = Counter(t.rsplit("(", 1)[1].rstrip(")") for t in titles if t.endswith(")"))
    assert kinds["city"] >= 10 and kinds["river"] >= 8 and kinds["novel"] >= 6
    river = next(t for t in titles if t.endswith("(river)"))
    base = base_title(river)
    context = ToolContext(corpus=world.corpus)
    out = TOOLS.run("search", base, context)
    assert out.startswith(f"Best match: {base} (city).") and f"{base} (river)" in out.split("Similar: ")[1]
    # A company named after its city is a near-duplicate title, and every alias opens its article.
    assert sum(1 for t in titles if " " in t and t.split()[0] in {base_title(x) for x in titles if "(city)" in x}) >= 4
    for doc in world.corpus:
        for alias in doc.meta["aliases"]:
            context = ToolContext(corpus=world.corpus)
            TOOLS.run("search", alias, context)
            assert context.document is doc, alias


def test_every_gold_trajectory_replays_exactly_and_its_answer_is_a_span_of_what_it_saw(world):
    for split in ("train", "dev", "test"):
        for task in world.tasks[split]:
            context = ToolContext(corpus=world.corpus)
            for step in task.trajectory[:-1]:
                assert TOOLS.run(step.action, step.argument, context) == step.observation, task.id
            assert task.trajectory[-1].action == "finish" and task.trajectory[-1].argument == task.answer
            seen = " ".join(s.observation or "" for s in task.trajectory[:-1])
            if task.answer not in ("yes", "no"):
                assert task.answer in seen, (task.id, task.answer)


def test_questions_and_thoughts_vary(world):
    train = world.tasks["train"]
    phrasings = defaultdict(set)
    for t in train:
        if t.type == "single_hop":
            name = next((x for x in t.entities if base_title(x).lower() in t.question.lower()), "")
            phrasings[t.meta["subtype"]].add(t.question.lower().replace(base_title(name).lower(), "{e}"))
    assert sum(len(p) > 1 for p in phrasings.values()) >= 15
    openers = Counter(t.trajectory[0].thought.split()[0] for t in train if t.type != "arithmetic")
    assert len(openers) >= 4 and max(openers.values()) < 0.6 * sum(openers.values())
    again = [s for t in train for s in t.trajectory if s.action == "lookup"]
    assert len({s.thought.split(",")[0][:20] for s in again}) >= 5
    kinds = Counter(t.meta["subtype"].split(".")[0] for t in train if t.type == "comparison")
    assert kinds["which"] and kinds["more"] and kinds["both"]
    answers = Counter(t.answer for t in train if t.type == "comparison")
    assert answers["yes"] > 50 and answers["no"] > 50
    namesake_steps = [t for t in train if t.meta.get("namesakes")]
    assert len(namesake_steps) > 20  # a search that opened a namesake, then the qualified title
    lookup_again = [t for t in train if any(a.action == b.action == "lookup" and a.argument == b.argument
                                            for a, b in zip(t.trajectory, t.trajectory[1:]))]
    assert len(lookup_again) > 50


def test_no_test_or_dev_entity_in_a_train_trajectory(world):
    counts = {s: Counter(t.type for t in world.tasks[s]) for s in ("train", "dev", "test")}
    assert counts["test"] == {t: 20 for t in TASK_TYPES} and counts["train"]["bridge"] == 400
    names = {d.title: [base_title(d.title).lower(), *(a.lower() for a in d.meta["aliases"])] for d in world.corpus}
    held = {title for s in ("test", "dev") for t in world.tasks[s] for title in t.entities}
    assert held
    for task in world.tasks["train"]:
        text = _text(task)
        assert not [t for t in held if any(n in text for n in names[t])], task.id


def test_demo2_resolves_wherever_demo_does(world):
    from workbench.datasets import list_builtin_suites, load_suite
    from workbench.finetune.continual import family_probe
    from workbench.finetune.data import load_trajectories
    from workbench.knowledge import KnowledgeSources

    suite = load_suite("demo2:test")
    assert len(suite) == 100 and suite.corpus is world.corpus and suite.meta["world"] == "demo2"
    assert [t.type for t in load_suite("demo2:dev:bridge,numeric").tasks].count("bridge") == 20
    assert "demo2:test" in list_builtin_suites() and "demo2:dev:comparison" in list_builtin_suites()
    assert len(load_trajectories("demo2:train")) == 2000
    assert load_trajectories("demo2:train:comparison")[0].type == "comparison"
    assert family_probe("demo2:train:bridge") == "demo2:dev:bridge"
    sources = KnowledgeSources()
    assert sources.get("demo2") is world.corpus and "demo2" in [k for _, k in sources.choices()]
    assert sources.questions("demo2") and sources.get("demo").name == "demo-world-0"
    assert parse_world_spec("demo2:test") == ("demo2", "test", None)
    fever = load_suite("demo2-fever:test")
    assert fever.kind == "fever" and len(fever) == 60 and fever.corpus is world.corpus
    assert fever.meta["world"] == "demo2" and load_suite("demo-fever:dev").meta["world"] == "demo"
    assert [suite_world(s) for s in ("demo2:dev:bridge", "demo2-fever:test", "demo:test", "hotpotqa:dev.json")] == \
        ["demo2", "demo2", "demo", None]
    assert not any("(" in t.question for t in fever.tasks)  # namesakes are named as prose names them
    with pytest.raises(Exception, match="Unknown split 'tset'. Available: train, dev, test"):
        world_tasks("demo2", "tset")


def test_saved_demo2_world_loads_back(world, tmp_path):
    from workbench.world import load_world
    from workbench.world.world2 import write_world2

    write_world2(0, tmp_path)
    info = json.loads((tmp_path / "world.json").read_text())
    assert info["world"] == "demo2" and info["generator_version"] == "2"
    back = load_world(tmp_path)
    assert back.corpus.fingerprint == world.corpus.fingerprint
    assert [t.to_dict() for t in back.tasks["test"]] == [t.to_dict() for t in world.tasks["test"]]
