"""Knowledge sources: the demo world, uploaded corpora (stored), --corpus folders and a task's own paragraphs,
through the Python API and the app (gradio_client against a real server)."""

import json

import pytest

from workbench.errors import InputError
from workbench.knowledge import DEMO_KEY, SOURCE_COLUMNS, KnowledgeSources, parse_questions
from workbench.store import Store
from workbench.testing import ScriptedModel

GUIDE = """# Bellwether Lighthouse

The Bellwether Lighthouse stands on the northern cape of Orrin Island. It was first lit in 1874.
Its lamp can be seen from 31 kilometres away.

The keeper's cottage is now a small museum about shipwrecks.
"""

HARBOUR = """# Orrin Harbour

Orrin Harbour is the only deep-water port of Orrin Island. Ferries leave it twice a day for the mainland.
"""


@pytest.fixture
def docs(tmp_path):
    (tmp_path / "lighthouse.md").write_text(GUIDE, encoding="utf-8")
    (tmp_path / "harbour.md").write_text(HARBOUR, encoding="utf-8")
    return tmp_path


def test_an_upload_is_stored_listed_searchable_and_removable(tmp_path, docs):
    store = Store(tmp_path / "runs.db")
    sources = KnowledgeSources(store, demo_questions=["When was Varnholt founded?"])
    assert list(sources.table().columns) == SOURCE_COLUMNS and len(sources.table()) == 0  # headers when empty
    row = sources.add_files([docs / "lighthouse.md", docs / "harbour.md"], "orrin",
                            questions=["When was the Bellwether Lighthouse first lit?"])
    assert row["name"] == "orrin" and row["n_docs"] == 2
    assert ("orrin (uploaded · 2 articles)", "stored:orrin") in sources.choices()
    corpus = sources.get("stored:orrin")
    assert corpus.titles == ["Bellwether Lighthouse", "Orrin Harbour"]
    assert sources.get("orrin (uploaded · 2 articles)") is corpus  # a menu label resolves like its key
    assert sources.questions("stored:orrin") == ["When was the Bellwether Lighthouse first lit?"]
    assert sources.questions(DEMO_KEY) == ["When was Varnholt founded?"]
    sources.set_questions("stored:orrin", ["Where is Orrin Harbour?", "When was the lighthouse first lit?"])
    assert sources.questions("stored:orrin") == ["Where is Orrin Harbour?", "When was the lighthouse first lit?"]
    sources.set_questions("stored:orrin", ["When was the Bellwether Lighthouse first lit?"])

    again = KnowledgeSources(Store(tmp_path / "runs.db"))  # a restart keeps it
    assert again.get("stored:orrin").fingerprint == corpus.fingerprint
    assert again.table().iloc[0].to_dict() == {"name": "orrin", "kind": "uploaded", "articles": 2,
                                               "hash": corpus.fingerprint, "questions": 1,
                                               "source": "lighthouse.md, harbour.md"}
    assert again.remove("stored:orrin") is True
    assert [key for _, key in again.choices()] == [DEMO_KEY, "demo2"]  # the demo worlds stay
    with pytest.raises(InputError, match="No knowledge source 'stored:orrin'"):
        again.get("stored:orrin")


def test_duplicate_titles_across_files_fail_and_store_nothing(tmp_path, docs):
    (docs / "copy.md").write_text(GUIDE, encoding="utf-8")
    store = Store(tmp_path / "runs.db")
    sources = KnowledgeSources(store)
    with pytest.raises(InputError, match="Two documents are titled 'Bellwether Lighthouse'"):
        sources.add_files([docs / "lighthouse.md", docs / "copy.md"], "dupes")
    assert store.list_corpora() == []


def test_reserved_names_and_empty_uploads_are_refused(tmp_path, docs):
    sources = KnowledgeSources(Store(tmp_path / "runs.db"))
    with pytest.raises(InputError, match="No file to add"):
        sources.add_files([], "x")
    with pytest.raises(InputError, match="reserved"):
        sources.add_files([docs / "lighthouse.md"], "demo")
    with pytest.raises(InputError, match="Only uploaded corpora can be removed"):
        sources.remove(DEMO_KEY)


def test_folders_given_at_start_are_sources_and_a_task_brings_its_own_paragraphs(tmp_path, docs, corpus):
    sources = KnowledgeSources(Store(tmp_path / "runs.db"), folders=[docs])
    key = f"folder:{docs.name}"
    assert sources.get(key).titles == ["Orrin Harbour", "Bellwether Lighthouse"]  # sorted by file name
    from workbench.types import Task

    task_key = sources.add_task(Task("q7", "Where is Varnholt?", "Quessaland"), corpus, suite="mini")
    assert sources.get(task_key).titles == corpus.titles
    assert sources.questions(task_key) == ["Where is Varnholt?"]


def test_parse_questions_keeps_order_drops_blanks_and_repeats():
    assert parse_questions(" a  b \n\nc\na  b\n") == ["a b", "c"]


# ---------------------------------------------------------------------------- the app


@pytest.fixture(scope="module")
def served(serve_app):
    script = [" I look it up.\nAction: search[bellwether lighthouse]", " It says 1874.\nAction: finish[1874]"]
    return serve_app("knowledge", concurrency=2, models={"scripted": _Replay(script)})


class _Replay:
    """A ScriptedModel factory that replays the same script for every run (the app shares one model)."""

    def __init__(self, script):
        self.script, self.name = script, "scripted"

    def new_session(self):
        return ScriptedModel(self.script).new_session()


def test_the_app_uploads_markdown_and_a_run_quotes_it(served, docs):
    from gradio_client import Client, handle_file

    demo, url, store = served
    client = Client(url, verbose=False)
    status, source, examples, table = client.predict(
        [handle_file(str(docs / "lighthouse.md"))], "orrin", False, "When was the Bellwether Lighthouse first lit?",
        None, api_name="/add_corpus")
    assert "Added **orrin**: 1 article (content hash" in status
    assert table["data"][0][:3] == ["orrin", "uploaded", 1]
    result = client.predict("When was the Bellwether Lighthouse first lit?", "react", "scripted", 4, 0.0, "bm25", 0,
                            "stored:orrin", api_name="/run")
    trace = store.get_trace(result[5])
    assert trace.steps[0].observation.startswith("The Bellwether Lighthouse stands on the northern cape")
    assert trace.answer == "1874"
    assert trace.meta["corpus"]["name"] == "orrin"
    assert trace.meta["corpus"]["hash"] == store.list_corpora()[0]["hash"]


def test_a_bad_upload_is_a_message_and_stores_nothing(served, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    _, url, store = served
    before = store.list_corpora()
    empty = tmp_path / "empty.md"
    empty.write_text("  \n", encoding="utf-8")
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"\x00\x01\x02binary\x00")
    client = Client(url, verbose=False)
    for bad, message in ((empty, "empty"), (binary, "binary")):
        with pytest.raises(AppError, match=message):
            client.predict([handle_file(str(bad))], "bad", False, "", None, api_name="/add_corpus")
    assert store.list_corpora() == before
    assert store.integrity_check() == "ok"


def test_a_hotpotqa_task_opens_in_the_run_tab_with_its_own_paragraphs(served, tmp_path):
    from gradio_client import Client, handle_file

    demo, url, _ = served
    record = {"_id": "h1", "question": "Which island has the Bellwether Lighthouse?", "answer": "Orrin Island",
              "type": "bridge", "supporting_facts": [["Bellwether Lighthouse", 0]],
              "context": [["Bellwether Lighthouse", ["The Bellwether Lighthouse stands on Orrin Island."]],
                          ["Cape Sable", ["Cape Sable is a headland."]]]}
    path = tmp_path / "hotpot.json"
    path.write_text(json.dumps([record]), encoding="utf-8")
    client = Client(url, verbose=False)
    menu = client.predict("demo:dev", handle_file(str(path)), api_name="/suite_tasks")
    assert menu["choices"] == [["h1: Which island has the Bellwether Lighthouse?", "h1"]] and menu["value"] == "h1"
    instruction, source, *_ = client.predict("demo:dev", handle_file(str(path)), "h1", api_name="/open_task")
    assert instruction == record["question"]
    assert source["value"] == "task:hotpot.json:h1"
    assert ["hotpot.json h1 (task context · 2 articles)", "task:hotpot.json:h1"] in source["choices"]
    corpus = demo.workbench_context.get_corpus(source["value"])
    assert corpus.titles == ["Bellwether Lighthouse", "Cape Sable"]


def test_a_demo2_task_opens_in_the_run_tab_on_the_demo2_corpus(served):
    from gradio_client import Client

    from workbench.datasets import load_suite

    demo, url, _ = served
    client = Client(url, verbose=False)
    for spec, world in (("demo2:dev", "demo2"), ("demo2-fever:dev", "demo2"), ("demo:dev", DEMO_KEY)):
        task = load_suite(spec).tasks[0]
        instruction, source, *_ = client.predict(spec, None, task.id, api_name="/open_task")
        assert instruction == task.question and source["value"] == world, spec
    corpus = demo.workbench_context.get_corpus("demo2")
    assert corpus.name == "demo2-world-0" and corpus is load_suite("demo2:dev").corpus


def test_workbench_run_corpus_takes_a_folder_or_a_stored_name(tmp_path, docs, capsys):
    from workbench.cli import main

    db = str(tmp_path / "runs.db")
    assert main(["--store", db, "run", "Where is Orrin Harbour?", "--model", "tiny", "--max-steps", "1",
                 "--max-new-tokens", "4", "--corpus", str(docs)]) == 0
    store = Store(db)
    assert store.get_trace(store.list_runs()[0].id).meta["corpus"]["name"] == docs.name
    KnowledgeSources(store).add_files([docs / "harbour.md"], "harbour")
    assert main(["--store", db, "run", "Where is Orrin Harbour?", "--model", "tiny", "--max-steps", "1",
                 "--max-new-tokens", "4", "--corpus", "harbour"]) == 0
    assert store.get_trace(store.list_runs()[0].id).meta["corpus"]["name"] == "harbour"
    assert main(["--store", db, "run", "Where?", "--model", "tiny", "--corpus", "no-such-corpus"]) == 2
    assert "--corpus 'no-such-corpus' is not a file or folder, a demo world (demo, demo2) or a corpus uploaded in the " \
           "app (stored: harbour)" in capsys.readouterr().err


def test_serve_corpus_folders_are_offered_in_the_app(tmp_path, docs):
    from workbench.app import build_app

    demo = build_app(model="tiny", store=tmp_path / "runs.db", corpora=[docs])
    choices = demo.workbench_context.knowledge.choices()
    assert (f"{docs.name} (folder · 2 articles)", f"folder:{docs.name}") in choices
