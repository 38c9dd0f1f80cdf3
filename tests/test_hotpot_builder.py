"""Gold trajectories from HotpotQA-format files, and the demo worlds exported in that layout.

What agrees between the builder's trajectories on a world's export and the world's own gold trajectories:
for world 1 (demo), every exported task has the same sequence of tool names (search / lookup / finish),
opens the same articles in the same order and finishes with the same answer (only a lookup's keyword may
differ); for world 2 (demo2), every task opens the same supporting articles in the same order and finishes
with the same answer, and most have the same sequence of tool names (the builder may look a fact up by a
rarer word where the native trajectory looked up twice, or skip a namesake detour the export's ten
paragraphs do not need).
"""

from __future__ import annotations

import argparse
import json

import pytest

from workbench.datasets import load_suite
from workbench.errors import DatasetError
from workbench.hotpot_gold import build_trajectory, export_hotpot, hotpot_trajectories
from workbench.tools import ToolContext, default_tools
from workbench.world.registry import world_by_name

TOOLS = default_tools()

RECORDS = [
    {"_id": "c1", "question": "Which magazine was started first, Arthur's Magazine or First for Women?",
     "answer": "Arthur's Magazine", "type": "comparison", "level": "medium",
     "supporting_facts": [["Arthur's Magazine", 0], ["First for Women", 0]],
     "context": [["Radio City (Indian radio station)", ["Radio City is India's first private FM radio station."]],
                 ["First for Women", ["First for Women is a woman's magazine published by Bauer Media Group.",
                                      "The magazine was started in 1989."]],
                 ["Arthur's Magazine", ["Arthur's Magazine (1844–1846) was an American literary periodical.",
                                        "It was published in Philadelphia."]]]},
    {"_id": "b1", "question": "Who directed the 1945 film in which Shirley Temple played Corliss Archer?",
     "answer": "Richard Wallace", "type": "bridge", "level": "hard",
     "supporting_facts": [["Kiss and Tell (1945 film)", 0], ["Kiss and Tell (1945 film)", 4],
                          ["Corliss Archer", 0], ["Corliss Archer", 1]],
     "context": [["Kiss and Tell (play)", ["Kiss and Tell is a 1943 play by F. Hugh Herbert."]],
                 ["Kiss and Tell (1945 film)", ["Kiss and Tell is a 1945 American comedy film.",
                                                "It stars Shirley Temple as Corliss Archer.",
                                                "The film was a success.", "Critics liked the cast.",
                                                "It was directed by Richard Wallace."]],
                 ["Corliss Archer", ["Corliss Archer is a fictional teenage girl.",
                                     "Shirley Temple played her in Kiss and Tell."]]]},
]


@pytest.fixture
def hotpot_file(tmp_path):
    path = tmp_path / "mini_hotpot.json"
    path.write_text(json.dumps(RECORDS), encoding="utf-8")
    return path


def _opened(task, corpus) -> list[str]:
    context, titles = ToolContext(corpus=corpus), []
    for step in task.trajectory[:-1]:
        TOOLS.run(step.action, step.argument, context)
        if step.action == "search":
            titles.append(context.document.title)
    return titles


def test_a_comparison_opens_both_articles_in_the_questions_order(hotpot_file):
    task = hotpot_trajectories(hotpot_file)[0]
    assert [s.call for s in task.trajectory] == ["search[Arthur's Magazine]", "search[First for Women]",
                                                 "finish[Arthur's Magazine]"]
    assert task.trajectory[1].observation.startswith("First for Women is a woman's magazine")


def test_a_bridge_opens_the_named_article_first_and_looks_up_past_the_opening(hotpot_file):
    task = hotpot_trajectories(hotpot_file)[1]
    calls = [s.call for s in task.trajectory]
    # The question names Corliss Archer; the film's article holds the answer, so it comes last. Its title
    # carries a qualifier the observation does not show, so "Kiss and Tell" opens a namesake first.
    assert calls[0] == "search[Corliss Archer]" and calls[-1] == "finish[Richard Wallace]"
    assert calls[1] == "search[Kiss and Tell]" and calls[2] == "search[Kiss and Tell (1945 film)]"
    assert calls[3].startswith("lookup[") and "Richard Wallace" in task.trajectory[3].observation
    suite = load_suite(f"hotpotqa:{hotpot_file}")
    assert _opened(task, suite.task_corpora["b1"]) == ["Corliss Archer", "Kiss and Tell (play)",
                                                        "Kiss and Tell (1945 film)"]


def test_bad_records_name_the_record_and_the_fix(tmp_path):
    bad = [dict(RECORDS[0], supporting_facts=[["No Such Title", 0]])]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(DatasetError, match=r"record 1 \(id c1\): supporting fact 'No Such Title' is not a title"):
        hotpot_trajectories(path, strict=True)
    with pytest.raises(DatasetError, match="no record could be turned into a trajectory"):
        hotpot_trajectories(path)
    none = [dict(RECORDS[0], supporting_facts=[]), RECORDS[1]]
    path.write_text(json.dumps(none), encoding="utf-8")
    with pytest.raises(DatasetError, match="'supporting_facts' is missing or empty"):
        hotpot_trajectories(path, strict=True)
    kept = hotpot_trajectories(path)
    assert [t.id for t in kept] == ["b1"] and kept[0].meta["skipped"] == ["c1"]
    missing = [{k: v for k, v in RECORDS[0].items() if k != "answer"}]
    path.write_text(json.dumps(missing), encoding="utf-8")
    with pytest.raises(DatasetError, match="record 1: field 'answer' is missing"):
        hotpot_trajectories(path)


def test_finetune_reads_hotpotqa_data(hotpot_file):
    from workbench.cli.finetune import _config
    from workbench.finetune.data import load_trajectories, parse_trajectories

    recs = load_trajectories(f"hotpotqa:{hotpot_file}")
    assert [r.answer for r in recs] == ["Arthur's Magazine", "Richard Wallace"]
    again = parse_trajectories([json.dumps(r.to_dict()) for r in recs])  # valid training records
    assert [len(r.steps) for r in again] == [len(r.steps) for r in recs]
    cfg = _config(argparse.Namespace(config=None, set=[], data=f"hotpotqa:{hotpot_file}"))
    assert cfg.data == f"hotpotqa:{hotpot_file}"


@pytest.mark.parametrize("name", ["demo", "demo2"])
def test_the_export_is_hotpotqa_layout_with_distractors(name, tmp_path):
    path = export_hotpot(name, "test", tmp_path / "export.json")
    records = json.loads(path.read_text(encoding="utf-8"))
    world = world_by_name(name)
    assert len(records) == 60 and {r["type"] for r in records} == {"bridge", "comparison"}
    for r in records:
        titles = [t for t, _ in r["context"]]
        assert len(titles) == 10 == len(set(titles))
        for title, index in r["supporting_facts"]:
            assert title in titles and 0 <= index < len(world.corpus.get(title).sentences)
        assert all(sentences == world.corpus.get(t).sentences for t, sentences in r["context"])
    if name == "demo2":  # namesakes of a supporting article are among its distractors
        namesakes = [r for r in records if any(t.endswith(")") for t, _ in r["context"])]
        assert len(namesakes) > 10


@pytest.mark.parametrize("name", ["demo", "demo2"])
def test_built_trajectories_agree_with_the_worlds_own(name, tmp_path):
    world = world_by_name(name)
    same_actions = same_calls = total = 0
    for split in ("test", "dev"):
        path = export_hotpot(name, split, tmp_path / f"{split}.json")
        suite = load_suite(f"hotpotqa:{path}")
        native = {t.id: t for t in world.tasks[split]}
        for task in hotpot_trajectories(path, strict=True):
            gold = native[task.id]
            support = list(dict.fromkeys(t for t, _ in task.meta["supporting_facts"]))
            mine = [t for t in dict.fromkeys(_opened(task, suite.task_corpora[task.id])) if t in support]
            theirs = [t for t in dict.fromkeys(_opened(gold, world.corpus)) if t in support]
            assert mine == theirs and set(mine) == set(support), task.id  # the same articles, in the same order
            assert task.trajectory[-1].call == gold.trajectory[-1].call == f"finish[{gold.answer}]"
            actions = [s.action for s in task.trajectory] == [s.action for s in gold.trajectory]
            if name == "demo":
                assert actions, task.id
            same_actions += actions
            same_calls += [s.call for s in task.trajectory] == [s.call for s in gold.trajectory]
            total += 1
    assert total == 120
    if name == "demo2":
        assert same_actions >= 0.8 * total
    assert same_calls >= 0.25 * total  # lookup keywords are the builder's own choice


def test_the_wikipedia_style_file_loads_and_every_question_gets_a_trajectory_that_reads_its_answer():
    """bench/data/wiki_style_hotpot.json: 40 questions about real entities, written in Wikipedia's style."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "data" / "wiki_style_hotpot.json"
    tasks = hotpot_trajectories(path, strict=True)
    assert len(tasks) == 40 and sum(t.type == "comparison" for t in tasks) == 14
    for task in tasks:
        assert task.trajectory[-1].call == f"finish[{task.answer}]"
        if task.answer not in ("yes", "no"):  # the answer is read in an observation, not guessed
            assert any(task.answer in (s.observation or "") for s in task.trajectory[:-1]), task.id
