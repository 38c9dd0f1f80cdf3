"""Counting an attribution's model passes without touching the shared model.

Each attribution owns a :class:`PassCounter` and calls the model through :meth:`PassCounter.wrap`,
a thin stand-in that counts and delegates. Nothing is patched on the model itself, so two
attributions on the same model (two threads, two app sessions) keep separate counts, and the
model is the same object, with the same ``forward``, before, during and after.

    >>> counter = PassCounter()                                     # doctest: +SKIP
    >>> logits = counter.wrap(lm.model)(input_ids=ids).logits       # doctest: +SKIP
    >>> counter.forward                                             # doctest: +SKIP
    1
"""

from __future__ import annotations

from typing import Any

__all__ = ["PassCounter", "CountingModel"]


class PassCounter:
    """The forward and backward passes of one attribution.

    A pass is one sequence through the model: a batch of 4 sequences counts 4 (integrated
    gradients runs its interpolation points in batches). Backward passes are counted when a
    gradient reaches an output the counter saw (see :meth:`count_backward`).
    """

    def __init__(self, progress: Any = None, cancel: Any = None) -> None:
        self.forward = 0
        self.backward = 0
        self.tokens = 0  # tokens the passes actually ran (a reused prefix costs nothing)
        self.tokens_full = 0  # tokens the same passes would run with nothing reused
        self.progress = progress  # called as progress(counter) after every counted pass
        self.cancel = cancel  # anything with is_set(): a set one stops the work before its next pass

    def count_tokens(self, ran: int, full: int) -> None:
        """Record one variant's cost: ``ran`` tokens computed where a full pass would compute ``full``."""
        self.tokens += ran
        self.tokens_full += full

    @property
    def recomputed_share(self) -> float | None:
        """The tokens run as a share of recomputing every pass in full (None before any is recorded)."""
        return self.tokens / self.tokens_full if self.tokens_full else None

    def _before_pass(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            from ..errors import Cancelled

            raise Cancelled("Attribution cancelled; nothing was stored.")

    def _after_pass(self) -> None:
        if self.progress is not None:
            self.progress(self)

    def wrap(self, model: Any) -> CountingModel:
        """``model`` as seen through this counter: calls are counted, everything else is the model's."""
        return CountingModel(model, self)

    def count_backward(self, output: Any) -> Any:
        """Count the backward passes that later reach ``output`` (batch, ...): one per row.

        A tensor hook on this attribution's own output tensor, so it sees only this attribution's
        gradients; it goes away with the tensor. Returns ``output``.
        """
        if getattr(output, "requires_grad", False):
            rows = int(output.shape[0]) if output.dim() > 0 else 1

            def hook(grad: Any) -> None:
                self.backward += rows

            output.register_hook(hook)
        return output


def _batch_rows(args: tuple, kwargs: dict) -> int:
    """How many sequences one model call runs: the batch size of its input ids (or embeddings)."""
    for value in (kwargs.get("input_ids"), kwargs.get("inputs_embeds"), args[0] if args else None):
        shape = getattr(value, "shape", None)
        if shape is not None and len(shape) >= 1:
            return int(shape[0])
    return 1


class CountingModel:
    """A model seen through a :class:`PassCounter`: ``m(...)`` and ``m.forward(...)`` count, then call
    the real model; any other attribute (``device``, ``config``, ``prepare_inputs_for_generation``,
    ...) is the real model's. Captum's LLMAttribution drives it like the model itself."""

    def __init__(self, model: Any, counter: PassCounter) -> None:
        self.model = model
        self.counter = counter

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(self.model, args, kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(self.model.forward, args, kwargs)

    def _call(self, fn: Any, args: tuple, kwargs: dict) -> Any:
        self.counter._before_pass()
        self.counter.forward += _batch_rows(args, kwargs)
        out = fn(*args, **kwargs)
        self.counter._after_pass()
        return out

    def __getattr__(self, name: str) -> Any:  # only for names not set above
        if name in ("model", "counter"):  # not yet set (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.model, name)
