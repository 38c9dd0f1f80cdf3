"""Decoding passes without the Hugging Face forward's per-call overhead, over the rows of several runs at once.

A decode step of a 135M model reads every weight once to produce one token, so its speed is set by
memory bandwidth, and what it does besides the matrix products is overhead: building masks,
re-concatenating a growing cache, dispatching through generic modules. :class:`RowForward` runs a
Llama-family model (SmolLM2 and the tiny test model are Llama) straight through the model's own
modules: the embedding, each layer's norms, projections, rotary embedding and MLP, the final norm
and the output projection, which is the model's weights unchanged. What it changes:

- the keys and values live in a :class:`GrowingCache`, preallocated and grown by doubling, written
  in place instead of concatenated every token;
- logits are computed only for the rows asked for, and a single row goes through a copy of the
  output projection laid out transposed, which this CPU library multiplies about twice as fast
  (the projection is 49,152 x 576: the largest matrix of the model);
- the rows of several sequences are flattened into one pass: the projections and the MLP (nearly
  all the weights) are read once for all of them, and only attention runs per sequence, each over
  its own cache. That is what batching.py uses to decode several runs together.

Models of another architecture keep the Hugging Face forward (:func:`row_forward` returns None).

    >>> from workbench.testing import tiny_model
    >>> lm = tiny_model()
    >>> rows, cache = row_forward(lm), None
    >>> cache = rows.new_cache()
    >>> rows.forward([(cache, [1, 2, 3], 1)])[0].shape[0], cache.get_seq_length()
    (1, 3)
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from .models import LoadedModel

__all__ = ["GrowingCache", "RowForward", "row_forward", "use_rows", "SUPPORTED"]

SUPPORTED = ("LlamaForCausalLM",)  # architectures whose layers RowForward runs (others keep the HF forward)
_GROW = 256  # cache capacity is a multiple of this many positions


class GrowingCache:
    """Keys and values of one sequence, per layer, in buffers of shape (kv_heads, capacity, head_dim).

    Written in place; when full, every layer's buffer is reallocated at twice the size (a copy per
    doubling, not per token). ``get_seq_length`` and ``crop`` behave as transformers' caches do, so
    kvcache.crop_cache and the prefix cache (which deep-copies) work on it unchanged.
    """

    def __init__(self, layers: int, kv_heads: int, head_dim: int, dtype: Any, device: Any, capacity: int = _GROW):
        import torch

        capacity = max(_GROW, -(-capacity // _GROW) * _GROW)
        self.k = [torch.empty(kv_heads, capacity, head_dim, dtype=dtype, device=device) for _ in range(layers)]
        self.v = [torch.empty_like(b) for b in self.k]
        self.n = 0  # positions held

    @property
    def capacity(self) -> int:
        return self.k[0].shape[1] if self.k else 0

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.n

    def crop(self, max_length: int) -> None:
        """Keep the first ``max_length`` positions; a negative value removes that many from the end."""
        keep = self.n + max_length if max_length < 0 else max_length
        self.n = max(0, min(self.n, keep))

    def reserve(self, extra: int) -> None:
        """Make room for ``extra`` more positions (doubling the capacity when it is short)."""
        need = self.n + extra
        if need <= self.capacity:
            return
        cap = max(2 * self.capacity, -(-need // _GROW) * _GROW)
        for buffers in (self.k, self.v):
            for i, old in enumerate(buffers):
                new = old.new_empty(old.shape[0], cap, old.shape[2])
                new[:, : self.n] = old[:, : self.n]
                buffers[i] = new

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store (kv_heads, T, head_dim) keys / values after the held positions (``reserve`` first); returns
        views of all of them, (kv_heads, n + T, head_dim). ``advance`` moves ``n`` once every layer wrote."""
        end = self.n + k.shape[1]
        self.k[layer][:, self.n : end] = k
        self.v[layer][:, self.n : end] = v
        return self.k[layer][:, :end], self.v[layer][:, :end]

    def advance(self, t: int) -> None:
        self.n += t

    def __deepcopy__(self, memo: dict) -> GrowingCache:
        """A copy of the held positions only, with room to grow."""
        copy = GrowingCache.__new__(GrowingCache)
        cap = (self.n // _GROW + 1) * _GROW  # the next block boundary past n
        copy.k, copy.v = [], []
        for src, dst in ((self.k, copy.k), (self.v, copy.v)):
            for old in src:
                new = old.new_empty(old.shape[0], cap, old.shape[2])
                new[:, : self.n] = old[:, : self.n]
                dst.append(new)
        copy.n = self.n
        return copy


def _dropped() -> None:
    """What a copied or unpickled RowForward or Batcher becomes: nothing (the copy builds its own)."""
    return None


class RowForward:
    """One forward pass over the rows of several sequences, each on its own GrowingCache.

    ``forward([(cache, ids, keep), ...])`` appends each sequence's ids to its cache and returns, per
    sequence, the float logits of its last ``keep`` positions, shape (keep, vocab).
    """

    def __init__(self, lm: LoadedModel) -> None:
        import torch

        model = lm.model
        self.model, self.device, self.dtype = model, lm.device, lm.dtype
        inner = model.model
        self.embed, self.layers, self.norm, self.rotary = inner.embed_tokens, inner.layers, inner.norm, inner.rotary_emb
        config = model.config
        self.kv_heads = config.num_key_value_heads
        self.heads = config.num_attention_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        self.groups = self.heads // self.kv_heads
        self.scaling = self.layers[0].self_attn.scaling
        self.lm_head = model.lm_head
        self._head_t: tuple[int, Any] | None = None  # (weight version, transposed copy)
        self._onednn = bool(torch.backends.mkldnn.is_available())  # several rows of the head through oneDNN
        self.lock = threading.Lock()  # one pass at a time per model (the batcher serialises anyway)
        self._torch = torch

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        # A copy or pickle of the model (copy.deepcopy in the randomisation check, torch.save) leaves the
        # cache behind: the copy makes its own RowForward over its own weights when it first decodes.
        return (_dropped, ())

    def new_cache(self, capacity: int = _GROW) -> GrowingCache:
        return GrowingCache(len(self.layers), self.kv_heads, self.head_dim, self.dtype, self.device, capacity)

    def forward(self, items: list[tuple[GrowingCache, list[int], int]]) -> list[torch.Tensor]:
        torch = self._torch
        with self.lock, torch.inference_mode():
            lengths = [len(ids) for _, ids, _ in items]
            flat = [t for _, ids, _ in items for t in ids]
            positions = [c.n + j for (c, ids, _) in items for j in range(len(ids))]
            ids_t = torch.tensor([flat], device=self.device)  # (1, M)
            pos_t = torch.tensor([positions], device=self.device)  # (1, M)
            for cache, ids, _ in items:
                cache.reserve(len(ids))
            h = self.embed(ids_t)  # (1, M, hidden)
            cos, sin = self.rotary(h, pos_t)  # (1, M, head_dim) each
            cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # (1, 1, M, head_dim)
            for li, layer in enumerate(self.layers):
                h = h + self._attention(layer.self_attn, layer.input_layernorm(h), cos, sin, items, lengths, li)
                h = h + layer.mlp(layer.post_attention_layernorm(h))
            logits = self._logits(self.norm(h), items, lengths)
            for (cache, ids, _) in items:  # last: a pass that fails leaves every cache as it was
                cache.advance(len(ids))
            return logits

    def _attention(self, attn: Any, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                   items: list, lengths: list[int], li: int) -> torch.Tensor:
        torch = self._torch
        F = torch.nn.functional
        m = x.shape[1]
        q = attn.q_proj(x).view(1, m, self.heads, self.head_dim).transpose(1, 2)  # (1, heads, M, hd)
        k = attn.k_proj(x).view(1, m, self.kv_heads, self.head_dim).transpose(1, 2)  # (1, kv, M, hd)
        v = attn.v_proj(x).view(1, m, self.kv_heads, self.head_dim).transpose(1, 2)
        q = q * cos + _rotate_half(torch, q) * sin
        k = k * cos + _rotate_half(torch, k) * sin
        outs, start = [], 0
        for (cache, _, _), t in zip(items, lengths):
            end = start + t
            past = cache.n
            keys, values = cache.write(li, k[0, :, start:end], v[0, :, start:end])  # (kv, past + t, hd)
            qs, keys, values = q[:, :, start:end], keys.unsqueeze(0), values.unsqueeze(0)
            if t == 1 or past == 0:  # one query sees everything; a fresh sequence is plainly causal
                o = F.scaled_dot_product_attention(qs, keys, values, is_causal=t > 1, scale=self.scaling,
                                                   enable_gqa=self.groups > 1)
            else:  # new rows after a past: each sees the past and the new rows up to itself
                mask = torch.ones(t, past + t, dtype=torch.bool, device=x.device).tril(past)
                keys, values = _repeat_kv(keys, self.groups), _repeat_kv(values, self.groups)
                o = F.scaled_dot_product_attention(qs, keys, values, attn_mask=mask, scale=self.scaling)
            outs.append(o)
            start = end
        o = outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)  # (1, heads, M, hd)
        return attn.o_proj(o.transpose(1, 2).reshape(1, m, self.heads * self.head_dim))

    def _logits(self, h: torch.Tensor, items: list, lengths: list[int]) -> list[torch.Tensor]:
        torch = self._torch
        rows, start = [], 0
        for (_, _, keep), t in zip(items, lengths):
            end = start + t
            rows.extend(range(end - min(keep, t), end))
            start = end
        picked = h[0, rows]  # (R, hidden)
        weight = getattr(self.lm_head, "weight", None)
        if not isinstance(weight, torch.Tensor):  # a quantized or wrapped head: its own forward
            logits = self.lm_head(picked).float()
        else:
            logits = self._head(picked, weight).float()  # (R, vocab)
        out, at = [], 0
        for (_, _, keep), t in zip(items, lengths):
            n = min(keep, t)
            out.append(logits[at : at + n])
            at += n
        return out

    def _head(self, picked: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """The output projection (vocabulary x hidden, 28 M values in SmolLM2), by the fastest kernel measured on
        a CPU: one row on the transposed layout (about 2x MKL's), several rows through oneDNN (8 rows: 8 ms
        against 23 ms for MKL's F.linear, timed by hand with a hot cache; bench/throughput.py measures the
        batched evaluation it speeds up). Same values to float rounding either way."""
        torch = self._torch
        if weight.device.type != "cpu":
            return torch.nn.functional.linear(picked, weight)
        if picked.shape[0] == 1:
            return torch.nn.functional.linear(picked, self._transposed(weight))
        if self._onednn and weight.dtype == torch.float32:
            try:
                return torch.ops.mkldnn._linear_pointwise(picked, weight, None, "none", [], "")
            except (RuntimeError, AttributeError, NotImplementedError):  # a build without it: MKL from now on
                self._onednn = False
        return torch.nn.functional.linear(picked, weight)

    def _transposed(self, weight: torch.Tensor) -> torch.Tensor:
        """The output projection's values laid out transposed (same values; a faster one-row kernel), copied
        again whenever the weights changed in place (a full fine-tune between probes)."""
        version = weight._version
        if self._head_t is None or self._head_t[0] != version or self._head_t[1].shape != weight.shape:
            self._head_t = (version, weight.detach().t().contiguous().t())
        return self._head_t[1]


def _rotate_half(torch: Any, x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _repeat_kv(x: torch.Tensor, groups: int) -> torch.Tensor:
    if groups == 1:
        return x
    b, kv, n, d = x.shape
    return x[:, :, None].expand(b, kv, groups, n, d).reshape(b, kv * groups, n, d)


def row_forward(lm: LoadedModel) -> RowForward | None:
    """The RowForward of this loaded model (made once, kept on the model object so it goes when the model
    goes), or None: another architecture, a model in training mode, or the row path turned off."""
    model = lm.model
    if type(model).__name__ not in SUPPORTED or getattr(model, "training", False):
        return None
    if model.__dict__.get("_workbench_rows_off"):
        return None
    rows = model.__dict__.get("_workbench_rows")
    if rows is None:
        rows = RowForward(lm)
        object.__setattr__(model, "_workbench_rows", rows)
    return rows


def use_rows(lm: LoadedModel, on: bool = True) -> None:
    """Turn the row path on or off for this model (off: sessions use the Hugging Face forward, as before)."""
    object.__setattr__(lm.model, "_workbench_rows_off", not on)
