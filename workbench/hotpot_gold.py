"""Gold ReAct trajectories from HotpotQA-format data, and the demo worlds exported in that layout.

A HotpotQA record gives a question, its answer, its type (bridge or comparison), its paragraphs
(``context``: [title, [sentences]]) and the supporting facts ([title, sentence id]). From these the
builder writes the trajectory a careful reader would take, running the real tools on the record's own
paragraphs: it opens the supporting articles in a sensible order (bridge: the article the question
names first, the one holding the answer last; comparison: both, in the order the question names them),
searching each by the name the question or the last observation uses (and by its full title when that
name opens a namesake), looks up every supporting sentence the opening does not show (by a word of
that sentence whose first result it is), and finishes with the gold answer (yes / no for a yes-no
comparison). ``workbench finetune --data hotpotqa:PATH`` trains on these.

    >>> tasks = hotpot_trajectories("hotpot_train_v1.1.json")              # doctest: +SKIP
    >>> [s.call for s in tasks[0].trajectory]                               # doctest: +SKIP
    ['search[Arthur's Magazine]', 'search[First for Women]', 'finish[Arthur's Magazine]']

``export_hotpot(world, split, path)`` writes a demo world's tasks in the official distractor layout
(the supporting articles plus distractor paragraphs, ten in all: namesakes first, then the articles BM25 ranks
highest for the question), so the builder can be checked against the world's own gold trajectories.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Iterable

from .corpus import Corpus, Document, base_title, loose_title
from .errors import DatasetError
from .tools.core import ToolContext, default_tools
from .tools.matching import keywords_for
from .types import GoldStep, Task

__all__ = ["build_trajectory", "hotpot_trajectories", "export_hotpot", "supporting_order", "EXPORT_TYPES"]

EXPORT_TYPES = ("single_hop", "bridge", "comparison")  # demo task types HotpotQA's layout can hold (no calculate)
_OPENING = 3  # sentences a search shows
_PHRASES = {
    "first": ("I need to search {q}.", "First I will search {q}.", "I should look up {q} first.",
              "To answer this I will start with {q}."),
    "compare": ("I need to compare {a} and {b}. First I search {a}.", "I have to check both {a} and {b}, starting "
                "with {a}.", "To compare them I will read about {a} first, then {b}."),
    "next": ("{says} Now I need to search {q}.", "{says} Next I search {q}.", "{says} Then I look at {q}."),
    "namesake": ("The search opened {opened}, not the article I need. I will search {title}.",
                 "{opened} is the wrong article; I search {title} instead."),
    "lookup": ("The opening does not say it, so I will look up {k}.", "I need more of this article; let me look up {k}.",
               "Looking up {k} should find the sentence I need."),
    "again": ("Not this sentence. I will look up {k} again.", "The next result for {k} may have it."),
    "finish": ("{says} So the answer is {answer}.", "{says} The answer is {answer}."),
}


def _say(rng: random.Random, move: str, **words: str) -> str:
    text = rng.choice(_PHRASES[move]).format(**words)
    return text[0].upper() + text[1:]


def _short(sentence: str, words: int = 30) -> str:
    parts = sentence.split()
    return sentence if len(parts) <= words else " ".join(parts[:words]) + " ..."


def _position(question: str, title: str) -> int | None:
    """Where the question names the article: its title without qualifier, else its last word; None if nowhere."""
    text = " " + loose_title(question) + " "
    for name in (loose_title(base_title(title)), loose_title(title.split()[-1]) if len(title.split()) > 1 else ""):
        if len(name) >= 3 and f" {name} " in text:
            return text.index(f" {name} ")
    return None


def supporting_order(task: Task, titles: list[str], corpus: Corpus) -> list[str]:
    """The order to open the supporting articles in (see the module docstring)."""
    if len(titles) < 2:
        return list(titles)
    place = {t: _position(task.question, t) for t in titles}
    if task.type == "comparison":
        return sorted(titles, key=lambda t: (place[t] is None, place[t] or 0, titles.index(t)))
    facts = [(t, i) for t, i in task.meta.get("supporting_facts") or []]
    answer = task.answer.lower()

    def holds_answer(title: str) -> bool:
        doc = corpus.get(title)
        return doc is not None and any(answer in doc.sentences[i].lower() for t, i in facts
                                       if t == title and 0 <= i < len(doc.sentences))

    return sorted(titles, key=lambda t: (holds_answer(t) and answer not in ("yes", "no"), place[t] is None,
                                         place[t] or 0, titles.index(t)))


def build_trajectory(task: Task, corpus: Corpus, where: str = "") -> list[GoldStep]:
    """search / lookup / finish steps that open ``task``'s supporting articles and reach its gold answer."""
    where = where or f"task {task.id}"
    facts: dict[str, list[int]] = {}
    for title, index in task.meta.get("supporting_facts") or []:
        doc = corpus.get(title)
        if doc is None:
            raise DatasetError(f"{where}: supporting fact {title!r} is not a title of its 'context'; each supporting "
                               f"fact must name one of its paragraphs ({', '.join(corpus.titles[:10])}).")
        if 0 <= index < len(doc.sentences):  # HotpotQA has a few facts past a paragraph's end: that fact is skipped
            facts.setdefault(doc.title, []).append(index)
        else:
            facts.setdefault(doc.title, [])
    if not facts:
        raise DatasetError(f"{where}: field 'supporting_facts' is missing or empty; the builder needs [title, "
                           "sentence id] pairs to know which articles lead to the answer.")
    rng = random.Random(f"hotpot:{task.id}")
    tools, context, steps = default_tools(), ToolContext(corpus=corpus), []
    seen = task.question

    def act(thought: str, action: str, argument: str) -> str:
        observation = tools.run(action, argument, context)
        steps.append(GoldStep(thought, action, argument, observation))
        return observation

    order = supporting_order(task, list(facts), corpus)
    prefer = tuple(w for w in loose_title(task.question).split() if len(w) >= 4)
    says = ""
    for n, title in enumerate(order):
        doc = corpus.get(title)
        name = base_title(title)
        query = name if loose_title(name) in loose_title(seen) else title
        if n == 0 and task.type == "comparison" and len(order) > 1:
            other = base_title(order[1])
            thought = _say(rng, "compare", a=query, b=other if loose_title(other) in loose_title(seen) else order[1])
        else:
            thought = _say(rng, "first", q=query) if n == 0 else _say(rng, "next", says=says, q=query)
        observation = act(thought, "search", query)
        if context.document is not doc:
            opened = context.document.title if context.document is not None else query
            observation = act(_say(rng, "namesake", opened=opened, title=title), "search", title)
        shown = observation
        for index in sorted(set(facts[title])):
            sentence = doc.sentences[index]
            if index < _OPENING or sentence in shown:
                continue
            words = keywords_for(doc.sentences, index, prefer)
            if not words:
                continue  # nothing to look it up by (a sentence of numbers): the opening has to do
            thought = _say(rng, "lookup", k=words[0])
            for _ in range(6):
                found = act(thought, "lookup", words[0])
                shown += " " + found
                if sentence in found or found.startswith(("No more results", "No sentence")):
                    break
                thought = _say(rng, "again", k=words[0])
        read = [doc.sentences[i] for i in sorted(set(facts[title]))] or doc.sentences[:1]
        says = " ".join(_short(s) for s in read)
        seen += " " + shown
    steps.append(GoldStep(_say(rng, "finish", says=says, answer=task.answer), "finish", task.answer, None))
    return steps


def hotpot_trajectories(path: str | Path, strict: bool = False, limit: int = 0) -> list[Task]:
    """The tasks of a HotpotQA-format file, each with a built gold trajectory (see ``build_trajectory``).

    A malformed file raises DatasetError naming the record and the field (``datasets.load_suite`` reads it);
    a record the builder cannot use (a supporting fact naming no paragraph) raises with ``strict``, else it
    is left out and counted in the first task's ``meta["skipped"]``.
    """
    from .datasets import load_suite

    suite = load_suite(f"hotpotqa:{path}")
    out, skipped = [], []
    for n, task in enumerate(suite.tasks, 1):
        corpus = suite.task_corpora.get(task.id)
        where = f"{Path(path).name}: record {n} (id {task.id})"
        try:
            if corpus is None:
                raise DatasetError(f"{where}: field 'context' holds no paragraphs.")
            task.trajectory = build_trajectory(task, corpus, where)
        except DatasetError:
            if strict:
                raise
            skipped.append(task.id)
            continue
        out.append(task)
        if limit and len(out) >= limit:
            break
    if not out:
        raise DatasetError(f"{path}: no record could be turned into a trajectory ({len(skipped)} skipped); "
                           "each needs supporting_facts naming its context's paragraphs.")
    out[0].meta["skipped"] = skipped
    return out


# ---------------------------------------------------------------- the demo worlds in HotpotQA's layout


def _native_facts(task: Task, corpus: Corpus) -> list[list[Any]]:
    """[title, sentence id] of what a world-1 gold trajectory read (world 2 records them as it builds them)."""
    if task.meta.get("supporting_facts"):
        return [list(f) for f in task.meta["supporting_facts"]]
    tools, context = default_tools(), ToolContext(corpus=corpus)
    opened: list[tuple[Document, set[int]]] = []
    for step in task.trajectory[:-1]:
        observation = tools.run(step.action, step.argument, context)
        if step.action == "search" and context.document is not None:
            opened.append((context.document, set()))
        elif step.action == "lookup" and opened:
            doc, found = opened[-1]
            found.update(i for i, s in enumerate(doc.sentences) if s in observation)
    facts = []
    for n, (doc, found) in enumerate(opened):
        if not found:  # the fact was in the opening: the sentence sharing most words with what came after
            later = " ".join(f"{s.thought} {s.argument}" for s in task.trajectory[n + 1:]).lower()
            own = set(loose_title(doc.title).split())
            score = [(len({w for w in loose_title(s).split() if w not in own and w in later and len(w) > 3}), -i)
                     for i, s in enumerate(doc.sentences[:_OPENING])]
            found = {-max(score)[1]}
        facts += [[doc.title, i] for i in sorted(found)]
    return facts


def export_hotpot(world: Any, split: str, path: str | Path, paragraphs: int = 10, seed: int = 0,
                  types: Iterable[str] = EXPORT_TYPES) -> Path:
    """Write ``world``'s (a World or a name: demo, demo2) ``split`` tasks as a HotpotQA distractor-layout JSON list:
    each task's supporting articles and distractors, ``paragraphs`` in all (HotpotQA has ten), in a seeded order."""
    from .world.registry import world_by_name

    world = world_by_name(world) if isinstance(world, str) else world
    kinds = tuple(types)
    bad = [t for t in kinds if t not in EXPORT_TYPES]
    if bad:
        raise DatasetError(f"Task types {bad} cannot be exported (HotpotQA has no calculate). Use: "
                           f"{', '.join(EXPORT_TYPES)}.")
    corpus, records = world.corpus, []
    for task in (t for t in world.tasks[split] if t.type in kinds):
        facts = _native_facts(task, corpus)
        support = list(dict.fromkeys(t for t, _ in facts))
        distractors = max(0, paragraphs - len(support))
        wanted = [d.title for t in support for d in corpus.matches(base_title(t))]
        wanted += [h.document.title for h in corpus.search(task.question, k=distractors + len(support) + 4)]
        extra = [t for t in dict.fromkeys(wanted) if t not in support][:distractors]
        rng = random.Random(f"{seed}:{task.id}")
        while len(extra) < distractors:
            pick = rng.choice(corpus.titles)
            if pick not in support and pick not in extra:
                extra.append(pick)
        titles = support + extra
        rng.shuffle(titles)
        records.append({"_id": task.id, "question": task.question, "answer": task.answer,
                        "type": "comparison" if task.type == "comparison" else "bridge", "level": "demo",
                        "demo_type": task.type, "supporting_facts": facts,
                        "context": [[t, list(corpus.get(t).sentences)] for t in titles]})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    return path
