"""Task suites to evaluate on: the demo world's, and benchmark files users bring.

A Suite is a list of Tasks plus the knowledge each task may search: one shared corpus (the demo
world), or a corpus per task (HotpotQA, whose every question comes with its own paragraphs).

    >>> suite = load_suite("demo:test:bridge")          # doctest: +SKIP
    >>> len(suite), suite.corpus_for(suite.tasks[0]).name   # doctest: +SKIP
    (20, 'demo-world-0')

Specs understood by :func:`load_suite`:

- ``demo:SPLIT`` or ``demo:SPLIT:TYPE[,TYPE]`` — the demo world's train / dev / test tasks;
- ``demo2:SPLIT[:TYPE,TYPE]`` — the same of the richer demo world (version 2: prose, namesakes, aliases);
- ``demo-fever:SPLIT`` — FEVER-style claims about the demo world, generated from its facts (``demo2-fever:SPLIT``:
  about demo2);
- ``hotpotqa:PATH`` — HotpotQA, official distractor layout (JSON list) or Hugging Face layout
  (JSON list or JSONL, ``context`` as ``{title: [...], sentences: [[...]]}``);
- ``fever:PATH`` — FEVER-style claims (JSONL: claim, label, optional evidence documents);
- ``jsonl:PATH`` — any JSONL of {question, answer[, context]};
- a bare PATH — the format is detected from the content;
- ``wiki-style`` — 40 HotpotQA-layout questions about real entities, paragraphs written in Wikipedia's style
  (``bench/data/wiki_style_hotpot.json`` of a clone): real text to try beyond the demo worlds.

Files are checked completely before anything runs: a malformed record raises DatasetError naming
the file, the place (``dev.jsonl:7`` for a JSONL line, ``hotpot.json: record 3`` for the third
record of a JSON list, counted from 1) and the field. A task with its own paragraphs gets its own
Corpus in ``Suite.task_corpora``; file suites have no shared corpus (``corpus=None``).
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

from .corpus import Corpus, Document, normalize_title
from .errors import DatasetError, InputError
from .types import FEVER_LABELS, TASK_TYPES, Task, Trace
from .world.fever import fever_claims
from .world.generate import SPLITS
from .world.registry import FEVER_SUFFIX, parse_world_spec, suite_world, world_by_name, world_tasks

__all__ = ["Suite", "FEVER_LABELS", "SPEC_FORMS", "FEVER_PER_LABEL", "load_suite", "list_builtin_suites",
           "supporting_recall", "normalize_fever_label"]

SPEC_FORMS = ("demo:SPLIT", "demo:SPLIT:TYPE[,TYPE]", "demo2:SPLIT[:TYPE,TYPE]", "demo-fever:SPLIT", "demo2-fever:SPLIT",
              "hotpotqa:PATH", "fever:PATH", "jsonl:PATH", "PATH (format detected)", "wiki-style")
# Real entities in Wikipedia's style, HotpotQA's distractor layout: in a clone, not in an installed package.
WIKI_STYLE = "wiki-style"
WIKI_STYLE_FILE = Path(__file__).resolve().parents[1] / "bench" / "data" / "wiki_style_hotpot.json"
FEVER_PER_LABEL = 20  # demo-fever claims per label and split
_S, _R, _N = FEVER_LABELS


@dataclass
class Suite:
    """Tasks and the corpus (or corpora) they are answered from."""

    name: str  # the spec it was loaded from, e.g. "demo:test" or "hotpotqa:dev.json"
    tasks: list[Task]
    corpus: Corpus | None = None  # shared by every task (None when each task has its own)
    task_corpora: dict[str, Corpus] = field(default_factory=dict)  # task id -> its own corpus
    kind: str = "qa"  # "qa": free-text answers; "fever": a label out of FEVER_LABELS
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.tasks)

    def corpus_for(self, task: Task) -> Corpus | None:
        """The corpus ``task`` may search: its own if it has one, else the suite's."""
        return self.task_corpora.get(task.id, self.corpus)

    def limit(self, n: int | None) -> "Suite":
        """The first ``n`` tasks, spread across task types (all when n is None).

        Types are dealt round-robin in the order they first appear, so ``limit(5)`` of a demo
        suite holds one task of each type, and a run cut short has still seen every kind.
        """
        if n is None:
            return self
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InputError(f"limit must be a whole number of at least 1 (or None for every task), got {n!r}.")
        groups: dict[str, list[Task]] = {}
        for task in self.tasks:
            groups.setdefault(task.type, []).append(task)
        deepest = max((len(g) for g in groups.values()), default=0)
        kept = [g[i] for i in range(deepest) for g in groups.values() if i < len(g)][:n]
        ids = {t.id for t in kept}
        return replace(self, tasks=kept, task_corpora={k: c for k, c in self.task_corpora.items() if k in ids},
                       meta={**self.meta, "limit": n})


# ---------------------------------------------------------------- specs


def load_suite(spec: str | Path, limit: int | None = None) -> Suite:
    """The suite named by ``spec`` (see the module docstring), cut to ``limit`` tasks by Suite.limit.

    >>> load_suite("demo:dev:arithmetic", limit=3).tasks[0].type     # doctest: +SKIP
    'arithmetic'
    """
    if isinstance(spec, Path):
        return _load_file(None, spec, str(spec)).limit(limit)
    text = str(spec).strip()
    prefix, sep, rest = text.partition(":")
    if not text:
        raise InputError(f"The suite spec is empty. Valid forms: {', '.join(SPEC_FORMS)}.")
    world = suite_world(text)  # demo, demo2 and their -fever claims answer from the world's corpus
    if text == WIKI_STYLE:
        if not WIKI_STYLE_FILE.is_file():
            raise InputError(f"{WIKI_STYLE} ships in a clone of the repository (bench/data/wiki_style_hotpot.json); "
                             "this install has no such file. Pass a HotpotQA file instead: hotpotqa:PATH.")
        suite = _load_file("hotpotqa", WIKI_STYLE_FILE, text)
    elif world is not None:
        suite = _demo_fever_suite(rest, text, world) if prefix.endswith(FEVER_SUFFIX) else _demo(text)
    elif prefix in _FORMATS:
        if not rest.strip():
            raise InputError(f"{prefix}: needs the path of a file, e.g. {prefix}:data/dev.json.")
        suite = _load_file(prefix, Path(rest.strip()).expanduser(), text)
    elif not sep or len(prefix) == 1 or Path(text).expanduser().exists():  # "C:\..." is a path, not a prefix
        suite = _load_file(None, Path(text).expanduser(), text)
    else:
        raise InputError(f"Unknown suite spec {text!r}. Valid forms: {', '.join(SPEC_FORMS)}.")
    return suite.limit(limit)


def list_builtin_suites() -> list[str]:
    """The suites that need no file, for the app's dropdown: whole held-out splits, then one per type."""
    held = [s for s in SPLITS if s != "train"]
    return ([f"demo:{s}" for s in held] + [f"demo:{s}:{t}" for s in held for t in TASK_TYPES]
            + [f"demo-fever:{s}" for s in held] + [f"demo2:{s}" for s in held]
            + [f"demo2:{s}:{t}" for s in held for t in TASK_TYPES] + [f"demo2-fever:{s}" for s in held]
            + ([WIKI_STYLE] if WIKI_STYLE_FILE.is_file() else []))


def _demo(spec: str) -> Suite:
    name, split, wanted = parse_world_spec(spec) or ("demo", "", None)
    tasks = world_tasks(name, split, types=wanted)  # raises InputError listing the valid splits / types
    return Suite(spec, tasks, corpus=world_by_name(name).corpus, meta={"split": split, "types": wanted, "world": name})


# ---------------------------------------------------------------- reading files


def _records(path: Path) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(where, place, record) per record of a JSON list or a JSONL file (streamed line by line).

    ``where`` prefixes messages ("dev.jsonl:7", "hotpot.json: record 3"); ``place`` names the
    record inside the file ("line 7", "record 3").
    """
    if not path.is_file():
        shown = path if path.is_absolute() else f"{path} ({path.resolve()})"
        raise DatasetError(f"No dataset file at {shown}. Pass the path of a JSON or JSONL file.")
    name, count = path.name, 0
    try:
        with path.open(encoding="utf-8-sig") as fh:
            first = ""
            while not first and (chunk := fh.read(1024)):
                first = chunk.lstrip()[:1]
            fh.seek(0)
            if first == "[":  # a JSON list has to be parsed whole; JSONL is read a line at a time
                try:
                    data = json.load(fh)
                except json.JSONDecodeError as err:
                    raise DatasetError(f"{name}: not valid JSON at line {err.lineno}, column {err.colno} "
                                       f"({err.msg}).") from err
                rows: Iterator[tuple[str, str, Any]] = ((f"{name}: record {i}", f"record {i}", r)
                                                        for i, r in enumerate(data, 1))
            else:
                rows = _jsonl_rows(fh, name)
            for where, place, record in rows:
                if not isinstance(record, dict):
                    raise DatasetError(f"{where}: expected a JSON object with named fields, "
                                       f"got {type(record).__name__}.")
                count += 1
                yield where, place, record
    except UnicodeDecodeError as err:
        raise DatasetError(f"{name}: not UTF-8 text (byte {err.start}); save the file as UTF-8.") from err
    if count == 0:
        raise DatasetError(f"{name} is empty: it must hold a JSON list of records or one JSON object per line.")


def _jsonl_rows(fh: Any, name: str) -> Iterator[tuple[str, str, Any]]:
    for lineno, line in enumerate(fh, 1):
        if line.strip():
            try:
                yield f"{name}:{lineno}", f"line {lineno}", json.loads(line)
            except json.JSONDecodeError as err:
                raise DatasetError(f"{name}:{lineno}: not valid JSON at column {err.colno} ({err.msg}); "
                                   "a JSONL file holds one JSON object per line.") from err


def _string(record: dict[str, Any], where: str, keys: tuple[str, ...], need: str, required: bool = True,
            numbers: bool = False) -> str | None:
    """The first of ``keys`` present, as a non-empty string (ints allowed for ids, numbers for answers)."""
    key = next((k for k in keys if k in record and record[k] is not None), None)
    if key is None:
        if required:
            raise DatasetError(f"{where}: field '{keys[0]}' is missing; every record needs {need}.")
        return None
    value = record[key]
    if numbers and isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise DatasetError(f"{where}: field '{key}' must be a string (every record needs {need}), "
                           f"got {type(value).__name__} {_short(value)}.")
    if not value.strip():
        raise DatasetError(f"{where}: field '{key}' is empty; every record needs {need}.")
    return value.strip()


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


_HOTPOT_SHAPE = "a list of [title, [sentences]] pairs (or {\"title\": [...], \"sentences\": [[...], ...]})"
_DOCS_SHAPE = ("a list of {\"title\", \"text\"} objects or [title, text] / [title, [sentences]] pairs "
               "(or {\"title\": [...], \"sentences\": [[...], ...]})")


def _documents(value: Any, where: str, name: str, shape: str) -> list[Document]:
    """Paragraphs in any of the accepted shapes -> Documents (sentences kept, so sentence ids still index them)."""
    def bad(detail: str) -> DatasetError:
        return DatasetError(f"{where}: '{name}' must be {shape}; {detail}.")

    if isinstance(value, dict):
        titles, bodies = value.get("title"), value.get("sentences", value.get("text"))
        if not isinstance(titles, list) or not isinstance(bodies, list) or len(titles) != len(bodies):
            raise bad("its 'title' and 'sentences' must be lists of the same length")
        items: list[Any] = list(zip(titles, bodies))
    elif isinstance(value, list):
        items = [(i.get("title"), i.get("sentences", i.get("text"))) if isinstance(i, dict) else i for i in value]
    else:
        raise bad(f"got {type(value).__name__} {_short(value)}")
    docs = []
    for i, item in enumerate(items, 1):
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise bad(f"item {i} is {_short(item)}")
        title, body = item
        if not isinstance(title, str) or not title.strip():
            raise bad(f"item {i} has the title {_short(title)}; a title must be a non-empty string")
        given = body if isinstance(body, list) else [body]
        if not all(isinstance(s, str) for s in given):
            raise bad(f"the text of item {i} ({title!r}) is {_short(body)}, not a string or a list of strings")
        # Given sentences are kept as they are (empty ones too), so supporting-fact sentence ids index them;
        # a plain text is split by the Document.
        sentences = [s.strip() for s in given] if isinstance(body, list) else []
        text = " ".join(s.strip() for s in given if s.strip())
        if text:  # an empty paragraph gives search nothing to show
            docs.append(Document(title.strip(), text, sentences=sentences))
    return docs


def _hotpot(record: dict[str, Any], where: str, n: int, stem: str) -> tuple[Task, list[Document]]:
    tid = _string(record, where, ("_id", "id"), "a string id", numbers=True)
    question = _string(record, where, ("question",), "a string question")
    answer = _string(record, where, ("answer",), "a string answer", numbers=True)
    if "context" not in record:
        raise DatasetError(f"{where}: field 'context' is missing; every HotpotQA record needs {_HOTPOT_SHAPE}.")
    docs = _documents(record["context"], where, "context", _HOTPOT_SHAPE)
    if not docs:
        raise DatasetError(f"{where}: 'context' holds no paragraphs; HotpotQA questions are answered from them.")
    facts = _supporting(record.get("supporting_facts", []), where)
    meta = {"level": record.get("level"), "supporting_facts": facts,
            "supporting_titles": sorted({t for t, _ in facts})}
    return Task(str(tid), str(question), str(answer), type=str(record.get("type") or ""), meta=meta), docs


def _supporting(value: Any, where: str) -> list[list[Any]]:
    shape = "a list of [title, sentence_id] pairs (or {\"title\": [...], \"sent_id\": [...]})"
    if isinstance(value, dict):
        titles, ids = value.get("title"), value.get("sent_id")
        if not isinstance(titles, list) or not isinstance(ids, list) or len(titles) != len(ids):
            raise DatasetError(f"{where}: 'supporting_facts' must be {shape}; its lists differ in length or kind.")
        value = [list(p) for p in zip(titles, ids)]
    if not isinstance(value, list):
        raise DatasetError(f"{where}: 'supporting_facts' must be {shape}; got {_short(value)}.")
    for i, pair in enumerate(value, 1):
        if (not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], str)
                or not isinstance(pair[1], int) or isinstance(pair[1], bool)):
            raise DatasetError(f"{where}: 'supporting_facts' must be {shape}; item {i} is {_short(pair)}.")
    return [list(p) for p in value]


_FILE_LABELS = {"supports": _S, "supported": _S, "refutes": _R, "refuted": _R, "not enough info": _N,
                "not enough information": _N, "nei": _N}


def _fever(record: dict[str, Any], where: str, n: int, stem: str) -> tuple[Task, list[Document]]:
    claim = _string(record, where, ("claim",), "a string claim")
    raw = record.get("label")
    if raw is None:
        raise DatasetError(f"{where}: field 'label' is missing; every record needs one of {', '.join(FEVER_LABELS)}.")
    label = _FILE_LABELS.get(" ".join(str(raw).replace("_", " ").lower().split()))
    if label is None:
        raise DatasetError(f"{where}: field 'label' is {_short(raw)}; it must be one of {', '.join(FEVER_LABELS)} "
                           "(lower case, NOT_ENOUGH_INFO and NEI are accepted too).")
    tid = _string(record, where, ("id",), "a string id", required=False, numbers=True) or f"{stem}-{n:04d}"
    evidence, docs, titles = record.get("evidence") or [], [], []
    if _fever_pointers(evidence):  # the official FEVER files point into a Wikipedia dump we do not have
        titles = sorted({p[2].replace("_", " ").replace("-LRB-", "(").replace("-RRB-", ")")
                         for group in evidence for p in group if isinstance(p[2], str)})
    elif evidence:
        docs = _documents(evidence, where, "evidence", _DOCS_SHAPE)
        titles = list(dict.fromkeys(d.title for d in docs))
    return Task(str(tid), str(claim), label, type="fever", meta={"label": label, "evidence": titles}), docs


def _fever_pointers(evidence: Any) -> bool:
    """True for official FEVER evidence: [[[annotation_id, evidence_id, wiki_title, sentence_id], ...], ...]."""
    return isinstance(evidence, list) and bool(evidence) and all(
        isinstance(g, list) and all(isinstance(p, list) and len(p) == 4 for p in g) for g in evidence)


def _generic(record: dict[str, Any], where: str, n: int, stem: str) -> tuple[Task, list[Document]]:
    question = _string(record, where, ("question",), "a string question")
    answer = _string(record, where, ("answer",), "a string answer", numbers=True)
    tid = _string(record, where, ("id", "_id"), "a string id", required=False, numbers=True) or f"{stem}-{n:04d}"
    aliases = record.get("aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str | int | float) for a in aliases):
        raise DatasetError(f"{where}: 'aliases' must be a list of strings, got {_short(aliases)}.")
    kind = _string(record, where, ("type",), "a string type", required=False) or ""
    context, docs = record.get("context"), []
    if isinstance(context, str) and context.strip():  # one unnamed passage: title it by its opening words
        docs = [Document(" ".join(re.findall(r"[\w'-]+", context)[:5]) or "context", context.strip())]
    elif context:
        docs = _documents(context, where, "context", _DOCS_SHAPE + " or a string")
    return Task(str(tid), str(question), str(answer), type=kind, aliases=[str(a) for a in aliases]), docs


_Parser = Callable[[dict[str, Any], str, int, str], tuple[Task, list[Document]]]
_FORMATS: dict[str, tuple[_Parser, str]] = {"hotpotqa": (_hotpot, "qa"), "fever": (_fever, "fever"),
                                            "jsonl": (_generic, "qa")}


def _detect(where: str, record: dict[str, Any], path: Path) -> str:
    if "supporting_facts" in record:
        return "hotpotqa"
    if "claim" in record:
        return "fever"
    if "question" in record:  # question-answer records; a missing answer is reported by their reader
        return "jsonl"
    raise DatasetError(
        f"{where}: cannot tell the format of {path.name}: expected HotpotQA records (question, answer, context, "
        "supporting_facts), FEVER records (claim, label[, evidence]) or question-answer records (question, "
        f"answer[, context]); this record has the fields: {', '.join(sorted(record)) or 'none'}. Name the format: "
        f"hotpotqa:{path}, fever:{path} or jsonl:{path}.")


def _load_file(fmt: str | None, path: Path, spec: str) -> Suite:
    records = _records(path)
    if fmt is None:
        first = next(records)  # an empty file has already raised
        fmt, records = _detect(first[0], first[2], path), itertools.chain([first], records)
    parse, kind = _FORMATS[fmt]
    tasks: list[Task] = []
    corpora: dict[str, Corpus] = {}
    seen: dict[str, str] = {}  # task id -> where it was defined, to name both places of a duplicate
    for n, (where, place, record) in enumerate(records, 1):
        task, docs = parse(record, where, n, path.stem)
        if task.id in seen:
            raise DatasetError(f"{where}: id {task.id!r} is also used on {seen[task.id]}; ids must be unique.")
        seen[task.id] = place
        tasks.append(task)
        if docs:
            corpora[task.id] = Corpus(docs, name=f"{path.stem}/{task.id}")
    return Suite(spec, tasks, corpus=None, task_corpora=corpora, kind=kind,
                 meta={"format": fmt, "path": str(path), "own_corpora": len(corpora)})


# ---------------------------------------------------------------- metrics


def supporting_recall(task: Task, trace: Trace) -> float | None:
    """The share of the task's supporting titles among the articles the agent opened (None: none to find)."""
    wanted = {normalize_title(t) for t in task.meta.get("supporting_titles") or []}
    if not wanted:
        return None
    opened = {normalize_title(s.opened) for s in trace.steps if s.opened}
    return len(wanted & opened) / len(wanted)


_ANSWER_LABELS = {"supports": _S, "supported": _S, "support": _S, "true": _S, "yes": _S, "correct": _S,
                  "refutes": _R, "refuted": _R, "refute": _R, "false": _R, "no": _R, "incorrect": _R,
                  "nei": _N, "not enough info": _N, "not enough information": _N, "not enough evidence": _N,
                  "unknown": _N, "insufficient information": _N, "cannot be determined": _N}


def normalize_fever_label(text: str) -> str | None:
    """A model's free answer as one of FEVER_LABELS, or None when it names none (or several).

    >>> normalize_fever_label("Refutes."), normalize_fever_label("not enough information"), normalize_fever_label("maybe")
    ('REFUTES', 'NOT ENOUGH INFO', None)
    """
    canon = " ".join(re.sub(r"[^a-z]+", " ", (text or "").lower()).split())
    if canon in _ANSWER_LABELS:
        return _ANSWER_LABELS[canon]
    if re.search(r"\bnot enough\b|\benough (info|evidence)\b|^nei\b", canon):
        return _N
    # "the claim is supported" -> SUPPORTS, but "not supported" names no label: it could be either of two
    supports = re.search(r"\bsupport", canon) is not None and re.search(r"\bnot support", canon) is None
    refutes = re.search(r"\brefut", canon) is not None
    return (_S if supports else _R) if supports != refutes else None


def _demo_fever_suite(rest: str, spec: str, name: str = "demo") -> Suite:
    split = rest.strip()
    if split not in SPLITS:
        raise InputError(f"Unknown split {split!r} in {spec!r}. Available: {', '.join(SPLITS)}.")
    world = world_by_name(name)
    tasks = fever_claims(world, split, FEVER_PER_LABEL)
    labels = {label: sum(t.answer == label for t in tasks) for label in FEVER_LABELS}
    return Suite(spec, tasks, corpus=world.corpus, kind="fever", meta={"split": split, "labels": labels, "world": name})
