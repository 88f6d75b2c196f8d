"""Analysis helpers for classify results: text summaries, filtering and grouping of cells, and
explanations of near-zero outputs. Same names, arguments and texts as the original
`matmul_explainer` / `train_explainer` helpers, vectorised over cells.
"""

from .explanations import (describe_near_zero_explanation, describe_top_near_zero_explanandum,
                           near_zero_explanation)

__all__ = [
    "describe_near_zero_explanation",
    "describe_top_near_zero_explanandum",
    "near_zero_explanation",
]
