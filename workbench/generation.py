"""Incremental decoding across the steps of one run, reusing the KV cache of everything so far.

A run is one growing sequence of token ids: the prompt, then each step's generated ids, then each
observation's ids. A DecodeSession keeps the keys and values of that sequence, so each step
prefills only what was appended since the last one (the observation and the next primer). Text
is tokenized once, where it enters, and generated tokens stay as the ids the model chose; nothing
is re-tokenized. Every span of ids carries a labelled Segment for attribution.

Top to bottom: the settings, the records and the interfaces; then the session, whose ``generate``
prefills (from the shared prefix in kvcache.py when it can), decodes (picking and drafting with the
pure functions of sampling.py) and cuts at the stop.

    >>> from workbench.testing import tiny_model
    >>> session = DecodeSession(tiny_model())
    >>> _ = session.feed("Question: 2 + 3?\\nThought:", "task", "task")
    >>> out = session.generate(max_new_tokens=5)
    >>> len(out.token_ids) == len(out.logprobs) <= 5
    True
"""

from __future__ import annotations

import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Callable, Protocol

from .batching import batcher_for
from .errors import ConfigError
from .fastforward import GrowingCache
from .kvcache import PREFIX_CACHE, PrefixCache, cache_kwarg, clear_prefix_cache, crop_cache
from .sampling import draft_from_context, pick_token, sampling_rng, trim_to_cut
from .types import GenerationStop, Segment, SegmentKind, StepGeneration

if TYPE_CHECKING:
    import torch

    from .models import LoadedModel

__all__ = ["GenerationConfig", "Generation", "Session", "LanguageModel", "DecodeSession", "StopFn",
           "trim_to_cut", "ContextFull", "PrefixCache", "PREFIX_CACHE", "RUN_CACHE", "clear_prefix_cache", "encode_fed",
           "N_ALTERNATIVES"]

StopFn = Callable[[str], "int | None"]  # generated text -> where to cut it, or None to go on
_PREFILL_CHUNK = 1024  # tokens per forward pass while prefilling: bounds activation memory
# On the row path (fastforward.py) prefill goes in chunks of this size whether or not other runs decode
# alongside, so a run computes its keys / values in the same pieces batched or alone, and a newcomer's
# prefill holds the other runs back for one short pass at a time.
_ROW_CHUNK = 128
N_ALTERNATIVES = 5  # most likely tokens recorded at each generated position (from logits already computed)
# The keys / values of the last few finished runs, by run id: a fork of one of them reuses the part before
# its edit instead of recomputing it (interventions.py). Stored as (ids, cache); copied in and out.
RUN_CACHE = PrefixCache(size=4)


class ContextFull(Exception):
    """The sequence reached the model's context length; the agent ends the run."""


@dataclass
class GenerationConfig:
    """How to pick tokens. temperature 0 is greedy; the rest apply only when sampling."""

    max_new_tokens: int = 128  # per step
    temperature: float = 0.0  # 0 = greedy (argmax)
    top_k: int = 0  # 0 = no top-k filter
    top_p: float = 1.0  # 1 = no nucleus filter
    seed: int | None = None  # sampling seed (per session)
    lookahead: int = 8  # greedy only: draft up to this many tokens from the context per pass (0 = off)

    def __post_init__(self) -> None:
        if not 1 <= self.max_new_tokens <= 4096:
            raise ConfigError(f"max_new_tokens must be between 1 and 4096, got {self.max_new_tokens}.")
        if not 0.0 <= self.temperature <= 5.0:
            raise ConfigError(f"temperature must be between 0 and 5 (0 = greedy), got {self.temperature}.")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}.")
        if self.top_k < 0:
            raise ConfigError(f"top_k must be 0 (off) or positive, got {self.top_k}.")
        if not 0 <= self.lookahead <= 32:
            raise ConfigError(f"lookahead must be between 0 (off) and 32, got {self.lookahead}.")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass
class Generation(StepGeneration):
    """What one generate call produced: the text, and the figures a Step keeps (a StepGeneration)."""

    text: str = ""  # decoded generated ids (after the cut)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.generated_tokens = self.generated_tokens or len(self.token_ids)

    def record(self) -> StepGeneration:
        """The figures without the text (the text is the Step's ``completion``)."""
        return StepGeneration(**{f.name: getattr(self, f.name) for f in fields(StepGeneration)})


class Session(Protocol):
    """What the agent needs from a run's sequence: feed labelled text, generate, label what it generated."""

    segments: list[Segment]

    def feed(self, text: str, kind: SegmentKind = "scaffold", label: str = "") -> Segment: ...

    def generate(self, max_new_tokens: int = 128, stop: StopFn | None = None,
                 config: GenerationConfig | None = None, cancel: threading.Event | None = None) -> Generation: ...

    def label_generated(self, parts: list[tuple[SegmentKind, str, int]]) -> list[Segment]: ...


class LanguageModel(Protocol):
    """What the agent needs of a model: a name, and a new Session for each run (ScriptedModel is one).

    A LoadedModel has no sessions of its own; the agent opens a DecodeSession (or NaiveSession) on
    it. When a model has them, the agent also reads ``tokenizer`` (its chat template), ``source``
    (how to load it again) and ``meta`` (defaults it was fine-tuned with).
    """

    name: str

    def new_session(self) -> Session: ...


def encode_fed(tokenizer: Any, text: str, kind: str = "scaffold", label: str = "") -> list[int]:
    """The ids of text fed to the model. Only the chat template's own text may hold special tokens.

    Everything else (the task, documents, observations, examples, the prompt's text) is data: a
    literal ``<|im_end|>`` or ``<|im_start|>system`` in it is split into ordinary tokens, so text
    from a document or a user cannot close the model's turn or forge a system message.
    """
    if not text:
        return []
    special = kind == "scaffold" and label == "chat"
    # A fast tokenizer keeps split_special_tokens as a flag on its shared backend, set by each call: two
    # threads (two app sessions, or a run and an attribution) encoding at once could each get the other's
    # setting, so a chat marker would split or a document's marker would not. One encode at a time.
    with _ENCODE_LOCK:
        return tokenizer(text, add_special_tokens=False, split_special_tokens=not special)["input_ids"]


_ENCODE_LOCK = threading.Lock()


# ------------------------------------------------------------------- the session
@dataclass
class _Decoded:
    """What the decode loop produced, before the cut at the stop string."""

    ids: list[int] = field(default_factory=list)  # generated ids in order
    logprobs: list[float] = field(default_factory=list)  # log p of each
    pieces: list[str] = field(default_factory=list)  # pieces[i]: text of ids[: i + 1] (none for an eos id)
    alternatives: list[list[list]] = field(default_factory=list)  # per id: the top [token, id, logprob] choices
    entropy: list[float] = field(default_factory=list)  # per id: entropy (nats) of the distribution it came from
    reason: GenerationStop = "max_new_tokens"
    drafted: int = 0  # tokens proposed by lookahead
    accepted: int = 0  # of those, tokens the model confirmed


class DecodeSession:
    """One run's token sequence on a Hugging Face causal LM, with its KV cache kept between steps."""

    reuse_cache = True
    prefix_cache = PREFIX_CACHE

    def __init__(self, lm: LoadedModel) -> None:
        import torch

        self.lm = lm
        self.model, self.tokenizer = lm.model, lm.tokenizer
        self.ids: list[int] = []
        self.segments: list[Segment] = []
        self._torch = torch
        self._cache: Any = None  # a DynamicCache of ids[: self._cached]
        self._cached = 0  # how many ids the cache holds
        self._next_logits: torch.Tensor | None = None  # (vocab,) logits after ids[:self._cached], or None
        self._eos = set(lm.eos_token_ids)
        self._gen_start = 0  # where the last generation's ids begin
        self._rng: torch.Generator | None = None
        self._shared_prefix = 0  # ids[:n] are a prefix shared with other runs (0: none declared)
        self._offered: tuple[tuple[int, ...], Any, list[int]] | None = None  # a parent run's (ids, cache, boundaries)
        self._forced: _Decoded | None = None  # ids given as the start of the next generation (a token fork)
        # The row path and its batcher (batching.py) where the architecture allows; else the HF forward.
        self._batcher = batcher_for(lm) if self.reuse_cache else None

    # --------------------------------------------------------------- feeding
    def feed(self, text: str, kind: SegmentKind = "scaffold", label: str = "") -> Segment:
        """Tokenize ``text`` once and append its ids; the model sees them at the next generate."""
        ids = encode_fed(self.tokenizer, text, kind, label)
        seg = Segment(kind, label or kind, text, start=len(self.ids), end=len(self.ids) + len(ids))
        self.ids.extend(ids)
        self.segments.append(seg)
        return seg

    def mark_shared_prefix(self) -> None:
        """Declare the ids fed so far a prefix that other runs share (prompt, tools, examples).

        Its keys and values are computed once per process and model and copied into later
        sessions that start with the same ids, so their first step prefills only the task.
        """
        self._shared_prefix = len(self.ids)

    def feed_ids(self, ids: list[int], kind: SegmentKind, label: str) -> Segment:
        """Append ids a model generated before (a parent run's, replayed by a fork) exactly, not re-tokenized."""
        seg = Segment(kind, label, self.tokenizer.decode(ids), start=len(self.ids), end=len(self.ids) + len(ids))
        self.ids.extend(ids)
        self.segments.append(seg)
        return seg

    def truncate(self, n: int) -> None:
        """Forget everything from position ``n`` on: ids, the segments that start there, their keys / values."""
        del self.ids[n:]
        self.segments = [s for s in self.segments if s.start < n]
        self._crop(min(self._cached, n))

    def keep_for(self, run_id: str) -> None:
        """Keep this finished run's keys / values in RUN_CACHE, so a fork of it can start from them."""
        if self.reuse_cache and self._cache is not None and self._cached > 0:
            RUN_CACHE.put((id(self.model), run_id), (tuple(self.ids[: self._cached]), self._cache))

    def resume_from(self, run_id: str, boundaries: list[int]) -> bool:
        """Offer the kept keys / values of run ``run_id`` (see :meth:`offer_cache`); False when none are kept."""
        hit = RUN_CACHE.get((id(self.model), run_id)) if self.reuse_cache else None
        if hit is not None:
            self.offer_cache(list(hit[0]), hit[1], boundaries)
        return hit is not None

    def offer_cache(self, ids: list[int], cache: Any, boundaries: list[int]) -> None:
        """Offer a parent run's keys / values: the next prefill keeps those of the longest common prefix of ids.
        With ``boundaries`` (where the parent's own prefills began) it cuts back to the last of them, so what
        follows is computed exactly as the parent computed it: a fork without an edit reproduces it bit for bit."""
        self._offered = (tuple(ids), cache, sorted(boundaries))

    def force(self, ids: list[int], logprobs: list[float], alternatives: list[list[list]], entropy: list[float]) -> None:
        """Start the next generation with these ids (a fork at a token): it goes on from the last one."""
        self._forced = _Decoded(ids=list(ids), logprobs=list(logprobs), alternatives=list(alternatives),
                                entropy=list(entropy))
        self._forced.pieces = [self.tokenizer.decode(ids[: i + 1]) for i in range(len(ids))]
        self.ids.extend(ids)

    def label_generated(self, parts: list[tuple[SegmentKind, str, int]]) -> list[Segment]:
        """Label the last generation's ids: ``parts`` are (kind, label, end char offset) in order.

        Returns the segments made (their token spans index the whole sequence)."""
        gen_ids = self.ids[self._gen_start:]
        pieces = [self.tokenizer.decode(gen_ids[: i + 1]) for i in range(len(gen_ids))]
        text = self.tokenizer.decode(gen_ids)
        start_tok, start_char = self._gen_start, 0
        made: list[Segment] = []
        for n, (kind, label, end_char) in enumerate(parts):
            last = n == len(parts) - 1
            end_char = len(text) if last else min(end_char, len(text))
            n_tok = len(gen_ids) if last else next((i + 1 for i, p in enumerate(pieces) if len(p) >= end_char), len(gen_ids))
            end_tok = self._gen_start + n_tok
            if end_char > start_char or end_tok > start_tok:
                made.append(Segment(kind, label, text[start_char:end_char], start_tok, end_tok))
                self.segments.append(made[-1])
            start_tok, start_char = max(start_tok, end_tok), end_char
        return made

    # --------------------------------------------------------------- generating
    def generate(self, max_new_tokens: int = 128, stop: StopFn | None = None,
                 config: GenerationConfig | None = None, cancel: threading.Event | None = None) -> Generation:
        """Generate until ``stop`` cuts the text, an end-of-sequence id, ``max_new_tokens`` or ``cancel``."""
        config = config or GenerationConfig(max_new_tokens=max_new_tokens)
        limit = self._limit(config)
        prompt_tokens = len(self.ids) - (len(self._forced.ids) if self._forced else 0)  # given ids are generated ones
        t0 = time.perf_counter()
        with self._torch.inference_mode(), (self._batcher.session() if self._batcher else nullcontext()):
            reused, prefilled = self._prefill()
            t1 = time.perf_counter()
            out = self._decode(limit, stop, config, cancel)
        return self._finish(out, stop=stop, prompt_tokens=prompt_tokens, reused=reused, prefilled=prefilled,
                            t_prefill=t1 - t0, t_decode=time.perf_counter() - t1)

    def _limit(self, config: GenerationConfig) -> int:
        """Tokens this generation may add: the budget, or what is left of the context."""
        limit = min(config.max_new_tokens, self.lm.max_length - len(self.ids))
        if limit <= 0:
            raise ContextFull(f"The sequence has {len(self.ids)} tokens, the model's limit is {self.lm.max_length}.")
        return limit

    def _prefill(self) -> tuple[int, int]:
        """Bring the cache up to date with ``ids``; returns (reused, prefilled) token counts."""
        if self._cached >= len(self.ids) and self._next_logits is not None:
            return self._cached, 0
        if self._cached >= len(self.ids):  # logits of the last id are gone: recompute that one
            self._crop(len(self.ids) - 1)
        if self._cache is None and self._offered is not None:
            self._adopt_offered()
        reused = self._cached
        if self._cache is None and 0 < self._shared_prefix < len(self.ids):
            reused = self._restore_prefix()
        self._forward(self.ids[self._cached :])
        return reused, len(self.ids) - reused

    def _adopt_offered(self) -> None:
        ids, cache, boundaries = self._offered  # type: ignore[misc]
        self._offered = None
        if not self._fits(cache):  # kept by a session on the other path: recompute instead
            return
        common = 0
        for a, b in zip(ids, self.ids):
            if a != b:
                break
            common += 1
        common = min(common, len(self.ids) - 1)  # the last id is run again: its logits start the generation
        keep = max((b for b in boundaries if 0 < b <= common), default=0) if boundaries else common
        if keep > 0:
            crop_cache(cache, keep)
            self._cache, self._cached = cache, keep

    def _restore_prefix(self) -> int:
        """Start the cache from the shared prefix: copied from the prefix cache, or computed and stored there."""
        key = (id(self.model), self._batcher is not None, tuple(self.ids[: self._shared_prefix]))
        hit = self.prefix_cache.get(key)
        if hit is not None:
            self._cache, self._cached = hit, self._shared_prefix
            return self._shared_prefix
        self._forward(self.ids[: self._shared_prefix])
        self.prefix_cache.put(key, self._cache)
        return 0

    def _fits(self, cache: Any) -> bool:
        """Whether ``cache`` is of the kind this session's path uses (GrowingCache on the row path)."""
        return isinstance(cache, GrowingCache) == (self._batcher is not None)

    def _forward(self, ids: list[int], keep: int = 1) -> torch.Tensor:
        """Run ``ids`` through the model on top of the cache; returns the logits of the last
        ``keep`` positions, shape (keep, vocab), and keeps the very last as ``_next_logits``."""
        if self._batcher is not None:
            return self._forward_rows(ids, keep)
        torch = self._torch
        if self._cache is None:
            from transformers import DynamicCache

            self._cache = DynamicCache(config=self.model.config)
        rows = None
        for i in range(0, len(ids), _PREFILL_CHUNK):
            chunk = torch.tensor([ids[i : i + _PREFILL_CHUNK]], device=self.lm.device)  # (1, chunk)
            out = self.model(input_ids=chunk, use_cache=True, logits_to_keep=min(keep, chunk.shape[1]),
                             **{cache_kwarg(self.model): self._cache})
            rows = out.logits[0].float()  # (keep, vocab)
            self._next_logits = rows[-1]  # (vocab,)
        self._cached += len(ids)
        return rows

    def _forward_rows(self, ids: list[int], keep: int) -> torch.Tensor:
        """:meth:`_forward` on the row path, through the model's batcher (batched with other runs' passes)."""
        if self._cache is None:
            self._cache = self._batcher.rows.new_cache(len(self.ids) + 64)
        rows = None
        for i in range(0, len(ids), _ROW_CHUNK):
            chunk = ids[i : i + _ROW_CHUNK]
            rows = self._batcher.forward(self._cache, chunk, min(keep, len(chunk)))  # (keep, vocab)
            self._next_logits = rows[-1]
        self._cached += len(ids)
        return rows

    def _crop(self, n: int) -> None:
        n = max(0, n)
        if self._cache is not None and self._cached > n:
            crop_cache(self._cache, n)
        self._cached = min(self._cached, n)
        self._next_logits = None

    def _decode(self, limit: int, stop: StopFn | None, config: GenerationConfig,
                cancel: threading.Event | None) -> _Decoded:
        """The decode loop. Greedy decoding drafts from the context (prompt lookup) and verifies the
        draft in one forward pass; only tokens the model itself would pick greedily are kept, so the
        output is the same as one-token-at-a-time decoding, in fewer passes."""
        torch = self._torch
        out, self._forced = self._forced or _Decoded(), None
        self._gen_start = len(self.ids) - len(out.ids)
        if out.pieces and stop is not None and stop(out.pieces[-1]) is not None:
            out.reason = "stop_string"  # the given ids already end the step
            return out
        if not config.greedy and self._rng is None:
            self._rng = sampling_rng(config.seed, self._next_logits.device)
        lookahead = config.lookahead if config.greedy else 0
        while True:
            if cancel is not None and cancel.is_set():
                out.reason = "cancelled"
                return out
            token = pick_token(self._next_logits, config, self._rng)
            reason = self._accept(out, token, self._next_logits, stop, limit)
            if reason:
                out.reason = reason
                return out
            draft = draft_from_context(self.ids, min(lookahead, limit - len(out.ids))) if lookahead else []
            if not draft:
                self._forward([token])
                continue
            base = self._cached  # the cache holds ids[:base]; ids[base] is ``token``
            rows = self._forward([token, *draft], keep=len(draft) + 1)  # (1 + len(draft), vocab)
            out.drafted += len(draft)
            n_ok = 0
            for i, proposed in enumerate(draft):
                if int(torch.argmax(rows[i])) != proposed:
                    break
                n_ok += 1
                reason = self._accept(out, proposed, rows[i], stop, limit)
                if reason:
                    break
            out.accepted += n_ok
            crop_cache(self._cache, base + 1 + n_ok)  # drop the keys / values of rejected draft tokens
            self._cached = base + 1 + n_ok
            self._next_logits = rows[n_ok]
            if reason:
                out.reason = reason
                return out

    def _accept(self, out: _Decoded, token: int, logits: torch.Tensor, stop: StopFn | None,
                limit: int) -> GenerationStop | None:
        """Append one token chosen from ``logits`` (vocab,); returns why generation ends here, or None.

        The top alternatives and the entropy come from the same logits, so recording them costs no pass."""
        logp = self._torch.log_softmax(logits.float(), -1)  # (vocab,)
        out.logprobs.append(float(logp[token]))
        top = self._torch.topk(logp, N_ALTERNATIVES)
        out.alternatives.append([[self.tokenizer.decode([int(i)]), int(i), round(float(v), 4)]
                                 for v, i in zip(top.values, top.indices)])
        out.entropy.append(round(float(-(logp.exp() * logp).nan_to_num().sum()), 4))
        out.ids.append(token)
        self.ids.append(token)
        if token in self._eos:
            return "eos"
        out.pieces.append(self.tokenizer.decode(out.ids))
        if stop is not None and stop(out.pieces[-1]) is not None:
            return "stop_string"
        return "max_new_tokens" if len(out.ids) >= limit else None

    def _finish(self, out: _Decoded, *, stop: StopFn | None, prompt_tokens: int, reused: int, prefilled: int,
                t_prefill: float, t_decode: float) -> Generation:
        """Cut the generated ids where the text ends (an eos id or the stop string goes), drop the
        rest from the sequence and the cache, and report the generation."""
        keep = len(out.ids)
        if out.reason == "eos":
            keep -= 1  # the end-of-sequence id ends the step; it does not stay in the context
        elif out.reason == "stop_string" and stop is not None:
            keep = trim_to_cut(out.pieces, stop(out.pieces[-1]))  # type: ignore[arg-type]
        del self.ids[self._gen_start + keep :]
        self._crop(min(self._cached, len(self.ids)))
        kept = out.ids[:keep]
        return Generation(
            text=self.tokenizer.decode(kept), token_ids=kept, tokens=[self.tokenizer.decode([t]) for t in kept],
            logprobs=out.logprobs[:keep], alternatives=out.alternatives[:keep], entropy=out.entropy[:keep], stop=out.reason, prompt_tokens=prompt_tokens, reused_tokens=reused,
            prefill_tokens=prefilled, t_prefill=t_prefill, t_decode=t_decode, draft_tokens=out.drafted,
            accepted_tokens=out.accepted,
        )
