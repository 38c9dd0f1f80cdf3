"""Incremental decoding across the steps of one run, reusing the KV cache of everything so far.

A run is one growing sequence of token ids: the prompt, then each step's generated ids, then each
observation's ids. A DecodeSession keeps the keys and values of that sequence, so each step
prefills only what was appended since the last one (the observation and the next primer). Text
is tokenized once, where it enters, and generated tokens stay as the ids the model chose; nothing
is re-tokenized. Every span of ids carries a labelled Segment for attribution.

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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Protocol

from .errors import ConfigError
from .types import Segment

if TYPE_CHECKING:
    from .models import LoadedModel

__all__ = ["GenerationConfig", "Generation", "Session", "DecodeSession", "NaiveSession", "StopFn", "trim_to_cut",
           "ContextFull", "clear_prefix_cache", "encode_fed"]

StopFn = Callable[[str], "int | None"]  # generated text -> where to cut it, or None to go on
_PREFILL_CHUNK = 1024  # tokens per forward pass while prefilling: bounds activation memory


def encode_fed(tokenizer, text: str, kind: str = "scaffold", label: str = "") -> list[int]:
    """The ids of text fed to the model. Only the chat template's own text may hold special tokens.

    Everything else (the task, documents, observations, examples, the prompt's text) is data: a
    literal ``<|im_end|>`` or ``<|im_start|>system`` in it is split into ordinary tokens, so text
    from a document or a user cannot close the model's turn or forge a system message.
    """
    if not text:
        return []
    special = kind == "scaffold" and label == "chat"
    return tokenizer(text, add_special_tokens=False, split_special_tokens=not special)["input_ids"]


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
class Generation:
    """What one generate call produced and what it cost."""

    text: str  # decoded generated ids (after the cut)
    token_ids: list[int] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)  # log p(token) under the model at temperature 1
    stop: str = ""  # "stop_string" | "eos" | "max_new_tokens" | "script"
    prompt_tokens: int = 0  # sequence length when generation started
    reused_tokens: int = 0  # of those, served from the cache
    prefill_tokens: int = 0  # of those, computed now
    t_prefill: float = 0.0
    t_decode: float = 0.0
    draft_tokens: int = 0  # tokens proposed from the context (greedy lookahead)
    accepted_tokens: int = 0  # of those, tokens the model confirmed


class Session(Protocol):
    """What the agent needs from a model: feed labelled text, generate, report the segments."""

    segments: list[Segment]

    def feed(self, text: str, kind: str = "scaffold", label: str = "") -> Segment: ...

    def generate(self, max_new_tokens: int = 128, stop: StopFn | None = None,
                 config: GenerationConfig | None = None, cancel: "threading.Event | None" = None) -> Generation: ...

    def label_generated(self, parts: list[tuple[str, str, int]]) -> list[Segment]: ...


def trim_to_cut(pieces: list[str], cut: int) -> int:
    """How many generated tokens to keep so the text ends at ``cut``.

    ``pieces[i]`` is the text of the first i+1 tokens decoded together. A token that straddles the
    cut is kept only if what it adds beyond the cut is whitespace (so ``]\\n`` keeps its bracket).
    """
    for m, text in enumerate(pieces):
        if len(text) >= cut:
            if len(text) == cut or not text[cut:].strip():
                return m + 1
            return m
    return len(pieces)


def _cache_kwarg(model) -> str:
    """transformers 5.2x renamed ``past_key_values`` to ``cache``; use what this version takes."""
    name = getattr(model, "_workbench_cache_kwarg", None)
    if name is None:
        import inspect

        name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        model._workbench_cache_kwarg = name
    return name


def _crop_cache(cache, keep: int) -> None:
    """Keep the first ``keep`` positions. A negative argument removes that many from the end in
    every transformers version (a positive one meant 'keep n' before 5.2x and is refused after)."""
    remove = cache.get_seq_length() - keep
    if remove > 0:
        cache.crop(-remove)


_PREFIX_CACHE: dict[tuple, object] = {}  # (model id, prefix ids) -> a DynamicCache of that prefix
_PREFIX_CACHE_SIZE = 4  # prefixes kept per process (each ~40 MB for SmolLM2-135M and a 900-token prompt)
_PREFIX_LOCK = threading.Lock()


def clear_prefix_cache() -> None:
    """Forget the shared prompt prefixes (frees their memory; the next run recomputes its prefix)."""
    with _PREFIX_LOCK:
        _PREFIX_CACHE.clear()


class DecodeSession:
    """One run's token sequence on a Hugging Face causal LM, with its KV cache kept between steps."""

    reuse_cache = True

    def __init__(self, lm: "LoadedModel") -> None:
        import torch

        self.lm = lm
        self.model, self.tokenizer = lm.model, lm.tokenizer
        self.ids: list[int] = []
        self.segments: list[Segment] = []
        self._torch = torch
        self._cache = None
        self._cached = 0  # how many ids the cache holds
        self._next_logits = None  # (vocab,) logits after ids[:self._cached], or None
        self._eos = set(lm.eos_token_ids)
        self._gen_start = 0  # where the last generation's ids begin
        self._rng = None
        self._drafted = self._accepted = 0  # lookahead figures of the last generation
        self._shared_prefix = 0  # ids[:n] are a prefix shared with other runs (0: none declared)

    # --------------------------------------------------------------- feeding
    def feed(self, text: str, kind: str = "scaffold", label: str = "") -> Segment:
        """Tokenize ``text`` once and append its ids; the model sees them at the next generate."""
        ids = encode_fed(self.tokenizer, text, kind, label)
        seg = Segment(kind, label or kind, text, start=len(self.ids), end=len(self.ids) + len(ids))
        self.ids.extend(ids)
        self.segments.append(seg)
        return seg

    def label_generated(self, parts: list[tuple[str, str, int]]) -> list[Segment]:
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

    # --------------------------------------------------------------- model calls
    def _forward(self, ids: list[int], keep: int = 1):
        """Run ``ids`` through the model on top of the cache; keep the logits of the last one.

        Returns the logits of the last ``keep`` positions, shape (keep, vocab).
        """
        torch = self._torch
        if self._cache is None:
            from transformers import DynamicCache

            self._cache = DynamicCache(config=self.model.config)
        rows = None
        for i in range(0, len(ids), _PREFILL_CHUNK):
            chunk = torch.tensor([ids[i : i + _PREFILL_CHUNK]], device=self.lm.device)  # (1, chunk)
            out = self.model(input_ids=chunk, use_cache=True, logits_to_keep=min(keep, chunk.shape[1]),
                             **{_cache_kwarg(self.model): self._cache})
            rows = out.logits[0].float()  # (keep, vocab)
            self._next_logits = rows[-1]  # (vocab,)
        self._cached += len(ids)
        return rows

    def mark_shared_prefix(self) -> None:
        """Declare the ids fed so far a prefix that other runs share (prompt, tools, examples).

        Its keys and values are computed once per process and model and copied into later
        sessions that start with the same ids, so their first step prefills only the task.
        """
        self._shared_prefix = len(self.ids)

    def _prefill(self) -> tuple[int, int]:
        """Bring the cache up to date with ``ids``; returns (reused, prefilled) token counts."""
        if self._cached >= len(self.ids) and self._next_logits is not None:
            return self._cached, 0
        if self._cached >= len(self.ids):  # logits of the last id are gone: recompute that one
            self._crop(len(self.ids) - 1)
        reused = self._cached
        if self._cache is None and 0 < self._shared_prefix < len(self.ids):
            reused = self._restore_prefix()
        self._forward(self.ids[self._cached :])
        return reused, len(self.ids) - reused

    def _restore_prefix(self) -> int:
        """Start the cache from the shared prefix: copied from the process-wide store, or computed and stored."""
        import copy

        key = (id(self.model), tuple(self.ids[: self._shared_prefix]))
        with _PREFIX_LOCK:
            hit = _PREFIX_CACHE.pop(key, None)
            if hit is not None:
                _PREFIX_CACHE[key] = hit  # most recently used last
        if hit is not None:
            self._cache, self._cached = copy.deepcopy(hit), self._shared_prefix
            return self._shared_prefix
        self._forward(self.ids[: self._shared_prefix])
        with _PREFIX_LOCK:
            _PREFIX_CACHE[key] = copy.deepcopy(self._cache)
            while len(_PREFIX_CACHE) > _PREFIX_CACHE_SIZE:
                _PREFIX_CACHE.pop(next(iter(_PREFIX_CACHE)))
        return 0

    def _crop(self, n: int) -> None:
        n = max(0, n)
        if self._cache is not None and self._cached > n:
            _crop_cache(self._cache, n)
        self._cached = min(self._cached, n)
        self._next_logits = None

    def _pick(self, logits, config: GenerationConfig) -> int:
        torch = self._torch
        if config.greedy:
            return int(torch.argmax(logits))
        scores = logits / config.temperature
        if config.top_k:
            kth = torch.topk(scores, min(config.top_k, scores.numel())).values[-1]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if config.top_p < 1.0:
            sorted_scores, order = torch.sort(scores, descending=True)
            cum = torch.softmax(sorted_scores, -1).cumsum(-1)
            drop = cum - torch.softmax(sorted_scores, -1) > config.top_p  # keep the token that crosses top_p
            scores = scores.scatter(0, order[drop], float("-inf"))
        if self._rng is None:
            self._rng = torch.Generator(device=logits.device)
            self._rng.manual_seed(config.seed if config.seed is not None else int(time.time_ns() % 2**31))
        return int(torch.multinomial(torch.softmax(scores, -1), 1, generator=self._rng))

    def generate(self, max_new_tokens: int = 128, stop: StopFn | None = None,
                 config: GenerationConfig | None = None, cancel: "threading.Event | None" = None) -> Generation:
        """Generate until ``stop`` cuts the text, an end-of-sequence id, ``max_new_tokens`` or ``cancel``."""
        torch = self._torch
        config = config or GenerationConfig(max_new_tokens=max_new_tokens)
        limit = min(config.max_new_tokens, self.lm.max_length - len(self.ids))
        if limit <= 0:
            raise ContextFull(f"The sequence has {len(self.ids)} tokens, the model's limit is {self.lm.max_length}.")
        prompt_tokens = len(self.ids)
        t0 = time.perf_counter()
        with torch.inference_mode():
            reused, prefilled = self._prefill()
            t1 = time.perf_counter()
            gen, logprobs, pieces, reason = self._decode(limit, stop, config, cancel)
        t2 = time.perf_counter()
        return self._finish(gen, logprobs, pieces, reason, stop, prompt_tokens, reused, prefilled, t1 - t0, t2 - t1)

    def _decode(self, limit: int, stop: StopFn | None, config: GenerationConfig, cancel=None):
        """The decode loop. Greedy decoding drafts from the context (prompt lookup) and verifies the
        draft in one forward pass; only tokens the model itself would pick greedily are kept, so the
        output is the same as one-token-at-a-time decoding, in fewer passes."""
        torch = self._torch
        gen: list[int] = []
        logprobs: list[float] = []
        pieces: list[str] = []
        self._gen_start = len(self.ids)
        self._drafted = self._accepted = 0

        def accept(token: int, logits) -> str | None:
            """Append one token; returns why generation ends here, or None to go on."""
            logprobs.append(float(torch.log_softmax(logits, -1)[token]))
            gen.append(token)
            self.ids.append(token)
            if token in self._eos:
                return "eos"
            pieces.append(self.tokenizer.decode(gen))
            if stop is not None and stop(pieces[-1]) is not None:
                return "stop_string"
            return "max_new_tokens" if len(gen) >= limit else None

        lookahead = config.lookahead if config.greedy else 0
        while True:
            if cancel is not None and cancel.is_set():
                return gen, logprobs, pieces, "cancelled"
            token = self._pick(self._next_logits, config)
            reason = accept(token, self._next_logits)
            if reason:
                return gen, logprobs, pieces, reason
            draft = self._draft(min(lookahead, limit - len(gen))) if lookahead else []
            if not draft:
                self._forward([token])
                continue
            base = self._cached  # the cache holds ids[:base]; ids[base] is ``token``
            rows = self._forward([token, *draft], keep=len(draft) + 1)  # (1 + len(draft), vocab)
            self._drafted += len(draft)
            n_ok = 0
            for i, proposed in enumerate(draft):
                if int(torch.argmax(rows[i])) != proposed:
                    break
                n_ok += 1
                reason = accept(proposed, rows[i])
                if reason:
                    break
            self._accepted += n_ok
            _crop_cache(self._cache, base + 1 + n_ok)  # drop the keys / values of rejected draft tokens
            self._cached = base + 1 + n_ok
            self._next_logits = rows[n_ok]
            if reason:
                return gen, logprobs, pieces, reason

    def _draft(self, n: int) -> list[int]:
        """Up to ``n`` ids that followed the latest earlier occurrence of the last 3 (else 2) ids."""
        ids = self.ids
        if n <= 0:
            return []
        for size in (3, 2):
            if len(ids) <= size:
                continue
            tail, last = ids[-size:], ids[-1]
            for end in range(len(ids) - 2, size - 2, -1):  # end: index of a candidate match's last id
                if ids[end] == last and ids[end - size + 1 : end + 1] == tail:
                    follow = ids[end + 1 : end + 1 + n]
                    if follow:
                        return follow
        return []

    def _finish(self, gen, logprobs, pieces, reason, stop, prompt_tokens, reused, prefilled, t_prefill, t_decode):
        keep = len(gen)
        if reason == "eos":
            keep -= 1  # the end-of-sequence id ends the step; it does not stay in the context
        elif reason == "stop_string" and stop is not None:
            keep = trim_to_cut(pieces, stop(pieces[-1]))  # type: ignore[arg-type]
        del self.ids[self._gen_start + keep :]
        self._crop(min(self._cached, len(self.ids)))
        kept = gen[:keep]
        return Generation(
            text=self.tokenizer.decode(kept),
            token_ids=kept,
            tokens=[self.tokenizer.decode([t]) for t in kept],
            logprobs=logprobs[:keep],
            stop=reason,
            prompt_tokens=prompt_tokens,
            reused_tokens=reused,
            prefill_tokens=prefilled,
            t_prefill=t_prefill,
            t_decode=t_decode,
            draft_tokens=self._drafted,
            accepted_tokens=self._accepted,
        )


class NaiveSession(DecodeSession):
    """The baseline the cache is measured against: ``model.generate`` on the whole sequence at every step.

    Same ids, same greedy choices, same cut; only the reuse of keys and values is missing.
    """

    reuse_cache = False

    def generate(self, max_new_tokens: int = 128, stop: StopFn | None = None,
                 config: GenerationConfig | None = None, cancel=None) -> Generation:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        config = config or GenerationConfig(max_new_tokens=max_new_tokens)
        if not config.greedy:
            raise ConfigError("NaiveSession is a greedy baseline; use DecodeSession to sample.")
        limit = min(config.max_new_tokens, self.lm.max_length - len(self.ids))
        if limit <= 0:
            raise ContextFull(f"The sequence has {len(self.ids)} tokens, the model's limit is {self.lm.max_length}.")
        start = len(self.ids)
        tokenizer = self.tokenizer

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):  # input_ids: (1, seq)
                text = tokenizer.decode(input_ids[0, start:].tolist())
                return torch.tensor([stop is not None and stop(text) is not None], device=input_ids.device)

        t0 = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=torch.tensor([self.ids], device=self.lm.device),
                attention_mask=torch.ones(1, start, dtype=torch.long, device=self.lm.device),
                max_new_tokens=limit, do_sample=False, stopping_criteria=StoppingCriteriaList([_Stop()]),
                output_scores=True, return_dict_in_generate=True, pad_token_id=self.lm.pad_token_id,
                eos_token_id=list(self._eos) or None,
            )
        elapsed = time.perf_counter() - t0
        gen = out.sequences[0, start:].tolist()
        logprobs = [float(torch.log_softmax(s[0].float(), -1)[t]) for s, t in zip(out.scores, gen)]
        self._gen_start = start
        self.ids.extend(gen)
        reason = "max_new_tokens"
        pieces = [tokenizer.decode(gen[: i + 1]) for i in range(len(gen))]
        if gen and gen[-1] in self._eos:
            reason, pieces = "eos", pieces[:-1]
        elif pieces and stop is not None and stop(pieces[-1]) is not None:
            reason = "stop_string"
        self._cached, self._next_logits = 0, None
        return self._finish(gen, logprobs, pieces, reason, stop, start, 0, start, 0.0, elapsed)
