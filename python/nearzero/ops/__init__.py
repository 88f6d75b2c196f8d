"""The fused classify ops (SPEC §3): one compiled pass emits all counts and sums."""

from .elementwise import multiply_classify, tensor_classify
from .matmul import matmul_classify, tensordot_classify

__all__ = ["tensor_classify", "multiply_classify", "matmul_classify", "tensordot_classify"]
