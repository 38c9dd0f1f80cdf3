"""The machinery under attribution: rebuild a step's exact token sequence and score it, fast.

A step's *sequence* is its prompt ids followed by what the model generated in that step (with
any text the agent fed in between, such as an ``Action N:`` primer). *Features* are spans of that
sequence (segments or single tokens) that all lie before the *targets*, the positions whose
log-probabilities are explained. Removing features (Captum's default ablation of a text segment
is the empty string) shortens the sequence; :class:`PrefixScorer` scores any such variant with
one teacher-forced pass over only what changed, reusing the keys and values of the unchanged
prefix. Captum's attribution classes drive it through :func:`captum_forward`.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..errors import InputError
from ..generation import encode_fed
from ..types import Segment, Step, Trace
from .counting import PassCounter

__all__ = ["StepSequence", "Feature", "build_sequence", "PrefixScorer", "captum_forward", "segment_input", "TARGETS",
           "sentence_spans"]

TARGETS = ("thought", "action", "answer", "step")
_FIXED_KINDS = ("scaffold",)  # template glue: kept in every variant, never scored


@dataclass
class Feature:
    """An input feature: a labelled span [start, end) of the sequence."""

    label: str
    kind: str
    text: str
    start: int
    end: int
    parent: str = ""  # the segment a sentence or token feature lies in ("" for a whole segment)

    @property
    def segment(self) -> str:
        """The label of the segment this feature belongs to (its own label for a segment feature)."""
        return self.parent or self.label


_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s)|(?=\n)")


def sentence_spans(pieces: list[str]) -> list[tuple[int, int, str]]:
    """Split a run of decoded tokens into sentences: (first token, end token, text) each.

    A sentence ends after ``.``, ``!`` or ``?`` followed by white space, or at a line break; a token
    belongs to the sentence its first character is in. Tokens that hold only white space between
    sentences join the sentence that follows.
    """
    text = "".join(pieces)
    starts, pos = [], 0
    for piece in pieces:
        starts.append(pos)
        pos += len(piece)
    cuts = [m.end() for m in _SENTENCE_END.finditer(text) if 0 < m.end() < len(text)]
    out: list[tuple[int, int, str]] = []
    first = 0
    for cut in cuts + [len(text) + 1]:
        end = first
        while end < len(pieces) and starts[end] < cut:
            end += 1
        if end > first:
            chunk = "".join(pieces[first:end])
            if chunk.strip() or not out:
                out.append((first, end, chunk.strip()))
            else:  # white space alone: join the sentence before it
                a, _, t = out[-1]
                out[-1] = (a, end, t)
            first = end
    return out


@dataclass
class StepSequence:
    """The exact ids a step's model call saw, its segments, and which positions are the targets."""

    ids: list[int]  # prompt ids + the step's continuation
    segments: list[Segment]  # the prompt's segments, then the continuation's, spans into ids
    prompt_len: int
    targets: list[int] = field(default_factory=list)  # positions in ids whose tokens are explained

    def features(self, granularity: str = "segment", segment_labels: Sequence[str] | None = None,
                 tokenizer: Any = None) -> list[Feature]:
        """Segments (or their sentences, or their tokens) that precede the first target; scaffolds stay fixed.

        ``granularity``: ``segment`` (one feature per labelled segment), ``sentence`` (each segment
        split into sentences and lines; labels ``"observation 2 · s1"``, ``parent`` the segment) or
        ``token``. Sentence and token features need ``tokenizer`` to read the text.
        """
        first = min(self.targets)
        chosen = [s for s in self.segments if s.kind not in _FIXED_KINDS and s.end <= first and s.end > s.start]
        if segment_labels is not None:
            wanted = set(segment_labels)
            unknown = wanted - {s.label for s in chosen}
            if unknown:
                raise InputError(f"No segment(s) {sorted(unknown)} before the target. Available: "
                                 f"{', '.join(s.label for s in chosen)}.")
            chosen = [s for s in chosen if s.label in wanted]
        if granularity == "segment":
            return [Feature(s.label, s.kind, s.text, s.start, s.end) for s in chosen]
        out = []
        if granularity == "sentence":
            if tokenizer is None:
                raise InputError("Sentence features need the tokenizer to read the text; pass tokenizer=.")
            for s in chosen:
                pieces = [tokenizer.decode([t]) for t in self.ids[s.start:s.end]]
                spans = sentence_spans(pieces)
                if len(spans) <= 1:  # one sentence: the segment itself
                    out.append(Feature(s.label, s.kind, s.text, s.start, s.end, parent=s.label))
                    continue
                for n, (a, b, text) in enumerate(spans, 1):
                    out.append(Feature(f"{s.label} · s{n}", s.kind, text, s.start + a, s.start + b, parent=s.label))
            return out
        for s in chosen:
            for pos in range(s.start, s.end):
                text = tokenizer.decode([self.ids[pos]]) if tokenizer is not None else str(self.ids[pos])
                out.append(Feature(f"{s.label}#{pos - s.start}", s.kind, text, pos, pos + 1, parent=s.label))
        return out


def _fed_ids(tokenizer: Any, text: str, kind: str = "scaffold", label: str = "") -> list[int]:
    return encode_fed(tokenizer, text, kind, label)  # exactly as the session fed it (one encode at a time)


def build_sequence(trace: Trace, index: int, tokenizer: Any, target: str = "step") -> StepSequence:
    """Rebuild step ``index`` of ``trace`` exactly: fed text is tokenized as the session fed it,
    generated text is the ids the model chose (never re-tokenized)."""
    if target not in TARGETS:
        raise InputError(f"Unknown attribution target {target!r}. Available: {', '.join(TARGETS)}.")
    steps = {s.index: s for s in trace.steps if s.kind != "halt"}
    if index not in steps:
        raise InputError(f"Run {trace.id} has no step {index}. Steps: {', '.join(map(str, sorted(steps)))}.")
    step = steps[index]
    if not step.generation.token_ids:
        raise InputError(f"Step {index} generated no tokens, so there is nothing to attribute.")
    generated = _generated_pieces(trace)
    ids: list[int] = []
    segments: list[Segment] = []
    for seg in step.prompt_segments:
        piece = generated.get(seg.label) if seg.kind in ("thought", "action", "answer") else None
        piece = piece if piece is not None else _fed_ids(tokenizer, seg.text, seg.kind, seg.label)
        if seg.start >= 0 and len(piece) != seg.end - seg.start:
            raise InputError(f"Step {index}: segment {seg.label!r} re-tokenizes to {len(piece)} ids, not the "
                             f"{seg.end - seg.start} the run fed; was the trace made with another tokenizer?")
        segments.append(Segment(seg.kind, seg.label, seg.text, len(ids), len(ids) + len(piece)))
        ids.extend(piece)
    prompt_len = len(ids)
    targets = _continue(step, tokenizer, ids, segments, target)
    if not targets:
        raise InputError(f"Step {index} has no {target} tokens to attribute. It has: "
                         f"{', '.join(step.target_spans) or 'none'}; or use target='step'.")
    return StepSequence(ids, segments, prompt_len, targets)


def _generated_pieces(trace: Trace) -> dict[str, list[int]]:
    """The generated ids of every labelled thought / action / answer of the run, by segment label."""
    pieces: dict[str, list[int]] = {}
    for step in trace.steps:
        for kind, (a, b) in step.target_spans.items():
            label = "answer" if kind == "answer" and step.kind == "answer" else f"{kind} {step.index}"
            pieces[label] = step.generation.token_ids[a:b]
    return pieces


def _continue(step: Step, tokenizer: Any, ids: list[int], segments: list[Segment], target: str) -> list[int]:
    """Append the step's continuation to ``ids``; return the positions of the target tokens."""
    primer_ids = _fed_ids(tokenizer, step.action_primer) if step.gen_split >= 0 else []
    positions: list[int] = []  # where each generated id lands in ``ids``
    for i, token in enumerate(step.generation.token_ids):
        if i == step.gen_split:
            segments.append(Segment("scaffold", "action primer", step.action_primer, len(ids), len(ids) + len(primer_ids)))
            ids.extend(primer_ids)
        positions.append(len(ids))
        ids.append(token)
    spans = dict(step.target_spans)
    if "answer" not in spans and step.action is not None and step.action.name == "finish" and "action" in spans:
        spans["answer"] = spans["action"]  # a react step's answer is its finish action
    for kind in ("thought", "action"):  # this step's own thought can drive its action
        if kind in step.target_spans and step.target_spans[kind][1] > step.target_spans[kind][0]:
            a, b = step.target_spans[kind]
            segments.append(Segment(kind, f"{kind} {step.index} (this step)", "", positions[a], positions[b - 1] + 1))
    if target == "step":
        return positions
    if target not in spans or spans[target][1] <= spans[target][0]:
        return []
    a, b = spans[target]
    return positions[a:b]


class PrefixScorer:
    """Log-probabilities of the target tokens for any variant of the sequence with features removed.

    The full sequence is run once and its keys and values kept; a variant starts from the cache
    that shares the longest prefix with it (the full sequence's, or the previous variant's) cut
    back to where they part, and runs only what follows, in one teacher-forced pass. Removing a late
    segment therefore costs little, and :meth:`score_many` orders variants so that consecutive ones
    share as much as they can. The model is called through ``counter`` (a new one unless given), so
    ``passes`` counts this scorer's forward calls and no one else's; ``counter.tokens`` counts the
    tokens run, ``counter.tokens_full`` those a full recompute of every pass would run.
    """

    def __init__(self, lm: Any, seq: StepSequence, features: list[Feature], counter: PassCounter | None = None) -> None:
        import torch

        self.lm, self.seq, self.features = lm, seq, features
        self.counter = counter if counter is not None else PassCounter()
        self._model = self.counter.wrap(lm.model)
        self._torch = torch
        self._full = None  # keys / values of the whole sequence up to the last target
        self._prev: tuple[list[int], Any] | None = None  # the last variant's kept positions and its cache
        self.baseline = self.score([])  # (n_targets,)

    def _run(self, ids: list[int], cache: Any, keep: int):
        from ..kvcache import cache_kwarg

        torch = self._torch
        out = self._model(input_ids=torch.tensor([ids], device=self.lm.device), use_cache=True,
                          logits_to_keep=keep, **{cache_kwarg(self.lm.model): cache})
        return out.logits[0].float()  # (keep, vocab)

    @property
    def passes(self) -> int:
        """Forward passes this scorer has run (the unperturbed sequence's included)."""
        return self.counter.forward

    def _kept(self, absent: Sequence[int]) -> list[int]:
        return kept_positions(self.seq, self.features, absent)

    def score(self, absent: Sequence[int]):
        """Target log-probs, shape (n_targets,), with the features at indices ``absent`` removed."""
        from ..kvcache import crop_cache

        torch = self._torch
        kept = self._kept(absent)
        index = {p: i for i, p in enumerate(kept)}
        first = index[self.seq.targets[0]]
        with torch.inference_mode():
            if self._full is None:  # the unperturbed sequence: computed once, its cache kept
                from transformers import DynamicCache

                self._full = cache = DynamicCache(config=self.lm.model.config)
                start = 0
            else:
                start, from_prev = resume_point(kept, self._prev[0] if self._prev is not None else None, first)
                cache = self._prev[1] if from_prev else copy.deepcopy(self._full)  # the previous variant's: no copy
                crop_cache(cache, start)
            run = kept[start:]
            keep = len(kept) - first + 1  # logits from the kept position before the first target
            logits = self._run([self.seq.ids[p] for p in run], cache, keep)
            self.counter.count_tokens(len(run), len(kept))
            if self._full is not cache:
                self._prev = (kept, cache)
            logp = torch.log_softmax(logits, -1)  # (keep, vocab); row r is kept position len(kept) - keep + r
            rows = [index[t] - 1 - (len(kept) - keep) for t in self.seq.targets]
            return logp[rows, [self.seq.ids[t] for t in self.seq.targets]]

    def score_many(self, variants: Sequence[Sequence[int]]) -> list:
        """Scores of many variants (lists of absent feature indices), in the order given, computed in
        the order that shares the most: sorted by their kept features from the first on, removed
        before kept, so each variant parts from the one before it as late as possible."""
        out: list = [None] * len(variants)
        for i in sharing_order(variants, len(self.features)):
            out[i] = self.baseline if not variants[i] else self.score(sorted(variants[i]))
        return out


def kept_positions(seq: StepSequence, features: list[Feature], absent: Sequence[int]) -> list[int]:
    """The positions a variant keeps: up to the last target (nothing after it matters), without the
    features at indices ``absent``."""
    drop = {p for i in absent for p in range(features[i].start, features[i].end)}
    return [p for p in range(seq.targets[-1] + 1) if p not in drop]


def sharing_order(variants: Sequence[Sequence[int]], n_features: int) -> list[int]:
    """The order in which to score ``variants`` (lists of absent feature indices) so that each parts
    from the one before it as late as possible: sorted by their kept features from the first on."""
    absent = [set(v) for v in variants]
    return sorted(range(len(variants)), key=lambda i: [0 if j in absent[i] else 1 for j in range(n_features)])


def resume_point(kept: Sequence[int], prev: Sequence[int] | None, first: int) -> tuple[int, bool]:
    """Where a variant's pass starts, and whether from the previous variant's cache (else from the
    unperturbed sequence's): the one sharing the longer prefix, re-running at least from the kept
    position just before the first target (index ``first`` in ``kept``), whose logits predict it."""
    shared_full = _common(kept, range(len(kept)))
    shared_prev = _common(kept, prev) if prev is not None else -1
    from_prev = shared_prev > shared_full
    return max(0, min(shared_prev if from_prev else shared_full, first - 1)), from_prev


def _common(a: Sequence[int], b: Sequence[int]) -> int:
    """The length of the common prefix of two position lists."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def captum_forward(scorer: PrefixScorer):
    """A forward function over presence masks for Captum: (batch, n_features) -> (batch, 1 + n_targets).

    Column 0 is the total log-probability of the targets, the rest each target token's.
    """
    torch = scorer._torch

    def forward(mask):  # mask: (batch, n_features), 1 = present
        rows = []
        for m in mask:
            absent = [i for i, v in enumerate(m.tolist()) if v < 0.5]
            per_token = scorer.baseline if not absent else scorer.score(absent)
            rows.append(torch.cat([per_token.sum().unsqueeze(0), per_token]))
        return torch.stack(rows)  # (batch, 1 + n_targets)

    return forward


def segment_input(seq: StepSequence, features: list[Feature]):
    """The same features as a Captum InterpretableInput, so Captum's own LLMAttribution can score
    the same question (the reference our fast path is tested against).

    Captum appends the target ids right after the input, so the targets must be contiguous.
    """
    import torch
    from captum.attr import TextTemplateInput

    targets = seq.targets
    if targets != list(range(targets[0], targets[0] + len(targets))):
        raise InputError("Captum's LLMAttribution needs contiguous target tokens; pick target='thought' or 'action'.")

    class SegmentInput(TextTemplateInput):
        """Features are spans of a fixed id sequence; a removed feature's ids are dropped (Captum's
        TextTemplateInput default baseline, the empty string, on token ids instead of text)."""

        def __init__(self) -> None:  # TextTemplateInput.__init__ formats text; here the ids are given
            self.n_itp_features = len(features)
            self.values = [f.label for f in features]
            self.prompt_ids = seq.ids[: targets[0]]

        def to_tensor(self):
            return torch.ones(1, len(features))

        def to_model_input(self, perturbed_tensor=None):
            mask = perturbed_tensor[0].tolist() if perturbed_tensor is not None else [1] * len(features)
            drop = {p for f, m in zip(features, mask) if m < 0.5 for p in range(f.start, f.end)}
            return torch.tensor([[t for p, t in enumerate(self.prompt_ids) if p not in drop]])

        def format_attr(self, itp_attr):
            return itp_attr

    return SegmentInput()
