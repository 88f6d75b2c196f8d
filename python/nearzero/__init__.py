"""nearzero: explain near-zero numbers and near-zero gradients.

The classify ops split every output cell of a matmul, convolution or elementwise product into
the nine class pairs of its inputs (Positive / near-Zero / Negative) with counts and sums, in
one fused C++/CUDA pass. Same names and results as the original `matmul_explainer`.
"""

from ._backend import build_info
from .analysis import (describe_groups, describe_near_zero_explanation,
                       describe_tensor_near_zero_explanation,
                       describe_tensor_units_near_zero_explanation,
                       describe_top_near_zero_explanandum, filter_classifications, filter_groups,
                       group_classifications, near_zero_explanation, standardize, summarise,
                       tensor_near_zero_explanation, tensor_units_near_zero_explanation)
from .ops import (classification_mask, conv_backprop_filter_classify,
                  conv_backprop_input_classify, conv_classify, matmul_classify, multiply_classify, tensor_classify, tensordot_classify)
from .backends.result_memory import held_bytes as result_memory_bytes
from .backends.result_memory import release_free as release_result_memory
from .terms import classify_terms
from .thresholds import threshold

__version__ = build_info()["version"]

# The report layer needs torch: imported on first use, so `import nearzero` needs NumPy only.
_REPORT_NAMES = ("GradientRecorder", "Report", "explain_model", "explain_near_zero_gradients")


def __getattr__(name):
    if name in _REPORT_NAMES:
        from . import report

        return getattr(report, name)
    raise AttributeError(f"module 'nearzero' has no attribute {name!r}")


__all__ = [
    "GradientRecorder",
    "Report",
    "build_info",
    "classification_mask",
    "classify_terms",
    "conv_backprop_filter_classify",
    "conv_backprop_input_classify",
    "conv_classify",
    "describe_groups",
    "describe_near_zero_explanation",
    "describe_tensor_near_zero_explanation",
    "describe_tensor_units_near_zero_explanation",
    "describe_top_near_zero_explanandum",
    "explain_model",
    "explain_near_zero_gradients",
    "filter_classifications",
    "filter_groups",
    "group_classifications",
    "matmul_classify",
    "multiply_classify",
    "near_zero_explanation",
    "release_result_memory",
    "result_memory_bytes",
    "standardize",
    "summarise",
    "tensor_classify",
    "tensor_near_zero_explanation",
    "tensor_units_near_zero_explanation",
    "tensordot_classify",
    "threshold",
]
