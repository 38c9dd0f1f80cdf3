"""Choosing tokens, as pure functions: no model, no session, inputs -> outputs.

The decoding session (generation.py) calls these: ``pick_token`` for the next id (greedy, or a
sample at a temperature after top-k and top-p), ``draft_from_context`` for the ids greedy
lookahead proposes, ``trim_to_cut`` for where a stop string cuts the generated tokens.

    >>> import torch
    >>> top_k_filter(torch.tensor([1.0, 3.0, 2.0]), 2).tolist()
    [-inf, 3.0, 2.0]
    >>> draft_from_context([1, 2, 3, 9, 1, 2, 3, 7, 8, 5, 1, 2, 3], 3)
    [7, 8, 5]
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # torch is imported inside the functions: `import workbench` leaves it out
    import torch

__all__ = ["top_k_filter", "top_p_filter", "pick_token", "sampling_rng", "draft_from_context", "trim_to_cut"]


class _Sampling(Protocol):  # the fields of GenerationConfig these functions read
    temperature: float
    top_k: int
    top_p: float

    @property
    def greedy(self) -> bool: ...


def top_k_filter(scores: torch.Tensor, k: int) -> torch.Tensor:
    """``scores`` (vocab,) with all but the ``k`` highest set to -inf (ties with the k-th stay)."""
    import torch

    kth = torch.topk(scores, min(k, scores.numel())).values[-1]
    return scores.masked_fill(scores < kth, float("-inf"))


def top_p_filter(scores: torch.Tensor, p: float) -> torch.Tensor:
    """``scores`` (vocab,) with all but the nucleus set to -inf: the most likely tokens until their
    probabilities sum to ``p``, the one that crosses ``p`` included."""
    import torch

    sorted_scores, order = torch.sort(scores, descending=True)
    probs = torch.softmax(sorted_scores, -1)  # (vocab,), descending
    drop = probs.cumsum(-1) - probs > p  # the mass of the more likely tokens already exceeds p
    return scores.scatter(0, order[drop], float("-inf"))


def sampling_rng(seed: int | None, device: Any = "cpu") -> torch.Generator:
    """The random generator a session samples with: seeded, or from the clock when ``seed`` is None."""
    import torch

    rng = torch.Generator(device=device)
    rng.manual_seed(seed if seed is not None else int(time.time_ns() % 2**31))
    return rng


def pick_token(logits: torch.Tensor, config: _Sampling, rng: torch.Generator | None = None) -> int:
    """The next id from ``logits`` (vocab,): the argmax when ``config`` is greedy, else a sample
    (drawn with ``rng``) at ``config.temperature`` from what top-k, then top-p, leave."""
    import torch

    if config.greedy:
        return int(torch.argmax(logits))
    scores = logits / config.temperature
    if config.top_k:
        scores = top_k_filter(scores, config.top_k)
    if config.top_p < 1.0:
        scores = top_p_filter(scores, config.top_p)
    return int(torch.multinomial(torch.softmax(scores, -1), 1, generator=rng))


def draft_from_context(ids: list[int], n: int, sizes: tuple[int, ...] = (3, 2)) -> list[int]:
    """Prompt lookup: up to ``n`` ids that followed the latest earlier occurrence of the last
    ``sizes[0]`` ids (else the last ``sizes[1]``, ...); [] when none occurred before."""
    if n <= 0:
        return []
    for size in sizes:
        if len(ids) <= size:
            continue
        tail, last = ids[-size:], ids[-1]
        for end in range(len(ids) - 2, size - 2, -1):  # end: index of a candidate match's last id
            if ids[end] == last and ids[end - size + 1 : end + 1] == tail:
                follow = ids[end + 1 : end + 1 + n]
                if follow:
                    return follow
    return []


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
