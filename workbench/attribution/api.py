"""Attribution: how much each labelled part of the prompt drove a step's thought, action or answer.

The parts are the prompt's segments (instruction, tools, each few-shot example, the task, each
earlier thought, action and observation) or their single tokens. The target is the exact ids the
model generated in that step, scored by teacher forcing; nothing is re-tokenized.

    >>> result = attribute_step(trace, 2, target="action")          # doctest: +SKIP
    >>> result.to_dataframe().nlargest(3, "score")                  # doctest: +SKIP
    >>> result.grounding()                                          # doctest: +SKIP
    {'observations': 0.61, 'examples': 0.22, 'task': 0.09, 'own thoughts': 0.05, 'instruction': 0.03}

The methods and their settings are the table in :mod:`.methods` (Captum underneath);
:func:`attribute_step` looks the method up there and runs its runner. :func:`captum_reference`
runs Captum's own LLMAttribution with its defaults on the same features. The result record and the
comparisons across results are in :mod:`.results`; this module keeps them importable. The
faithfulness checks (:func:`randomized_copy`, :func:`rank_correlation`) close the module.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable

from ..deps import require
from ..errors import InputError
from ..types import Trace
from .counting import PassCounter
from .engine import TARGETS, Feature, PrefixScorer, build_sequence, segment_input
from .faithfulness import measure, spearman
from .methods import (
    ATTRIBUTION_METHODS,
    GRANULARITIES,
    METHODS,
    _row_labels,
    resolve_method,
)
from .results import (
    GROUNDING_GROUPS,
    AttributionResult,
    attribution_diff,
    grounding_timeline,
)

__all__ = ["AttributionResult", "attribute_step", "attribute_cached", "cache_key", "captum_reference", "grounding_timeline", "attribution_diff",
           "randomized_copy", "rank_correlation", "ATTRIBUTION_METHODS", "GRANULARITIES", "TARGETS", "GROUNDING_GROUPS", "Feature"]


# ------------------------------------------------------------------ computing


def _model_for(trace: Trace, model: Any) -> Any:
    if model is not None:
        return model
    from ..models import load_model

    source = trace.meta.get("model_source") or trace.model
    return load_model(None if source in ("", "embedded") else source)


def _step_index(trace: Trace, step: Any) -> int:
    return int(step.index if hasattr(step, "index") else step)


def attribute_step(trace: Trace, step: int | Any, target: str = "step", method: str = "feature_ablation",
                   granularity: str = "segment", model: Any = None, *, segments: list[str] | None = None,
                   check_masks: int = 16, check_seed: int = 0, progress: Callable[[int, int, str], None] | None = None,
                   cancel: Any = None, **settings: Any) -> AttributionResult:
    """Attribute step ``step`` of ``trace`` (an index or the Step) to the labelled parts of its prompt.

    ``method``: a name in METHODS (``ATTRIBUTION_METHODS``). ``settings``: that method's settings
    from the table, e.g. ``n_samples`` and ``seed`` for shapley, ``n_steps`` and ``per_token`` for
    layer_integrated_gradients; omitted ones take the table's defaults, and a given one another
    method owns is checked, then ignored. ``segments`` limits the features to these segment labels
    (at token granularity the default is every segment, which for perturbation methods means one
    model pass per token: narrow it). ``model``: the LoadedModel to score with (default: the run's
    own model, loaded). ``check_masks``: held-out random ablations the map's faithfulness is measured
    on (``result.faithfulness``: LDS, top-k deletion and sufficiency; 0 skips it), seeded by
    ``check_seed``; their passes are counted apart from the method's.

    ``progress(done, total, phase)`` is called after every forward pass (``phase``: ``"method"``,
    then ``"checks"``; ``total`` is the expected number). ``cancel``: anything with ``is_set()``
    (a ``threading.Event``); once set, the work stops before its next pass with
    :class:`~workbench.errors.Cancelled` and nothing is returned or stored.
    """
    if check_masks < 0:
        raise InputError(f"check_masks must be 0 (no faithfulness check) or more, got {check_masks}.")
    entry, values = resolve_method(method, granularity, settings)
    require("captum.attr", "Attribution")
    lm = _model_for(trace, model)
    if entry.name == "layer_integrated_gradients" and (getattr(lm, "meta", None) or {}).get("quantized"):
        raise InputError(f"{entry.name} follows gradients, and the int8 model's layers give none. Attribute with the "
                         "float model (the same choice without 'int8') or a perturbation method such as "
                         "feature_ablation, which work on the int8 model.")
    index = _step_index(trace, step)
    t0 = time.perf_counter()
    seq = build_sequence(trace, index, lm.tokenizer, target)
    features = seq.features(granularity, segments, lm.tokenizer)
    if not features:
        raise InputError(f"Step {index} has no prompt segments before its {target} to attribute to.")
    expected = entry.passes(len(features), len(seq.targets), values)
    counter = PassCounter(_reporter(progress, expected, "method"), cancel)  # this attribution's own
    run = entry.runner(lm, seq, features, counter, **values)
    recorded = {"segments": segments, "ablation": "removal", **values, **run.notes}
    seconds = time.perf_counter() - t0
    faith = None
    if check_masks:  # measured on its own scorer and counter, so its cost stays apart from the method's
        checks = PassCounter(_reporter(progress, check_masks + 13, "checks"), cancel)
        faith = measure(PrefixScorer(lm, seq, features, checks), run.scores, n_masks=check_masks, seed=check_seed)
    return AttributionResult(trace.id, index, target, method, granularity, features, run.scores, run.matrix,
                             run.row_labels, [seq.ids[t] for t in seq.targets], run.target_logprob, model=lm.name,
                             settings=recorded, forward_passes=counter.forward, backward_passes=counter.backward,
                             seconds=seconds, faithfulness=faith, tokens_run=counter.tokens,
                             tokens_full=counter.tokens_full)


def _reporter(progress: Callable[[int, int, str], None] | None, total: int, phase: str) -> Any:
    if progress is None:
        return None
    return lambda counter: progress(counter.forward, max(total, counter.forward), phase)


def captum_reference(trace: Trace, step: int | Any, target: str = "action", model: Any = None,
                     method: str = "feature_ablation", n_samples: int = 8, seed: int = 0,
                     **captum_kwargs: Any) -> AttributionResult:
    """The same attribution by Captum's own LLMAttribution: by default with Captum's defaults
    (token-by-token decoding with its cache, for every perturbation), the reference the fast path is
    measured against. ``method``: a perturbation method of the table (its Captum class is wrapped).
    ``captum_kwargs`` go to ``LLMAttribution.attribute`` (``forward_in_tokens=False`` is Captum's
    one-pass mode). The model is handed to Captum through a PassCounter, not patched."""
    require("captum.attr", "Attribution")
    import captum.attr
    import torch
    from captum.attr import LLMAttribution

    entry = METHODS.get(method)
    algorithm_class = getattr(captum.attr, entry.captum, None) if entry is not None else None
    if algorithm_class is None or not issubclass(algorithm_class, LLMAttribution.SUPPORTED_METHODS):
        able = [m.name for m in METHODS.values()
                if issubclass(getattr(captum.attr, m.captum, object), LLMAttribution.SUPPORTED_METHODS)]
        raise InputError(f"captum_reference cannot run method {method!r}: Captum's LLMAttribution takes "
                         f"perturbation methods. Available: {', '.join(able)}.")
    lm = _model_for(trace, model)
    index = _step_index(trace, step)
    t0 = time.perf_counter()
    seq = build_sequence(trace, index, lm.tokenizer, target)
    features = seq.features("segment", None, lm.tokenizer)
    inp = segment_input(seq, features)
    counter = PassCounter()
    algorithm = algorithm_class(counter.wrap(lm.model))  # LLMAttribution calls its .forward: counted here
    kwargs = {"n_samples": n_samples, **captum_kwargs} if "n_samples" in entry.defaults() else dict(captum_kwargs)
    torch.manual_seed(seed)
    with torch.no_grad():
        result = LLMAttribution(algorithm, lm.tokenizer).attribute(
            inp, target=torch.tensor([seq.ids[t] for t in seq.targets]), **kwargs)
    seq_attr = result.seq_attr.tolist()
    token_attr = result.token_attr.tolist() if result.token_attr is not None else [seq_attr]
    return AttributionResult(trace.id, index, target, method, "segment", features, seq_attr, token_attr,
                             _row_labels(lm, seq), [seq.ids[t] for t in seq.targets], float("nan"), model=lm.name,
                             settings={"engine": "captum LLMAttribution", **captum_kwargs},
                             forward_passes=counter.forward, seconds=time.perf_counter() - t0)


def cache_key(trace: Trace, step: int, target: str, method: str, granularity: str, model_name: str,
              **settings: Any) -> str:
    """What an attribution depends on, hashed: the run, the step, the request and the model."""
    import hashlib

    blob = json.dumps({"run": trace.id, "rendered": trace.rendered_hash, "step": step, "target": target,
                       "method": method, "granularity": granularity, "model": model_name, **settings},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def attribute_cached(store: Any, trace: Trace, step: int, target: str = "step", method: str = "feature_ablation",
                     granularity: str = "segment", model: Any = None, **kwargs: Any) -> tuple[AttributionResult, bool]:
    """attribute_step through the store: a result computed once is read back instantly.

    Returns (result, whether it came from the cache).
    """
    lm = _model_for(trace, model)
    checks = {"check_masks": kwargs.pop("check_masks", 16), "check_seed": kwargs.pop("check_seed", 0)}
    watch = {"progress": kwargs.pop("progress", None), "cancel": kwargs.pop("cancel", None)}  # not part of the key
    key = cache_key(trace, int(step), target, method, granularity, lm.name, **kwargs, **checks)
    cached = store.get_attribution(key)
    if cached is not None:
        return AttributionResult.from_dict(cached), True
    result = attribute_step(trace, step, target, method, granularity, lm, **kwargs, **checks, **watch)
    store.save_attribution(key, result)
    return result, False


# ------------------------------------------------------------------ faithfulness checks


def randomized_copy(lm: Any, seed: int = 0) -> Any:
    """A copy of ``lm`` with every weight re-initialised: the model-randomisation sanity check
    (Adebayo et al., 2018) compares attributions under it with the trained model's."""
    import copy

    import torch

    from ..models import LoadedModel

    clone = copy.deepcopy(lm.model)
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in clone.parameters():
            p.normal_(0.0, 0.02)
    return LoadedModel(model=clone, tokenizer=lm.tokenizer, name=f"{lm.name} (randomised)", source=lm.source,
                       device=lm.device, dtype=lm.dtype)


def rank_correlation(x: list[float], y: list[float]) -> float:
    """Spearman's rank correlation of two score lists (ties get their mean rank); 0 when either is constant."""
    rho = spearman(x, y)
    return 0.0 if rho is None else rho
