"""The corpora half of the run store: users' own knowledge corpora, saved by name.

One ``corpora`` row per corpus (its name, the ``Corpus.fingerprint`` of its content, how many
documents, where it came from) and one ``corpus_documents`` row per document, in order. A corpus is
written in one transaction, so a save that fails stores nothing (and a failed replace keeps the old
corpus whole).

    >>> store.save_corpus(load_corpus_path("notes/"), source="folder notes/")   # doctest: +SKIP
    >>> store.load_corpus("notes").fingerprint                                  # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

from ..corpus import Corpus, Document
from ..errors import InputError, StoreError

__all__ = ["CorporaMixin", "CORPORA_MIGRATION"]

CORPORA_MIGRATION = """
    CREATE TABLE IF NOT EXISTS corpora (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        hash TEXT NOT NULL,
        n_docs INTEGER NOT NULL,
        source TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        questions_json TEXT NOT NULL DEFAULT '[]'
    );
    CREATE TABLE IF NOT EXISTS corpus_documents (
        corpus_id INTEGER NOT NULL,
        position INTEGER NOT NULL,
        doc_id TEXT NOT NULL,
        title TEXT NOT NULL,
        text TEXT NOT NULL,
        sentences_json TEXT NOT NULL,
        meta_json TEXT NOT NULL,
        PRIMARY KEY (corpus_id, position)
    );
    CREATE INDEX IF NOT EXISTS corpora_created ON corpora(created_at DESC)
"""

_ROW = ("name", "hash", "n_docs", "source", "created_at", "questions_json")


class CorporaMixin:
    """Corpus methods of Store (it provides _tx, _read and path)."""

    def save_corpus(self, corpus: Corpus, source: str = "", replace: bool = False,
                    questions: list[str] | None = None) -> dict[str, Any]:
        """Store ``corpus`` under its name; returns its row (name, hash, n_docs, source, created_at, questions).

        Saving the same content again under the same name returns the stored row (with ``questions``, when
        given, saved); other content under a stored name needs ``replace=True``. ``questions``: example
        questions about the corpus, offered in the app.
        """
        name = corpus.name.strip() if isinstance(corpus.name, str) else ""
        if not name:
            raise InputError("A corpus needs a name to be stored: pass name=... when building it.")
        if len(corpus) == 0:
            raise InputError(f"Corpus {name!r} has no documents; there is nothing to store.")
        with self._tx("save a corpus to") as conn:  # type: ignore[attr-defined]
            old = conn.execute("SELECT id, hash, n_docs FROM corpora WHERE name=?", (name,)).fetchone()
            if old is not None and not replace:
                if old[1] == corpus.fingerprint:
                    if questions is not None:
                        conn.execute("UPDATE corpora SET questions_json=? WHERE id=?", (_questions(questions), old[0]))
                    return _row(conn.execute(f"SELECT {', '.join(_ROW)} FROM corpora WHERE id=?", (old[0],)).fetchone())
                raise InputError(f"A corpus named {name!r} is already stored ({old[2]} documents) with other content. "
                                 "Pass replace=True to overwrite it, or save it under another name.")
            if old is not None:
                conn.execute("DELETE FROM corpus_documents WHERE corpus_id=?", (old[0],))
                conn.execute("DELETE FROM corpora WHERE id=?", (old[0],))
            row = (name, corpus.fingerprint, len(corpus), source, time.time(), _questions(questions or []))
            corpus_id = conn.execute(f"INSERT INTO corpora ({', '.join(_ROW)}) VALUES (?,?,?,?,?,?)", row).lastrowid
            conn.executemany("INSERT INTO corpus_documents VALUES (?,?,?,?,?,?,?)", _document_rows(corpus_id, corpus))
        return _row(row)

    def list_corpora(self) -> list[dict[str, Any]]:
        """The stored corpora, newest first: dicts with name, hash, n_docs, source, created_at."""
        with self._read() as conn:  # type: ignore[attr-defined]
            rows = conn.execute(f"SELECT {', '.join(_ROW)} FROM corpora ORDER BY created_at DESC, id DESC").fetchall()
        return [_row(r) for r in rows]

    def load_corpus(self, name: str) -> Corpus:
        """The corpus stored as ``name``, its documents in their saved order (same fingerprint as saved)."""
        with self._read() as conn:  # type: ignore[attr-defined]
            head = conn.execute("SELECT id, hash FROM corpora WHERE name=?", (name,)).fetchone()
            rows = [] if head is None else conn.execute(
                "SELECT doc_id, title, text, sentences_json, meta_json FROM corpus_documents WHERE corpus_id=? "
                "ORDER BY position", (head[0],)).fetchall()
        where = self.path  # type: ignore[attr-defined]
        if head is None:
            names = [c["name"] for c in self.list_corpora()]
            stored = f"Stored corpora: {', '.join(names)}." if names else "No corpus is stored yet; save one first."
            raise StoreError(f"No corpus named {name!r} in {where}. {stored}")
        try:
            docs = [Document(title, text, sentences=json.loads(sents), id=doc_id, meta=json.loads(meta))
                    for doc_id, title, text, sents, meta in rows]
        except (json.JSONDecodeError, TypeError, ValueError) as err:
            raise StoreError(f"Corpus {name!r} in {where} is damaged and cannot be read: {err}. Delete it and save "
                             "it again.") from err
        corpus = Corpus(docs, name=name)
        if corpus.fingerprint != head[1]:
            raise StoreError(f"Corpus {name!r} in {where} is damaged: its documents do not match its hash "
                             f"({corpus.fingerprint} != {head[1]}). Delete it and save it again.")
        return corpus

    def set_corpus_questions(self, name: str, questions: list[str]) -> None:
        """Replace the example questions saved with a stored corpus."""
        with self._tx("save example questions to") as conn:  # type: ignore[attr-defined]
            if conn.execute("UPDATE corpora SET questions_json=? WHERE name=?", (_questions(questions), name)).rowcount == 0:
                raise InputError(f"No corpus named {name!r} is stored; upload it first, then save its questions.")

    def delete_corpus(self, name: str) -> bool:
        """Remove a stored corpus and its documents; False if there was none of that name."""
        with self._tx("delete a corpus from") as conn:  # type: ignore[attr-defined]
            head = conn.execute("SELECT id FROM corpora WHERE name=?", (name,)).fetchone()
            if head is None:
                return False
            conn.execute("DELETE FROM corpus_documents WHERE corpus_id=?", (head[0],))
            conn.execute("DELETE FROM corpora WHERE id=?", (head[0],))
            return True


def _document_rows(corpus_id: int, corpus: Corpus) -> Iterator[tuple]:
    """Rows as they are written (a document that cannot be stored aborts the whole transaction)."""
    for position, d in enumerate(corpus.documents):
        try:
            meta = json.dumps(d.meta, ensure_ascii=False)
        except (TypeError, ValueError) as err:
            raise InputError(f"Document {d.title!r} of corpus {corpus.name!r} has meta that cannot be stored as JSON "
                             f"({err}). Keep meta to strings, numbers, lists and dicts.") from err
        yield (corpus_id, position, d.id, d.title, d.text, json.dumps(d.sentences, ensure_ascii=False), meta)


def _questions(questions: list[str]) -> str:
    if not all(isinstance(q, str) for q in questions):
        raise InputError("Example questions must be strings, one question each.")
    return json.dumps([q for q in questions if q.strip()], ensure_ascii=False)


def _row(row: tuple) -> dict[str, Any]:
    """A corpora row as a dict (questions decoded; a damaged list reads as none)."""
    out = dict(zip(_ROW, row))
    try:
        questions = json.loads(out.pop("questions_json") or "[]")
    except ValueError:
        questions = []
    out["questions"] = [q for q in questions if isinstance(q, str)] if isinstance(questions, list) else []
    return out
