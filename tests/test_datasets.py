"""Suites and benchmark files: demo suites, demo-fever claims, HotpotQA / FEVER / JSONL files, errors, metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import workbench.datasets as datasets
from workbench.datasets import (FEVER_LABELS, SPEC_FORMS, Suite, list_builtin_suites, load_suite,
                                normalize_fever_label, supporting_recall)
from workbench.errors import DatasetError, InputError
from workbench.tools import ToolContext, default_tools
from workbench.types import TASK_TYPES, Step, Task, Trace
from workbench.world import load_world

DATA = Path(__file__).parent / "data" / "datasets"


def test_all_names_exist():
    assert all(hasattr(datasets, name) for name in datasets.__all__)
    assert len(set(datasets.__all__)) == len(datasets.__all__)


# ---------------------------------------------------------------- demo suites


def test_demo_suite_by_split():
    suite = load_suite("demo:test")
    world = load_world()
    assert suite.kind == "qa" and suite.name == "demo:test" and len(suite) == 100
    assert {t.split for t in suite.tasks} == {"test"}
    assert {t.type for t in suite.tasks} == set(TASK_TYPES)
    assert suite.corpus is world.corpus and suite.corpus_for(suite.tasks[0]) is world.corpus
    assert [t.id for t in suite.tasks] == [t.id for t in world.tasks["test"]]


def test_demo_suite_by_types():
    suite = load_suite("demo:dev:bridge,numeric")
    assert len(suite) == 40
    assert {t.type for t in suite.tasks} == {"bridge", "numeric"}
    assert {t.split for t in suite.tasks} == {"dev"}


@pytest.mark.parametrize("spec, names", [
    ("demo:validation", ["train", "dev", "test"]),
    ("demo:test:multi_hop", list(TASK_TYPES)),
    ("demo-fever:holdout", ["train", "dev", "test"]),
    ("squad:dev.json", list(SPEC_FORMS)),
    ("", ["demo:SPLIT"]),
])
def test_bad_specs_list_the_valid_choices(spec, names):
    with pytest.raises(InputError) as info:
        load_suite(spec)
    assert all(name in str(info.value) for name in names), str(info.value)


def test_limit_deals_types_round_robin_and_is_deterministic():
    suite = load_suite("demo:test")
    small = suite.limit(7)
    assert [t.type for t in small.tasks] == list(TASK_TYPES) + ["single_hop", "bridge"]
    assert [t.id for t in small.tasks] == [t.id for t in load_suite("demo:test", limit=7).tasks]
    firsts = {ty: next(t.id for t in suite.tasks if t.type == ty) for ty in TASK_TYPES}
    assert [t.id for t in small.tasks[:5]] == [firsts[ty] for ty in TASK_TYPES]  # the first of each type
    assert small.corpus is suite.corpus and len(suite) == 100  # the original is untouched
    assert suite.limit(None) is suite
    assert len(suite.limit(1000)) == 100
    for bad in (0, -3, 2.5, True):
        with pytest.raises(InputError, match="at least 1"):
            suite.limit(bad)


def test_limit_keeps_only_the_kept_tasks_corpora():
    suite = load_suite(DATA / "qa_context.jsonl")
    small = suite.limit(2)  # types: single, single, numeric, bridge, numeric -> dealt single, numeric
    assert [t.id for t in small.tasks] == ["q1", "q3"]
    assert set(small.task_corpora) == {"q1", "q3"}
    assert small.task_corpora["q3"] is suite.task_corpora["q3"]


def test_list_builtin_suites_all_load():
    names = list_builtin_suites()
    assert {"demo:dev", "demo:test", "demo:test:bridge", "demo-fever:dev", "demo-fever:test"} <= set(names)
    assert not any(":train" in n for n in names)
    for name in names:
        assert len(load_suite(name)) > 0


# ---------------------------------------------------------------- demo-fever


@pytest.fixture(scope="module")
def fever_test() -> Suite:
    return load_suite("demo-fever:test")


@pytest.mark.parametrize("split", ["dev", "test"])
def test_demo_fever_is_balanced(split):
    suite = load_suite(f"demo-fever:{split}")
    assert suite.kind == "fever" and len(suite) == 60
    assert {label: sum(t.answer == label for t in suite.tasks) for label in FEVER_LABELS} == dict.fromkeys(
        FEVER_LABELS, 20)
    assert [t.id for t in suite.tasks] == [f"{split}-fever-{i:04d}" for i in range(1, 61)]
    assert all(t.type == "fever" and t.meta["label"] == t.answer and t.split == split for t in suite.tasks)
    assert len({t.question for t in suite.tasks}) == 60
    assert [t.answer for t in suite.limit(6).tasks] == list(FEVER_LABELS) * 2  # labels interleaved


def test_demo_fever_claims_agree_with_the_articles(fever_test):
    corpus = fever_test.corpus
    everything = " ".join(d.text.lower() for d in corpus)
    for task in fever_test.tasks:
        article = corpus.get(task.meta["entity"]).text
        assert task.meta["entity"] in task.question
        claimed = task.meta["claimed"]
        if task.answer == "SUPPORTS":
            assert task.question.endswith(f"{claimed}.") or f" {claimed} " in task.question
            assert re.search(rf"(?<![\d,]){re.escape(claimed)}(?![\d]|,\d)", article), (task.question, article)
            assert task.meta["evidence"] == [task.meta["entity"]]
        elif task.answer == "REFUTES":
            assert claimed in task.question and task.meta["true"] not in task.question
            assert re.search(rf"(?<![\d,]){re.escape(task.meta['true'])}(?![\d]|,\d)", article)
            assert not re.search(rf"(?<![\w,]){re.escape(claimed)}(?!\w|,\d)", article), (task.question, article)
        else:
            assert not re.search(rf"\b{re.escape(claimed)}\b", everything), claimed  # no article says it
            assert task.meta["evidence"] == []


def test_demo_fever_claims_stay_inside_their_split(fever_test):
    world = load_world()
    titles = [d.title for d in world.corpus]
    allowed = {e.lower() for t in world.tasks["test"] for e in t.entities}
    train = {e.lower() for t in world.tasks["train"] for e in t.entities}
    for task in fever_test.tasks:
        text = " ".join([task.question] + [f"{s.thought} {s.argument} {s.observation or ''}"
                                           for s in task.trajectory]).lower()
        named = {t.lower() for t in titles if t.lower() in text}
        assert named and named <= allowed, named - allowed
        assert not named & train
        assert {e.lower() for e in task.entities} == named


def test_demo_fever_trajectories_replay(fever_test):
    tools = default_tools()
    lookups = 0
    for task in fever_test.tasks:
        ctx = ToolContext(corpus=fever_test.corpus_for(task))
        assert task.trajectory[0].call == f"search[{task.meta['entity']}]"
        for gold in task.trajectory[:-1]:
            assert tools.run(gold.action, gold.argument, ctx) == gold.observation
            lookups += gold.action == "lookup"
        assert task.trajectory[-1].call == f"finish[{task.answer}]"
        if task.answer != "NOT ENOUGH INFO":  # the deciding fact is shown by the last observation
            assert task.meta["true"] in task.trajectory[-2].observation
    assert lookups > 20  # NEI claims look up their keyword, and some facts sit past sentence 3


def test_demo_fever_is_deterministic(fever_test):
    again = load_suite("demo-fever:test")
    assert [t.to_dict() for t in again.tasks] == [t.to_dict() for t in fever_test.tasks]


# ---------------------------------------------------------------- HotpotQA


def _search_lookup(suite: Suite, task: Task, title: str, keyword: str) -> tuple[str, str]:
    tools, ctx = default_tools(), ToolContext(corpus=suite.corpus_for(task))
    return tools.run("search", title, ctx), tools.run("lookup", keyword, ctx)


def test_hotpotqa_distractor_layout():
    suite = load_suite(f"hotpotqa:{DATA / 'hotpot_distractor.json'}")
    assert suite.kind == "qa" and suite.corpus is None and len(suite) == 3
    first, second, third = suite.tasks
    assert first.id == "5a8b57f25542995d1e6f1371" and first.type == "bridge" and first.meta["level"] == "medium"
    assert first.answer == "Ostrander Hall" and second.answer == "yes" and second.type == "comparison"
    assert first.meta["supporting_titles"] == ["Cobb Street Library", "Ostrander Hall"]
    assert first.meta["supporting_facts"][2] == ["Ostrander Hall", 2]
    corpus = suite.corpus_for(first)
    assert corpus.titles == ["Cobb Street Library", "Ostrander Hall", "Helena Varga", "Merrow Civic Center",
                             "Tessaly, Ohio"]
    assert suite.corpus_for(second).titles[0] == "Quillon River"  # each question has its own paragraphs
    opening, found = _search_lookup(suite, first, "Ostrander Hall", "designed")
    assert opening.startswith("Ostrander Hall is a concert venue in Lake Merrow, Minnesota. It seats 1,450")
    assert found == "(Result 1 / 1) The hall was designed by Helena Varga, whose other works include several libraries."
    # sentence ids index the document's sentences, so supporting sentences can be read back
    doc = corpus.get("Ostrander Hall")
    assert doc.sentences[2].startswith("The hall was designed")
    assert suite.corpus_for(third).get("Norwich Arts Centre").sentences[2] == "It opened in 1977."


def test_hotpotqa_hugging_face_layout_jsonl_and_list(tmp_path):
    suite = load_suite(f"hotpotqa:{DATA / 'hotpot_hf.jsonl'}")
    assert [t.id for t in suite.tasks] == ["5a7a06935542990198eaf050", "5a879ab05542996e4f30887e",
                                           "5a8e3ea95542995a26add48d"]
    task = suite.tasks[1]
    assert task.meta["supporting_titles"] == ["Pia Endresen", "Salt Meadow"]
    assert task.meta["supporting_facts"] == [["Salt Meadow", 1], ["Pia Endresen", 1]]
    assert suite.tasks[2].answer == "no"
    _, found = _search_lookup(suite, task, "pia endresen", "born")
    assert found == "(Result 1 / 1) She was born in Valdora in 1966."
    # Hugging Face datasets also save a JSON list: same tasks
    records = [json.loads(line) for line in (DATA / "hotpot_hf.jsonl").read_text().splitlines()]
    listed = tmp_path / "hf.json"
    listed.write_text(json.dumps(records))
    again = load_suite(f"hotpotqa:{listed}")
    assert [t.to_dict() for t in again.tasks] == [t.to_dict() for t in suite.tasks]
    assert again.corpus_for(again.tasks[0]).titles == ["Harbor Quarterly", "Lantern Review", "Mira Castell"]


# ---------------------------------------------------------------- FEVER and generic JSONL


def test_fever_with_evidence_documents():
    suite = load_suite(f"fever:{DATA / 'fever_evidence.jsonl'}")
    assert suite.kind == "fever" and suite.corpus is None
    assert [t.answer for t in suite.tasks] == ["SUPPORTS", "REFUTES", "NOT ENOUGH INFO", "NOT ENOUGH INFO"]
    assert set(suite.task_corpora) == {"fe-1", "fe-2", "fe-3"}
    assert suite.corpus_for(suite.tasks[3]) is None  # a claim without evidence has no corpus
    assert suite.corpus_for(suite.tasks[2]).titles == ["The Pellinore Set", "Norwich"]
    assert suite.tasks[2].meta["evidence"] == ["The Pellinore Set", "Norwich"]
    _, found = _search_lookup(suite, suite.tasks[1], "Helena Varga", "born")
    assert found == "(Result 1 / 1) She was born in Budapest in 1872."


def test_fever_without_evidence_and_official_pointers():
    plain = load_suite(DATA / "fever_claims.jsonl")
    assert plain.kind == "fever" and plain.corpus is None and plain.task_corpora == {}
    assert [t.answer for t in plain.tasks] == list(FEVER_LABELS)
    assert [t.id for t in plain.tasks] == ["fever_claims-0001", "fever_claims-0002", "fever_claims-0003"]
    official = load_suite(f"fever:{DATA / 'fever_official.jsonl'}")
    assert official.task_corpora == {} and [t.id for t in official.tasks] == ["75397", "150448", "214861"]
    assert official.tasks[0].meta["evidence"] == ["Lake Merrow", "Ostrander Hall"]
    assert official.tasks[1].meta["evidence"] == ["Glass Orchard (song)"]
    assert official.tasks[2].meta["evidence"] == []


def test_generic_jsonl_context_shapes():
    suite = load_suite(f"jsonl:{DATA / 'qa_context.jsonl'}")
    assert suite.kind == "qa" and suite.corpus is None
    by_id = {t.id: t for t in suite.tasks}
    assert by_id["q3"].answer == "38" and by_id["q2"].aliases == ["Varga"] and by_id["q4"].type == "bridge"
    single = suite.corpus_for(by_id["q1"])  # a plain string: one document, split into sentences
    assert len(single) == 1 and single.documents[0].sentences[1] == "It opened in 1911."
    assert suite.corpus_for(by_id["q2"]).titles == ["Ostrander Hall", "Lake Merrow"]
    assert suite.corpus_for(by_id["q4"]).titles == ["Pia Endresen", "Valdora"]
    assert suite.corpus_for(by_id["q5"]) is None
    opening, found = _search_lookup(suite, by_id["q3"], "Quillon River", "miles")
    assert "38 miles" in opening and found.endswith("It is 38 miles long.")
    _, found = _search_lookup(suite, by_id["q1"], "Cobb Street Library", "opened")
    assert found == "(Result 1 / 1) It opened in 1911."
    plain = load_suite(f"jsonl:{DATA / 'qa_plain.jsonl'}")
    assert plain.corpus is None and plain.task_corpora == {} and plain.tasks[1].aliases == ["forty-two"]


@pytest.mark.parametrize("name, fmt, kind", [
    ("hotpot_distractor.json", "hotpotqa", "qa"), ("hotpot_hf.jsonl", "hotpotqa", "qa"),
    ("fever_evidence.jsonl", "fever", "fever"), ("fever_official.jsonl", "fever", "fever"),
    ("qa_context.jsonl", "jsonl", "qa"),
])
def test_bare_paths_are_detected(name, fmt, kind):
    for spec in (DATA / name, str(DATA / name)):
        suite = load_suite(spec)
        assert (suite.meta["format"], suite.kind) == (fmt, kind)
        assert suite.name == str(DATA / name)


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"question": "Q\u00e9?", "answer": "A"}).encode() + b"\n")
    assert load_suite(path).tasks[0].question == "Q\u00e9?"


# ---------------------------------------------------------------- malformed files

_GOOD_HOTPOT = {"_id": "a1", "question": "Q?", "answer": "A", "type": "bridge", "level": "easy",
                "supporting_facts": [["T", 0]], "context": [["T", ["One.", " Two."]]]}


def _lines(*records: object) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


MALFORMED = [
    # (file name, spec prefix, content, every piece the message must hold)
    ("dev.jsonl", "jsonl", _lines({"question": "Q?", "answer": "A"}, {"question": "Q2?"}),
     ["dev.jsonl:2:", "field 'answer' is missing", "every record needs a string answer"]),
    ("dev.jsonl", "jsonl", _lines({"question": "Q?", "answer": "A"}, "", '{"question": "Q2?", "answer": }'),
     ["dev.jsonl:3:", "not valid JSON", "column"]),
    ("dev.jsonl", "jsonl", _lines({"question": ["Q?"], "answer": "A"}), ["dev.jsonl:1:", "field 'question'",
                                                                          "must be a string"]),
    ("dev.jsonl", "jsonl", _lines({"question": "Q?", "answer": "  "}), ["dev.jsonl:1:", "field 'answer' is empty"]),
    ("dev.jsonl", "jsonl", _lines({"question": "Q?", "answer": "A", "aliases": "B"}),
     ["dev.jsonl:1:", "'aliases'", "list of strings"]),
    ("dev.jsonl", "jsonl", _lines({"question": "Q?", "answer": "A", "context": [["T", "x"], 7]}),
     ["dev.jsonl:1:", "'context' must be", "item 2 is 7"]),
    ("dev.jsonl", "jsonl", _lines({"id": "a", "question": "Q?", "answer": "A"}, {"id": "b", "question": "Q?",
                                  "answer": "B"}, {"id": "a", "question": "Q3?", "answer": "C"}),
     ["dev.jsonl:3:", "id 'a'", "also used on line 1", "unique"]),
    ("hot.json", "hotpotqa", json.dumps([_GOOD_HOTPOT, {**_GOOD_HOTPOT, "_id": "a2", "context": ["T", "One."]}]),
     ["hot.json: record 2:", "'context' must be a list of [title, [sentences]] pairs"]),
    ("hot.json", "hotpotqa", json.dumps([{**_GOOD_HOTPOT, "supporting_facts": [["T", "0"]]}]),
     ["hot.json: record 1:", "'supporting_facts' must be a list of [title, sentence_id] pairs"]),
    ("hot.json", "hotpotqa", json.dumps([{k: v for k, v in _GOOD_HOTPOT.items() if k != "context"}]),
     ["hot.json: record 1:", "field 'context' is missing"]),
    ("hot.jsonl", "hotpotqa", _lines({**_GOOD_HOTPOT, "context": {"title": ["T", "U"], "sentences": [["One."]]}}),
     ["hot.jsonl:1:", "'context'", "same length"]),
    ("hot.json", "hotpotqa", json.dumps([_GOOD_HOTPOT, {**_GOOD_HOTPOT}]),
     ["hot.json: record 2:", "id 'a1'", "also used on record 1"]),
    ("hot.json", "hotpotqa", '[\n {"_id": "a1",\n  "question": }\n]', ["hot.json:", "not valid JSON", "line 3"]),
    ("hot.json", "hotpotqa", json.dumps([_GOOD_HOTPOT, ["a2", "Q?"]]), ["hot.json: record 2:", "JSON object"]),
    ("claims.jsonl", "fever", _lines({"claim": "C.", "label": "SUPPORTS"}, {"claim": "D.", "label": "MAYBE"}),
     ["claims.jsonl:2:", "field 'label'", "SUPPORTS, REFUTES, NOT ENOUGH INFO"]),
    ("claims.jsonl", "fever", _lines({"label": "SUPPORTS"}), ["claims.jsonl:1:", "field 'claim' is missing"]),
    ("claims.jsonl", "fever", _lines({"claim": "C."}), ["claims.jsonl:1:", "field 'label' is missing"]),
    ("claims.jsonl", "fever", _lines({"claim": "C.", "label": "REFUTES", "evidence": [{"title": "", "text": "x"}]}),
     ["claims.jsonl:1:", "'evidence' must be", "title"]),
    ("empty.jsonl", "jsonl", "", ["empty.jsonl is empty"]),
    ("blank.jsonl", "fever", "\n  \n\n", ["blank.jsonl is empty"]),
    ("data.jsonl", None, _lines({"prompt": "Q?", "completion": "A"}),
     ["data.jsonl:1:", "cannot tell the format", "supporting_facts", "claim", "question", "prompt"]),
]


@pytest.mark.parametrize("name, prefix, content, pieces", MALFORMED, ids=[f"{m[0]}-{i}" for i, m in enumerate(MALFORMED)])
def test_malformed_files_name_the_place_and_the_field(tmp_path, name, prefix, content, pieces):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetError) as info:
        load_suite(f"{prefix}:{path}" if prefix else path)
    message = str(info.value)
    assert all(piece in message for piece in pieces), message
    assert isinstance(info.value, InputError)


def test_missing_and_undecodable_files(tmp_path):
    with pytest.raises(DatasetError, match=re.escape(str(tmp_path / "nowhere.jsonl"))):
        load_suite(f"fever:{tmp_path / 'nowhere.jsonl'}")
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"question": "Caf\xe9?", "answer": "A"}\n')
    with pytest.raises(DatasetError, match="latin.jsonl: not UTF-8"):
        load_suite(latin)
    assert len(MALFORMED) >= 12


# ---------------------------------------------------------------- metrics


def test_supporting_recall_counts_opened_titles():
    task = load_suite(DATA / "hotpot_distractor.json").tasks[0]  # Cobb Street Library, Ostrander Hall

    def trace(*opened: str | None) -> Trace:
        return Trace(task=task.question, steps=[Step(index=i, opened=o) for i, o in enumerate(opened, 1)])

    assert supporting_recall(task, trace("OSTRANDER HALL", None, "Helena Varga")) == 0.5
    assert supporting_recall(task, trace("Ostrander Hall", "cobb street library", "Ostrander Hall")) == 1.0
    assert supporting_recall(task, trace()) == 0.0
    assert supporting_recall(load_suite("demo:dev").tasks[0], trace("Ostrander Hall")) is None
    assert supporting_recall(Task("x", "Q?", "A", meta={"supporting_titles": []}), trace("T")) is None


@pytest.mark.parametrize("text, label", [
    ("SUPPORTS", "SUPPORTS"), ("supports", "SUPPORTS"), ("Supported.", "SUPPORTS"), ("true", "SUPPORTS"),
    ("The claim is supported by the article.", "SUPPORTS"), ("Refutes.", "REFUTES"), ("REFUTED", "REFUTES"),
    ("False", "REFUTES"), ("the evidence refutes it", "REFUTES"), ("NOT ENOUGH INFO", "NOT ENOUGH INFO"),
    ("not enough information", "NOT ENOUGH INFO"), ("NEI", "NOT ENOUGH INFO"), ("not_enough_info", "NOT ENOUGH INFO"),
    ("There is not enough evidence.", "NOT ENOUGH INFO"), ("not supported", None), ("maybe", None), ("", None),
    ("supports or refutes", None), ("1968", None),
])
def test_normalize_fever_label(text, label):
    assert normalize_fever_label(text) == label


def test_the_wiki_style_suite_is_built_in_with_a_corpus_per_question(monkeypatch):
    from workbench import datasets

    suite = load_suite("wiki-style")
    assert len(suite) == 40 and set(suite.task_corpora) == {t.id for t in suite.tasks}
    first = suite.tasks[0]
    assert len(suite.task_corpora[first.id]) == 10  # the question's ten paragraphs, distractors included
    assert "wiki-style" in datasets.list_builtin_suites()
    monkeypatch.setattr(datasets, "WIKI_STYLE_FILE", datasets.WIKI_STYLE_FILE.with_name("absent.json"))
    assert "wiki-style" not in datasets.list_builtin_suites()  # an installed package without bench/: not offered
    with pytest.raises(InputError, match=r"hotpotqa:PATH"):
        load_suite("wiki-style")
