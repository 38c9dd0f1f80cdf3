"""Attribution: which parts of a step's prompt drove what the model wrote.

``api`` holds the methods, results and faithfulness checks; ``engine`` the sequences and the prefix-reusing scorer.
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

__all__ = ['AttributionResult', 'attribute_step', 'attribute_cached', 'cache_key', 'captum_reference', 'grounding_timeline', 'attribution_diff', 'randomized_copy', 'rank_correlation', 'ATTRIBUTION_METHODS', 'GRANULARITIES', 'TARGETS', 'GROUNDING_GROUPS', 'Feature']
