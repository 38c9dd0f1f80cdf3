"""How lookup finds a keyword in real text: as written (any case), else by word stem; and the loop guard's notes.

    >>> stem("published"), stem("publishes"), stem("cities"), stem("founded")
    ('publish', 'publish', 'city', 'found')
    >>> sentences_with("Founding", ["It was founded in 1312.", "Its mayor is Ana Lirn."])
    ['It was founded in 1312.']
    >>> keywords_for(["Marl is a city.", "It was founded in 1204.", "The city has a cathedral."], 2)[:2]
    ['cathedral', 'city']
"""

from __future__ import annotations

import re

__all__ = ["stem", "sentences_with", "keywords_for", "closest_sentences", "prefer_named"]

_WORD = re.compile(r"[^\W_]+")
# Longest first; a suffix is removed only when at least three letters stay.
_SUFFIXES = ("ations", "ation", "ments", "ment", "ings", "ing", "ers", "er", "ors", "or", "edly", "ed", "ies", "es",
             "s", "ly")  # "director" / "directed" -> "direct"


def stem(word: str) -> str:
    """A crude English stem, the same for the forms a lookup keyword and a sentence may use."""
    w = word.lower()
    if len(w) <= 3:
        return w
    for suffix in _SUFFIXES:
        if suffix == "s" and w.endswith(("ss", "us", "is")):  # "moss", "census", "axis" are not plurals
            continue
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)] + {"ies": "y", "ation": "at", "ations": "at"}.get(suffix, "")
            break
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouls":  # "runn" -> "run", but "hall", "moss" stay
        w = w[:-1]
    return w[:-1] if len(w) > 4 and w.endswith("e") else w  # "state"/"stated" -> "stat"


def _stems(text: str) -> list[str]:
    return [stem(w) for w in _WORD.findall(text)]


def sentences_with(keyword: str, sentences: list[str]) -> list[str]:
    """The sentences containing ``keyword`` case-insensitively; if none does, those holding every word of it by stem.

    The literal match comes first so that a keyword the text uses as written finds exactly what it did before.
    """
    key = keyword.strip().lower()
    literal = [s for s in sentences if key in s.lower()]
    if literal or not key:
        return literal
    wanted = _stems(key)
    if not wanted:
        return []
    return [s for s in sentences if all(w in set(_stems(s)) for w in wanted)]


_COMMON = frozenset("the and was were has have had with from that this which their there also into over about after "
                    "before than them they its his her she he it is are been being for not but".split())


def keywords_for(sentences: list[str], index: int, prefer: tuple[str, ...] = ()) -> list[str]:
    """Words of ``sentences[index]`` whose lookup reaches it, best first: those whose first result it is, then
    words in ``prefer`` (say, the question's), fewer results, longer words. Numbers and common words are left out."""
    target = sentences[index]
    words = dict.fromkeys(w.lower() for w in _WORD.findall(target)
                          if len(w) >= 4 and not w.isdigit() and w.lower() not in _COMMON)
    scored = []
    for word in words:
        found = sentences_with(word, sentences)
        if target in found:
            scored.append((found.index(target), word not in prefer, len(found), -len(word), word))
    return [w for *_, w in sorted(scored)]


def closest_sentences(keyword: str, sentences: list[str], shown: int = 0, k: int = 2) -> list[str]:
    """Up to ``k`` sentences nearest in meaning to ``keyword`` when none contains it, best first ("born" ->
    "His birth date is September 28, 1896."): cosine similarity of the retrieval encoder's embeddings
    (corpus.MiniLMEncoder). The first ``shown`` sentences (the opening a search already showed) are passed over
    while others remain; a further sentence is offered only if it scores at least half the best one. Where the
    encoder is not installed, the one sentence sharing the longest word prefix with the keyword. [] for none."""
    rest = sentences[shown:] or sentences
    if not rest:
        return []
    try:
        from ..corpus import MiniLMEncoder

        encoder = MiniLMEncoder.shared()
        vectors = encoder.encode([keyword, *rest])  # (1 + n, 384), unit norm
        scores = [float(x) for x in vectors[1:] @ vectors[0]]
        order = sorted(range(len(rest)), key=lambda i: -scores[i])[:k]
        best = scores[order[0]]  # the best one always (its similarity may be low, even negative); a second if close
        return [rest[order[0]]] + [rest[i] for i in order[1:] if best > 0 and scores[i] >= 0.5 * best]
    except Exception:  # no encoder here: a lexical guess is better than none
        words = [w.lower() for w in _WORD.findall(keyword)]

        def shared_prefix(sentence: str) -> int:
            return max((len(_common_prefix(w, x.lower())) for w in words for x in _WORD.findall(sentence)), default=0)

        best = max(rest, key=shared_prefix)
        return [best] if shared_prefix(best) >= 4 else []


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


_QUALIFIED = re.compile(r"\(([^()]*)\)\s*$")


def prefer_named(docs: list, task: str) -> list:
    """Articles bearing one name, the one whose qualifier the task names first: for "How long is the novel
    Pothin?", "Pothin (novel)" before "Pothin (city)". Only a single best match moves; otherwise the order stays.

    >>> from workbench.corpus import Document
    >>> [d.title for d in prefer_named([Document("Pothin (city)", ""), Document("Pothin (novel)", "")],
    ...                                "Who wrote the novel Pothin?")]
    ['Pothin (novel)', 'Pothin (city)']
    """
    if len(docs) < 2 or not task:
        return docs
    wanted = set(_stems(task))

    def named(doc) -> int:
        found = _QUALIFIED.search(doc.title)
        if not found:
            return 0
        qualifier, name = found.group(1), doc.title[: found.start()].strip()
        # "the novel Vononard" names the novel even where the question also speaks of a city
        right_before = re.search(rf"\b{re.escape(qualifier)}\s+{re.escape(name)}\b", task, re.IGNORECASE)
        return sum(s in wanted for s in _stems(qualifier)) + (10 if right_before else 0)

    scores = [named(d) for d in docs]
    best = max(scores)
    if best == 0 or scores.count(best) > 1:
        return docs
    top = docs[scores.index(best)]
    return [top, *(d for d in docs if d is not top)]
