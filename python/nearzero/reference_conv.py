"""Plain, unfused convolution classify written from the specification, for tests and benchmarks.

Nine masked convolutions for counts plus nine for sums (the original's method), each one a
NumPy loop over kernel taps in float64. Slow by design; never called by the library. (The
benchmarks time the same method on torch's own convolutions: `_bench_cases.unfused_torch`.)
"""

from __future__ import annotations

import itertools

import numpy as np

from .reference import masked_parts

__all__ = ["resolve_padding", "conv", "conv_filter_grad", "conv_input_grad", "conv_classify",
           "conv_backprop_filter_classify", "conv_backprop_input_classify",
           "conv_abs_products"]


def _tuple(value, dims):
    return (int(value),) * dims if np.isscalar(value) else tuple(int(v) for v in value)


def resolve_padding(padding, in_sp, k_sp, strides, dilations):
    """(before, after) per spatial dim: VALID, SAME (TensorFlow: extra after) or explicit."""
    dims = len(in_sp)
    if isinstance(padding, str):
        if padding.upper() == "VALID":
            return [(0, 0)] * dims
        pads = []
        for i, k, s, d in zip(in_sp, k_sp, strides, dilations):
            total = max((-(-i // s) - 1) * s + (k - 1) * d + 1 - i, 0)
            pads.append((total // 2, total - total // 2))
        return pads
    if np.isscalar(padding):
        return [(int(padding), int(padding))] * dims
    padding = list(padding)
    if dims == 1 and len(padding) == 2 and all(np.isscalar(p) for p in padding):
        return [(int(padding[0]), int(padding[1]))]
    if len(padding) == dims + 2:
        padding = padding[1:-1]
    return [(int(p), int(p)) if np.isscalar(p) else (int(p[0]), int(p[1])) for p in padding]


def _taps(k_sp):
    return itertools.product(*(range(k) for k in k_sp))


def _window(tap, out_sp, strides, dilations):
    """Slices of the padded input that tap `tap` reads for every output position."""
    return tuple(slice(t * d, t * d + (o - 1) * s + 1, s)
                 for t, o, s, d in zip(tap, out_sp, strides, dilations))


def _out_size(in_sp, k_sp, strides, dilations, pads):
    return tuple((i + b + a - (k - 1) * d - 1) // s + 1
                 for i, k, s, d, (b, a) in zip(in_sp, k_sp, strides, dilations, pads))


def conv(x, w, strides, pads, dilations, groups):
    """Channels-last convolution: x (N, *sp, C), w (*k, C/groups, O) -> (N, *out, O)."""
    dims = x.ndim - 2
    k_sp, (cg, o) = w.shape[:dims], w.shape[dims:]
    out_sp = _out_size(x.shape[1:-1], k_sp, strides, dilations, pads)
    xp = np.pad(x, [(0, 0)] + list(pads) + [(0, 0)])
    og = o // groups
    out = np.zeros((x.shape[0],) + out_sp + (groups, og), dtype=np.float64)
    for tap in _taps(k_sp):
        xs = xp[(slice(None),) + _window(tap, out_sp, strides, dilations)]
        xs = xs.reshape(xs.shape[:-1] + (groups, cg))
        wt = w[tap].reshape(cg, groups, og)
        out += np.einsum("...gc,cgo->...go", xs, wt)
    return out.reshape(out.shape[:-2] + (o,))


def conv_filter_grad(x, dy, k_sp, strides, pads, dilations, groups):
    """Gradient of `conv` w.r.t. w: (*k, C/groups, O)."""
    dims = x.ndim - 2
    out_sp = dy.shape[1:-1]
    c, o = x.shape[-1], dy.shape[-1]
    cg, og = c // groups, o // groups
    xp = np.pad(x, [(0, 0)] + list(pads) + [(0, 0)])
    dyg = dy.reshape(dy.shape[:-1] + (groups, og))
    dw = np.zeros(tuple(k_sp) + (cg, groups, og), dtype=np.float64)
    axes = "ijk"[:dims]
    for tap in _taps(k_sp):
        xs = xp[(slice(None),) + _window(tap, out_sp, strides, dilations)]
        xs = xs.reshape(xs.shape[:-1] + (groups, cg))
        dw[tap] = np.einsum(f"n{axes}gc,n{axes}go->cgo", xs, dyg)
    return dw.reshape(tuple(k_sp) + (cg, o))


def conv_input_grad(dy, w, in_sp, strides, pads, dilations, groups):
    """Gradient of `conv` w.r.t. x: (N, *in_sp, C)."""
    dims = dy.ndim - 2
    k_sp, (cg, o) = w.shape[:dims], w.shape[dims:]
    out_sp = dy.shape[1:-1]
    og = o // groups
    padded = tuple(i + b + a for i, (b, a) in zip(in_sp, pads))
    dxp = np.zeros((dy.shape[0],) + padded + (groups, cg), dtype=np.float64)
    dyg = dy.reshape(dy.shape[:-1] + (groups, og))
    for tap in _taps(k_sp):
        wt = w[tap].reshape(cg, groups, og)
        dxp[(slice(None),) + _window(tap, out_sp, strides, dilations)] += np.einsum(
            "...go,cgo->...gc", dyg, wt)
    crop = tuple(slice(b, b + i) for i, (b, _) in zip(in_sp, pads))
    dx = dxp[(slice(None),) + crop]
    return dx.reshape(dx.shape[:-2] + (groups * cg,))


def _to_last(a, data_format):
    return np.moveaxis(a, 1, -1) if data_format == "channels_first" else a


def _kernel_to_last(w, data_format):
    if data_format != "channels_first":
        return w
    dims = w.ndim - 2
    return np.transpose(w, tuple(range(2, 2 + dims)) + (1, 0))


def _kernel_from_last(w9, data_format):
    """(*k, Cg, O, 9) -> the layout's kernel shape + (9,)."""
    if data_format != "channels_first":
        return w9
    dims = w9.ndim - 3
    return np.transpose(w9, (dims + 1, dims) + tuple(range(dims)) + (dims + 2,))


def _from_last(a9, data_format):
    return np.moveaxis(a9, -2, 1) if data_format == "channels_first" else a9


def _nine(op, first, second, t_first, t_second):
    """Nine masked ops for counts and nine for sums, stacked on a last axis of 9."""
    pa, pb = masked_parts(first, t_first), masked_parts(second, t_second)
    counts = np.stack([op(pa[a][0], pb[b][0]) for a in range(3) for b in range(3)], axis=-1)
    sums = np.stack([op(pa[a][1], pb[b][1]) for a in range(3) for b in range(3)], axis=-1)
    return np.rint(counts).astype(np.int64), sums


def _geometry(in_sp, k_sp, strides, padding, dilations):
    dims = len(in_sp)
    strides, dilations = _tuple(strides, dims), _tuple(dilations, dims)
    pads = resolve_padding(padding, in_sp, k_sp, strides, dilations)
    return strides, pads, dilations


def conv_classify(x, w, tx, tw, *, strides=1, padding="VALID", dilations=1, groups=1,
                  data_format="channels_last"):
    x, w = _to_last(np.asarray(x), data_format), _kernel_to_last(np.asarray(w), data_format)
    dims = x.ndim - 2
    s, p, d = _geometry(x.shape[1:-1], w.shape[:dims], strides, padding, dilations)
    counts, sums = _nine(lambda a, b: conv(a, b, s, p, d, groups), x, w, tx, tw)
    return _from_last(counts, data_format), _from_last(sums, data_format)


def conv_backprop_filter_classify(x, dy, kernel_shape, tx, td, *, strides=1, padding="VALID",
                                  dilations=1, groups=1, data_format="channels_last"):
    x, dy = _to_last(np.asarray(x), data_format), _to_last(np.asarray(dy), data_format)
    dims = x.ndim - 2
    k_sp = tuple(kernel_shape[2:]) if data_format == "channels_first" else tuple(
        kernel_shape[:dims])
    s, p, d = _geometry(x.shape[1:-1], k_sp, strides, padding, dilations)
    counts, sums = _nine(lambda a, b: conv_filter_grad(a, b, k_sp, s, p, d, groups), x, dy,
                         tx, td)
    return _kernel_from_last(counts, data_format), _kernel_from_last(sums, data_format)


def conv_backprop_input_classify(dy, w, input_shape, td, tw, *, strides=1, padding="VALID",
                                 dilations=1, groups=1, data_format="channels_last"):
    dy, w = _to_last(np.asarray(dy), data_format), _kernel_to_last(np.asarray(w), data_format)
    dims = dy.ndim - 2
    in_sp = tuple(input_shape[2:]) if data_format == "channels_first" else tuple(
        input_shape[1:-1])
    s, p, d = _geometry(in_sp, w.shape[:dims], strides, padding, dilations)
    counts, sums = _nine(lambda a, b: conv_input_grad(a, b, in_sp, s, p, d, groups), dy, w,
                         td, tw)
    return _from_last(counts, data_format), _from_last(sums, data_format)


def conv_abs_products(op_name, first, second, shape_arg, **kwargs):
    """Σ|a_i*b_i| per cell (float64, NaN as 0): the scale of SPEC §4's error bound for the
    reference function `op_name` called with the same arguments."""
    a = np.nan_to_num(np.abs(np.asarray(first, dtype=np.float64)), nan=0.0)
    b = np.nan_to_num(np.abs(np.asarray(second, dtype=np.float64)), nan=0.0)
    fn = globals()[op_name]
    args = (a, b) if shape_arg is None else (a, b, shape_arg)
    # thresholds 0: every value is one class, so the sums hold the plain op of |a| and |b|
    _, sums = fn(*args, 0.0, 0.0, **kwargs)
    return sums.sum(-1)

