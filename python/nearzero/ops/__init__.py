"""The fused classify ops (SPEC §3): one compiled pass emits all counts and sums."""

from .conv import conv_backprop_filter_classify, conv_backprop_input_classify, conv_classify
from .elementwise import multiply_classify, tensor_classify
from .masks import classification_mask
from .matmul import matmul_classify, tensordot_classify

__all__ = ["classification_mask", "tensor_classify", "multiply_classify", "matmul_classify", "tensordot_classify",
           "conv_classify", "conv_backprop_filter_classify", "conv_backprop_input_classify"]
