"""Analysis helpers for classify results: text summaries, filtering and grouping of cells, and
explanations of near-zero outputs. Same names, arguments and texts as the original
`matmul_explainer` / `train_explainer` helpers, vectorised over cells.
"""

from ..terms import classify_terms
from .explanations import (CAUSES, describe_near_zero_explanation,
                           describe_top_near_zero_explanandum, near_zero_explanation)
from .filtering import filter_classifications, filter_groups
from .grouping import group_classifications
from .summaries import describe_groups, standardize, summarise
from .tensor_explanations import (describe_tensor_near_zero_explanation,
                                  describe_tensor_units_near_zero_explanation,
                                  tensor_near_zero_explanation,
                                  tensor_units_near_zero_explanation)

__all__ = [
    "CAUSES",
    "classify_terms",
    "describe_groups",
    "describe_near_zero_explanation",
    "describe_tensor_near_zero_explanation",
    "describe_tensor_units_near_zero_explanation",
    "describe_top_near_zero_explanandum",
    "filter_classifications",
    "filter_groups",
    "group_classifications",
    "near_zero_explanation",
    "standardize",
    "summarise",
    "tensor_near_zero_explanation",
    "tensor_units_near_zero_explanation",
]
