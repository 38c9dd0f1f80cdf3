"""Corpus loading and retrieval: BM25, dense MiniLM and their hybrid."""

import json

import pytest

from workbench.corpus import Corpus, Document, MiniLMEncoder, normalize_title, split_sentences
from workbench.errors import CorpusError, InputError


def test_split_sentences():
    assert split_sentences("It is 2.5 km long. It rises in 1312. Done!") == ["It is 2.5 km long.", "It rises in 1312.", "Done!"]


def test_exact_title_lookup_ignores_case_quotes_and_spacing(corpus):
    assert corpus.get('  "mount   OSSA" ').title == "Mount Ossa"
    assert corpus.get("Mount Os") is None
    assert normalize_title("[Drume]") == "drume"


def test_bm25_ranks_the_matching_document_first(corpus):
    hits = corpus.search("novelist born 1931")
    assert hits[0].document.title == "Lio Brandt"
    assert hits == sorted(hits, key=lambda h: -h.score)
    assert corpus.search("   ") == []


def test_unknown_method(corpus):
    with pytest.raises(InputError, match="Available: bm25, dense, hybrid"):
        corpus.search("x", method="tfidf")


def test_jsonl_round_trip(tmp_path, corpus):
    path = corpus.to_jsonl(tmp_path / "c.jsonl")
    again = Corpus.from_jsonl(path)
    assert again.titles == corpus.titles
    assert [d.sentences for d in again] == [d.sentences for d in corpus]
    assert again.fingerprint == corpus.fingerprint


@pytest.mark.parametrize(
    "lines,message",
    [
        (['{"title": "A", "text": "x."}', "not json"], r"c.jsonl:2: not valid JSON"),
        (['{"title": "A"}'], r"c.jsonl:1: field 'text' is missing"),
        (['{"title": "", "text": "x"}'], r"c.jsonl:1: field 'title' is missing or empty"),
        (["[1, 2]"], r"c.jsonl:1: expected an object"),
        ([""], "holds no documents"),
    ],
)
def test_bad_jsonl_names_the_line_and_field(tmp_path, lines, message):
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(CorpusError, match=message):
        Corpus.from_jsonl(path)


def test_missing_file(tmp_path):
    with pytest.raises(CorpusError, match="No corpus file"):
        Corpus.from_jsonl(tmp_path / "nope.jsonl")


def test_empty_title_refused():
    with pytest.raises(CorpusError, match="empty title"):
        Document("  ", "text")


def test_dense_and_hybrid_retrieval_with_minilm(corpus):
    encoder = MiniLMEncoder.shared()
    vectors = encoder.encode(["a mountain", "a tall peak", "a novelist"])
    assert tuple(vectors.shape) == (3, 384)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2])  # meaning, not spelling
    assert corpus.search("a tall peak", method="dense")[0].document.title == "Mount Ossa"
    hybrid = corpus.search("writer of books", method="hybrid", k=5)
    assert hybrid[0].document.title == "Lio Brandt"
    assert len({h.document.title for h in hybrid}) == len(hybrid)


def test_encoder_path_is_found_without_importing_the_package():
    path = MiniLMEncoder.default_path()
    assert (path / "config.json").is_file() and json.loads((path / "config.json").read_text())["model_type"] == "bert"
