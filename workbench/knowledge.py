"""Knowledge sources: which corpus a run searches, as the app, the CLI and a notebook choose it.

A source is one of: the demo world's encyclopedia (``demo``, or the richer ``demo2``); a corpus the user uploaded (kept in the store,
so a restart keeps it); a folder given at start (``workbench serve --corpus PATH``, read again
each start); or one task's own paragraphs (a HotpotQA question opened from the Evaluate tab).
Each has a stable key, a label with its article count, and example questions: the demo world's
own, the ones a user saved with an upload, or the task's question.

    >>> sources = KnowledgeSources(Store("runs.db"), folders=["my_notes/"])     # doctest: +SKIP
    >>> sources.add_files(["guide.md"], name="guide")                              # doctest: +SKIP
    >>> corpus = sources.get("stored:guide")                                       # doctest: +SKIP
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterable

from .corpus import Corpus
from .documents import load_corpus_path, read_documents
from .errors import InputError

__all__ = ["KnowledgeSources", "DEMO_KEY", "DEMO2_KEY", "SOURCE_COLUMNS", "articles", "parse_questions", "read_question_file"]

DEMO_KEY = "demo"
DEMO_LABEL = "Demo world (fictional encyclopedia)"
DEMO2_KEY = "demo2"  # the richer demo world (version 2), generated in memory when first asked for
_PREFIXES = ("stored:", "folder:", "task:")
SOURCE_COLUMNS = ["name", "kind", "articles", "hash", "questions", "source"]


def articles(n: int) -> str:
    """"1 article", "2 articles"."""
    return f"{n} article{'' if n == 1 else 's'}"


def parse_questions(text: str | None) -> list[str]:
    """Example questions typed one per line (blank lines and surrounding spaces dropped, order kept, no repeats)."""
    lines = [" ".join(line.split()) for line in (text or "").splitlines()]
    return list(dict.fromkeys(q for q in lines if q))


def read_question_file(path: str | Path) -> list[str]:
    """Questions from a .txt file (one per line) or a .jsonl / .json suite file ({question, ...} per task)."""
    path = Path(path)
    if path.suffix.lower() in (".jsonl", ".json"):
        from .datasets import load_suite

        return [t.question for t in load_suite(str(path)).tasks]
    try:
        return parse_questions(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise InputError(f"{path.name} is not UTF-8 text; save the questions as UTF-8, one per line.") from err


class KnowledgeSources:
    """The corpora a run may search, by key: ``demo``, ``demo2``, ``stored:NAME``, ``folder:NAME``, ``task:ID``."""

    def __init__(self, store: Any = None, folders: Iterable[str | Path] = (), demo: Corpus | None = None,
                 demo_questions: list[str] | None = None, split_headings: bool = False) -> None:
        self.store = store
        self._demo = demo
        self._demo_questions = list(demo_questions or [])
        self._lock = threading.Lock()
        self._fixed: dict[str, tuple[str, Corpus, list[str]]] = {}  # key -> (kind, corpus, questions)
        self._stored: dict[str, tuple[str, Corpus]] = {}  # name -> (hash, corpus): parsed once per content
        for folder in folders:  # a bad folder fails here, at start, naming the file
            corpus = load_corpus_path(folder, split_headings=split_headings)
            self._fixed[f"folder:{corpus.name}"] = ("folder", corpus, [])

    # ------------------------------------------------------------------ listing
    def choices(self) -> list[tuple[str, str]]:
        """(label, key) pairs for a menu, the demo world first."""
        from .world.registry import world_label

        out = [(DEMO_LABEL, DEMO_KEY), (world_label(DEMO2_KEY), DEMO2_KEY)]
        for row in self._stored_rows():
            out.append((f"{row['name']} (uploaded · {articles(row['n_docs'])})", f"stored:{row['name']}"))
        for key, (kind, corpus, _) in self._fixed.items():
            what = "folder" if kind == "folder" else "task context"
            out.append((f"{corpus.name} ({what} · {articles(len(corpus))})", key))
        return out

    def table(self) -> Any:
        """The user's corpora (uploads and folders) as a DataFrame with SOURCE_COLUMNS, headers even when empty."""
        import pandas as pd

        rows = [{"name": r["name"], "kind": "uploaded", "articles": r["n_docs"], "hash": r["hash"],
                 "questions": len(r.get("questions") or []), "source": r.get("source", "")}
                for r in self._stored_rows()]
        rows += [{"name": c.name, "kind": kind, "articles": len(c), "hash": c.fingerprint, "questions": len(q),
                  "source": key} for key, (kind, c, q) in self._fixed.items()]
        return pd.DataFrame(rows, columns=SOURCE_COLUMNS)

    def _stored_rows(self) -> list[dict[str, Any]]:
        if self.store is None:
            return []
        try:
            return self.store.list_corpora()
        except Exception:  # an unreadable store must not take the menu down; the demo world still works
            return []

    # ------------------------------------------------------------------ resolving
    def get(self, key: str | None) -> Corpus:
        """The corpus of a key (or of a menu label); None or "demo" is the demo world."""
        key = self._key(key)
        if key == DEMO_KEY:
            if self._demo is None:
                from .world.generate import load_world

                self._demo = load_world().corpus
            return self._demo
        if key == DEMO2_KEY:
            from .world.registry import world_by_name

            return world_by_name(DEMO2_KEY).corpus
        if key in self._fixed:
            return self._fixed[key][1]
        if key.startswith("stored:") and self.store is not None:
            name = key.removeprefix("stored:")
            row = next((r for r in self._stored_rows() if r["name"] == name), None)
            if row is not None:
                with self._lock:
                    cached = self._stored.get(name)
                    if cached is None or cached[0] != row["hash"]:
                        cached = (row["hash"], self.store.load_corpus(name))
                        self._stored[name] = cached
                return cached[1]
        names = ", ".join(label for label, _ in self.choices())
        raise InputError(f"No knowledge source {key!r}. Available: {names}. Upload a corpus or pick one of these.")

    def _key(self, key: str | None) -> str:
        if not key:
            return DEMO_KEY
        key = str(key)
        if key in (DEMO_KEY, DEMO2_KEY) or key.startswith(_PREFIXES):  # already a key: no need to list the sources
            return key
        for label, k in self.choices():  # a menu label is accepted as well as its key
            if key == label:
                return k
        return key

    def questions(self, key: str | None) -> list[str]:
        """Example questions for a source: the demo world's, or those saved with the upload."""
        key = self._key(key)
        if key == DEMO_KEY:
            return list(self._demo_questions)
        if key == DEMO2_KEY:
            from .world.registry import world_tasks

            return [t.question for t in world_tasks(DEMO2_KEY, "dev")[::10]]
        if key in self._fixed:
            return list(self._fixed[key][2])
        row = next((r for r in self._stored_rows() if f"stored:{r['name']}" == key), None)
        return list((row or {}).get("questions") or [])

    # ------------------------------------------------------------------ changing
    def add_files(self, paths: Iterable[str | Path], name: str = "", *, split_headings: bool = False,
                  questions: Iterable[str] = (), replace: bool = False, max_bytes: int | None = None) -> dict[str, Any]:
        """Read uploaded files (JSONL, text, Markdown, PDF) into one corpus and store it, all or nothing."""
        paths = [Path(p) for p in paths if p]
        if not paths:
            raise InputError("No file to add: choose one or more .jsonl, .txt, .md or .pdf files.")
        if self.store is None:
            raise InputError("This workbench has no store to keep uploaded corpora in; start it with a --store path.")
        name = " ".join((name or "").split()) or paths[0].stem
        if name in (DEMO_KEY, DEMO2_KEY) or name.startswith(_PREFIXES):
            raise InputError(f"{name!r} is reserved; pick another corpus name.")
        if len(paths) == 1 and paths[0].is_dir():
            corpus = load_corpus_path(paths[0], name=name, split_headings=split_headings, max_bytes=max_bytes)
        else:
            docs = []
            for path in paths:
                docs.extend(read_documents(path, split_headings=split_headings, max_bytes=max_bytes))
            corpus = Corpus(_check_unique(docs), name=name)
        sources = ", ".join(p.name for p in paths)
        row = self.store.save_corpus(corpus, source=sources, replace=replace, questions=list(questions))
        return row

    def set_questions(self, key: str, questions: Iterable[str]) -> None:
        """Replace the example questions saved with a stored corpus (a folder's or a task's are fixed)."""
        key = self._key(key)
        if key in self._fixed:
            kind, corpus, _ = self._fixed[key]
            self._fixed[key] = (kind, corpus, list(questions))
            return
        if not key.startswith("stored:") or self.store is None:
            raise InputError("Example questions can be saved with an uploaded corpus; pick one first.")
        self.store.set_corpus_questions(key.removeprefix("stored:"), list(questions))

    def remove(self, key: str) -> bool:
        """Delete an uploaded corpus from the store (folders and the demo world cannot be removed)."""
        key = self._key(key)
        if key in (DEMO_KEY, DEMO2_KEY) or key.startswith("folder:"):
            raise InputError("Only uploaded corpora can be removed; the demo world and --corpus folders stay.")
        if key in self._fixed:
            with self._lock:
                return self._fixed.pop(key, None) is not None
        name = key.removeprefix("stored:")
        with self._lock:
            self._stored.pop(name, None)
        return bool(self.store is not None and self.store.delete_corpus(name))

    def add_task(self, task: Any, corpus: Corpus, suite: str = "") -> str:
        """Offer one task's own paragraphs (e.g. a HotpotQA question's ten) as a source; returns its key."""
        key = f"task:{suite}:{task.id}" if suite else f"task:{task.id}"
        named = Corpus(corpus.documents, name=f"{suite + ' ' if suite else ''}{task.id}")
        self._fixed[key] = ("task", named, [task.question])
        return key


def _check_unique(docs: list[Any]) -> list[Any]:
    """Documents from several files: two with the same title would make search ambiguous."""
    from .corpus import normalize_title

    seen: dict[str, str] = {}
    clashes = []
    for d in docs:
        key = normalize_title(d.title)
        if key in seen:
            clashes.append(d.title)
        seen.setdefault(key, d.title)
    if clashes:
        raise InputError(f"Two documents are titled {', '.join(repr(t) for t in clashes[:5])}: every title in a "
                         "corpus must be unique. Rename one (a JSONL title, a Markdown heading or a file name).")
    return docs
