"""Convolution classify ops (SPEC §3): the forward convolution, and its exact gradients with
respect to the kernel and to the input, each in one fused pass over 1D, 2D or 3D data."""

from __future__ import annotations

import numpy as np

from .._arrays import as_operand
from ._common import package, prepare_pair
from .conv_geometry import (ConvGeometry, filter_grad_geometry, forward_geometry,
                            input_grad_geometry)

__all__ = ["conv_classify", "conv_backprop_filter_classify", "conv_backprop_input_classify"]


def _shape(x, name):
    return as_operand(x, name).shape


def _run(family: str, geometry: ConvGeometry, operands, names, value_shape, channel_axis,
         products_per_cell, confidence, thresholds, return_thresholds, reduce, mask,
         nan_policy):
    prepared = prepare_pair(*operands, names, confidence, thresholds, nan_policy)
    counts, sums = prepared.backend.conv(family, prepared, geometry, value_shape, channel_axis,
                                         products_per_cell, reduce, mask)
    return package(prepared, counts, sums, return_thresholds)


def conv_classify(inputs, kernel, strides=1, padding="VALID", confidence: float = 0.95,
                  thresholds=None, return_thresholds: bool = False, *,
                  data_format: str = "channels_last", dilations=1, groups: int = 1,
                  reduce=None, mask=None, nan_policy: str = "raise"):
    """Nine-way classification of every output cell of a 1D, 2D or 3D convolution.

    For each output cell, counts and sums of the products ``inputs * kernel`` in each class
    pair PP, PZ, PN, ZP, ZZ, ZN, NP, NZ, NN (first letter from ``inputs``). Returns
    ``(counts, sums)`` of shape ``output_shape + (9,)``; ``sums.sum(-1)`` is the convolution.

    ``data_format="channels_last"`` (TensorFlow): inputs ``(N, *spatial, C)``, kernel
    ``(*spatial, C/groups, out)``; ``"channels_first"`` (PyTorch): inputs ``(N, C, *spatial)``,
    kernel ``(out, C/groups, *spatial)``. ``strides``/``dilations`` are an int or one per
    spatial dimension; ``padding`` is ``"VALID"``, ``"SAME"`` (TensorFlow semantics) or explicit
    ints / ``(before, after)`` pairs per dimension. Padded positions belong to no class.
    ``reduce="all"`` gives ``(9,)`` totals, ``reduce="channel"`` ``(out, 9)``; ``mask`` (bool,
    output shape) selects cells.
    """
    geometry = forward_geometry(_shape(inputs, "inputs"), _shape(kernel, "kernel"), strides,
                                padding, dilations, groups, data_format)
    return _run("forward", geometry, (inputs, kernel), ("inputs", "kernel"),
                geometry.output_shape, geometry.activation_channel_axis,
                geometry.taps * geometry.in_per_group, confidence, thresholds,
                return_thresholds, reduce, mask, nan_policy)


def conv_backprop_filter_classify(x, d_out, kernel_shape, strides=1, padding="VALID",
                                  confidence: float = 0.95, thresholds=None,
                                  return_thresholds: bool = False, *,
                                  data_format: str = "channels_last", dilations=1,
                                  groups: int = 1, reduce=None, mask=None,
                                  nan_policy: str = "raise"):
    """Nine-way classification of the exact gradient of a convolution w.r.t. its kernel.

    ``x`` is the convolution's input and ``d_out`` the gradient w.r.t. its output (shape of
    the forward output). Returns ``(counts, sums)`` of shape ``kernel_shape + (9,)`` over the
    products ``x * d_out`` (first letter from ``x``); ``sums.sum(-1)`` is the kernel gradient.
    ``reduce="channel"`` keeps the kernel's output-channel axis. Other arguments as
    `conv_classify`.
    """
    geometry = filter_grad_geometry(_shape(x, "x"), _shape(d_out, "d_out"), kernel_shape,
                                    strides, padding, dilations, groups, data_format)
    positions = int(np.prod(geometry.output_spatial, dtype=np.int64))
    return _run("filter_grad", geometry, (x, d_out), ("x", "d_out"),
                geometry.kernel_shape, geometry.kernel_out_axis, geometry.batch * positions,
                confidence, thresholds, return_thresholds, reduce, mask, nan_policy)


def conv_backprop_input_classify(d_out, kernel, input_shape, strides=1, padding="VALID",
                                 confidence: float = 0.95, thresholds=None,
                                 return_thresholds: bool = False, *,
                                 data_format: str = "channels_last", dilations=1,
                                 groups: int = 1, reduce=None, mask=None,
                                 nan_policy: str = "raise"):
    """Nine-way classification of the exact gradient of a convolution w.r.t. its input.

    ``d_out`` is the gradient w.r.t. the output (shape of the forward output of an input of
    ``input_shape``). Returns ``(counts, sums)`` of shape ``input_shape + (9,)`` over the
    products ``d_out * kernel`` (first letter from ``d_out``); ``sums.sum(-1)`` is the input
    gradient. Strides, uneven SAME padding and dilations are exact. ``reduce="channel"`` keeps
    the input's channel axis. Other arguments as `conv_classify`.
    """
    geometry = input_grad_geometry(_shape(d_out, "d_out"), _shape(kernel, "kernel"),
                                   input_shape, strides, padding, dilations, groups, data_format)
    return _run("input_grad", geometry, (d_out, kernel), ("d_out", "kernel"),
                geometry.input_shape, geometry.activation_channel_axis,
                geometry.taps * geometry.out_per_group, confidence, thresholds,
                return_thresholds, reduce, mask, nan_policy)
