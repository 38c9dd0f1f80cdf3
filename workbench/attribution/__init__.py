"""Attribution: which parts of a step's prompt drove what the model wrote.

``methods`` is the one table of attribution methods (name -> runner, settings, what each
supports); ``api`` computes (attribute_step, the store cache, Captum's reference, faithfulness
checks); ``results`` holds the result record and comparisons across results; ``engine`` the
sequences and the prefix-reusing scorer; ``counting`` the per-attribution pass counter (and tokens recomputed); ``faithfulness`` how well a
map predicts held-out ablations (LDS, top-k deletion and sufficiency), measured for every result;
``surrogate`` the ContextCite-style LASSO surrogate; ``dependency`` the trace-level map of which
earlier step drove each step.
"""

from __future__ import annotations

from .api import (  # noqa: F401
    ATTRIBUTION_METHODS,
    GRANULARITIES,
    GROUNDING_GROUPS,
    TARGETS,
    AttributionResult,
    Feature,
    attribute_cached,
    attribute_step,
    attribution_diff,
    cache_key,
    captum_reference,
    grounding_timeline,
    randomized_copy,
    rank_correlation,
)
from .dependency import DependencyMap, dependency_map  # noqa: F401
from .faithfulness import Faithfulness, heldout_ablations, measure  # noqa: F401
from .methods import METHODS, AttributionMethod, MethodSetting  # noqa: F401

__all__ = ['AttributionResult', 'attribute_step', 'attribute_cached', 'cache_key', 'captum_reference', 'grounding_timeline', 'attribution_diff', 'randomized_copy', 'rank_correlation', 'ATTRIBUTION_METHODS', 'GRANULARITIES', 'TARGETS', 'GROUNDING_GROUPS', 'Feature',
           'METHODS', 'AttributionMethod', 'MethodSetting', 'Faithfulness', 'measure', 'heldout_ablations',
           'DependencyMap', 'dependency_map']
