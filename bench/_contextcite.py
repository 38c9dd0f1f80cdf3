"""The `context-cite` package (Cohen-Wang et al., 2024) run on one of this project's steps.

ContextCite builds its prompt from a context and a query through a chat template, generates a
response, then scores that response under random ablations of the context's sentences. Here its
``ContextCiter`` gets this project's exact step instead: the prompt ids of a mask are the step's
ids with the masked-out features removed, and the response is the step's target tokens. Masks,
forward passes (full sequence each time, as the package runs them), logit-probabilities and the
LASSO fit are the package's own code.

    from _contextcite import package_scores
    weights, seconds, passes = package_scores(lm, seq, features, n_ablations=32)
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings


def package_scores(lm, seq, features, *, n_ablations: int = 32, keep_prob: float = 0.5, seed: int = 0,
                   output: str = "logit_prob", lasso_alpha: float = 0.01):
    """(weights, seconds, forward passes, tokens run) of context-cite's surrogate on this step.

    ``seq.targets`` must be contiguous (a thought or an action). ``output``: the package's
    ``aggregate_logit_probs`` output type (its default is ``logit_prob``). ``seed``: the package's
    ``base_seed`` (mask i is drawn from ``RandomState(seed + i)``).
    """
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        import context_cite.utils as cc_utils  # prints nltk's failed download of punkt_tab (no internet)
        from context_cite import ContextCiter
        from context_cite.context_partitioner import BaseContextPartitioner
        from context_cite.solver import LassoRegression
    logging.getLogger("ContextCite").setLevel(logging.WARNING)
    targets = seq.targets
    if targets != list(range(targets[0], targets[0] + len(targets))):
        raise ValueError("context-cite needs contiguous target tokens (a thought or an action)")

    class Sources(BaseContextPartitioner):
        def __init__(self) -> None:
            super().__init__("")

        def split_context(self) -> None:
            pass

        @property
        def num_sources(self) -> int:
            return len(features)

        def get_source(self, index: int) -> str:
            return features[index].label

        def get_context(self, mask=None) -> str:
            return ""

    class StepCiter(ContextCiter):
        def _get_prompt_ids(self, mask=None, return_prompt=False):
            drop = set()
            if mask is not None:
                drop = {p for f, keep in zip(features, mask) if not keep for p in range(f.start, f.end)}
            ids = [seq.ids[p] for p in range(targets[0]) if p not in drop]
            return (ids, "") if return_prompt else ids

        @property
        def _response_ids(self):
            return [seq.ids[t] for t in targets]

    from workbench.attribution.counting import PassCounter

    counter = PassCounter()
    model = counter.wrap(lm.model)  # counted, never patched
    citer = StepCiter(model, lm.tokenizer, "", "", num_ablations=n_ablations, ablation_keep_prob=keep_prob,
                      partitioner=Sources(), solver=LassoRegression(lasso_alpha))
    if lm.tokenizer.pad_token is None:
        lm.tokenizer.pad_token = lm.tokenizer.eos_token
    t0 = time.perf_counter()
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        masks, logit_probs = cc_utils.get_masks_and_logit_probs(
            model, lm.tokenizer, n_ablations, len(features), citer._get_prompt_ids, citer._response_ids,
            keep_prob, 1, base_seed=seed)
        outputs = cc_utils.aggregate_logit_probs(logit_probs, output_type=output)
        weights, bias = citer.solver.fit(masks, outputs, len(targets))
    tokens = sum(len(citer._get_prompt_ids(m)) + len(targets) for m in masks)  # every pass runs the whole sequence
    return {"weights": [float(w) for w in weights], "bias": float(bias), "masks": masks, "outputs": outputs,
            "seconds": time.perf_counter() - t0, "passes": counter.forward, "tokens": tokens}
