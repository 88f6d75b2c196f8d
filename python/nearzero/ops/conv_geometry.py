"""Convolution geometry: layouts, strides, dilations, groups and TensorFlow-style padding
resolved once into a `ConvGeometry` that the CPU and CUDA kernels share.

Shapes follow `data_format`: "channels_last" (TensorFlow: inputs (N, *spatial, C), kernel
(*spatial, C/groups, out)) or "channels_first" (PyTorch: inputs (N, C, *spatial), kernel
(out, C/groups, *spatial)).
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

__all__ = ["ConvGeometry", "forward_geometry", "filter_grad_geometry", "input_grad_geometry"]

DATA_FORMATS = ("channels_last", "channels_first")
# Largest stride, dilation, padding or size a geometry may hold: far beyond any real convolution,
# small enough that the kernels' int64 index arithmetic cannot overflow.
MAX_EXTENT = 2**40


@dataclass(frozen=True)
class ConvGeometry:
    """One convolution with every quantity resolved (padding as (before, after) per dim)."""

    data_format: str
    batch: int
    in_channels: int
    out_channels: int
    groups: int
    input_spatial: tuple
    kernel_spatial: tuple
    output_spatial: tuple
    strides: tuple
    dilations: tuple
    padding: tuple  # ((before, after), ...) per spatial dimension

    @property
    def spatial_dims(self) -> int:
        return len(self.input_spatial)

    @property
    def channels_first(self) -> bool:
        return self.data_format == "channels_first"

    @property
    def in_per_group(self) -> int:
        return self.in_channels // self.groups

    @property
    def out_per_group(self) -> int:
        return self.out_channels // self.groups

    def _activation(self, spatial, channels) -> tuple:
        if self.channels_first:
            return (self.batch, channels) + tuple(spatial)
        return (self.batch,) + tuple(spatial) + (channels,)

    @property
    def input_shape(self) -> tuple:
        return self._activation(self.input_spatial, self.in_channels)

    @property
    def output_shape(self) -> tuple:
        return self._activation(self.output_spatial, self.out_channels)

    @property
    def kernel_shape(self) -> tuple:
        if self.channels_first:
            return (self.out_channels, self.in_per_group) + tuple(self.kernel_spatial)
        return tuple(self.kernel_spatial) + (self.in_per_group, self.out_channels)

    @property
    def activation_channel_axis(self) -> int:
        """Channel axis of input/output shapes (what reduce='channel' keeps)."""
        return 1 if self.channels_first else -1

    @property
    def kernel_out_axis(self) -> int:
        """Output-channel axis of the kernel shape."""
        return 0 if self.channels_first else -1

    @property
    def taps(self) -> int:
        out = 1
        for k in self.kernel_spatial:
            out *= k
        return out

    def kernel_args(self) -> list:
        """The flat integer form the compiled kernels read (spatial dims padded to three)."""
        lead = 3 - self.spatial_dims

        def pad3(values, fill):
            return [fill] * lead + [int(v) for v in values]

        return ([int(self.channels_first), self.batch, self.in_channels, self.out_channels,
                 self.groups] + pad3(self.input_spatial, 1) + pad3(self.output_spatial, 1)
                + pad3(self.kernel_spatial, 1) + pad3(self.strides, 1)
                + pad3(self.dilations, 1) + pad3([p[0] for p in self.padding], 0))


def _check_format(data_format) -> str:
    if data_format not in DATA_FORMATS:
        raise ValueError(f"data_format must be 'channels_last' or 'channels_first', "
                         f"got {data_format!r}")
    return data_format


def _per_dim(value, dims: int, name: str, data_format: str) -> tuple:
    """An int, or one int per spatial dimension, or (as TensorFlow) one int or one per
    dimension of the input with 1 for the batch and channel entries; each >= 1."""
    def is_int(v):
        return isinstance(v, Integral) and not isinstance(v, bool)

    if is_int(value):
        values = (int(value),) * dims
    else:
        try:
            values = tuple(value)
        except TypeError:
            raise ValueError(f"{name} must be an int or a sequence of {dims} ints, "
                             f"got {value!r}") from None
        if not all(is_int(v) for v in values) or len(values) not in (1, dims, dims + 2):
            raise ValueError(f"{name} must be an int, {dims} ints (one per spatial dimension) "
                             f"or {dims + 2} ints with 1 for the batch and channel entries, "
                             f"got {value!r}")
        values = tuple(int(v) for v in values)
        if len(values) == 1:
            values = values * dims
        elif len(values) == dims + 2:
            channel = 1 if data_format == "channels_first" else dims + 1
            if values[0] != 1 or values[channel] != 1:
                raise ValueError(f"{name} of the batch and channel axes must be 1, got {value!r} "
                                 f"({data_format})")
            values = tuple(v for i, v in enumerate(values) if i not in (0, channel))
    if any(v < 1 for v in values):
        raise ValueError(f"{name} must be positive, got {value!r}")
    if any(v > MAX_EXTENT for v in values):
        raise ValueError(f"{name} is too large: {value!r} (at most {MAX_EXTENT})")
    return values


def _check_extents(geometry: "ConvGeometry", op: str) -> None:
    """Every element count and position the kernels compute must fit in int64 with room to
    spare: refuses geometries that would overflow, naming the argument."""
    def product(values):
        out = 1
        for v in values:
            out *= v
        return out

    g = geometry
    for name, values in (("batch size", [g.batch]), ("channels", [g.in_channels, g.out_channels]),
                         ("groups", [g.groups]), ("input size", g.input_spatial),
                         ("kernel size", g.kernel_spatial)):
        if any(v >= 2**62 for v in values):
            raise ValueError(f"{op}: {name} {values} is too large for the kernels' int64 indices")
    counts = {"inputs": g.batch * g.in_channels * product(g.input_spatial),
              "output": g.batch * g.out_channels * product(g.output_spatial),
              "kernel": g.in_per_group * g.out_channels * product(g.kernel_spatial)}
    for what, count in counts.items():
        if count >= 2**62:
            raise ValueError(f"{op}: the {what} would have {count} elements, more than the "
                             "kernels can index (2**62)")
    for d in range(g.spatial_dims):
        reach = (g.output_spatial[d] * g.strides[d] + g.kernel_spatial[d] * g.dilations[d] +
                 g.padding[d][0] + g.padding[d][1] + g.input_spatial[d])
        if reach >= 2**62:
            raise ValueError(
                f"{op}: positions along spatial dimension {d} overflow int64 (strides "
                f"{g.strides}, dilations {g.dilations}, padding {g.padding}, input "
                f"{g.input_spatial}): make them smaller")


def _explicit_padding(padding, dims: int) -> tuple:
    """Explicit padding: an int, one int or (before, after) pair per spatial dimension (for 1D
    also a bare (before, after)), or TensorFlow's full list with (0, 0) for batch and channels."""
    if isinstance(padding, Integral) and not isinstance(padding, bool):
        entries = [int(padding)] * dims
    else:
        try:
            entries = list(padding)
        except TypeError:
            raise ValueError(f"padding must be 'VALID', 'SAME', an int or a sequence, "
                             f"got {padding!r}") from None
    if dims == 1 and len(entries) == 2 and all(
            isinstance(e, Integral) and not isinstance(e, bool) for e in entries):
        entries = [tuple(entries)]  # a 1D convolution's (before, after)
    if len(entries) == dims + 2:  # TensorFlow's explicit form includes batch and channels
        outer = [entries[0], entries[-1]]
        if any(_pair(e, padding) != (0, 0) for e in outer):
            raise ValueError(f"padding of the batch and channel axes must be 0, got {padding!r}")
        entries = entries[1:-1]
    if len(entries) != dims:
        raise ValueError(f"padding needs {dims} entries (one per spatial dimension), "
                         f"got {padding!r}")
    pairs = tuple(_pair(e, padding) for e in entries)
    if any(v < 0 for pair in pairs for v in pair):
        raise ValueError(f"padding must not be negative, got {padding!r}")
    return pairs


def _pair(entry, padding) -> tuple:
    if isinstance(entry, Integral) and not isinstance(entry, bool):
        return int(entry), int(entry)
    try:
        before, after = entry
    except (TypeError, ValueError):
        raise ValueError(f"padding entries must be ints or (before, after) pairs, "
                         f"got {padding!r}") from None
    if not all(isinstance(v, Integral) and not isinstance(v, bool) for v in (before, after)):
        raise ValueError(f"padding entries must be ints or (before, after) pairs, "
                         f"got {padding!r}")
    return int(before), int(after)


def _resolve_padding(padding, in_sp, k_sp, strides, dilations) -> tuple:
    """(before, after) per dimension; SAME follows TensorFlow (extra padding after)."""
    dims = len(in_sp)
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return ((0, 0),) * dims
        if mode == "SAME":
            pairs = []
            for i, k, s, d in zip(in_sp, k_sp, strides, dilations):
                out = -(-i // s)
                total = max((out - 1) * s + (k - 1) * d + 1 - i, 0)
                pairs.append((total // 2, total - total // 2))
            return tuple(pairs)
        raise ValueError(f"padding must be 'VALID', 'SAME' or explicit sizes, got {padding!r}")
    return _explicit_padding(padding, dims)


def _split_activation(shape, data_format):
    if data_format == "channels_first":
        return shape[0], shape[1], tuple(shape[2:])
    return shape[0], shape[-1], tuple(shape[1:-1])


def _split_kernel(shape, data_format):
    """(out_channels, in_per_group, spatial) of a kernel shape."""
    if data_format == "channels_first":
        return shape[0], shape[1], tuple(shape[2:])
    return shape[-1], shape[-2], tuple(shape[:-2])


def forward_geometry(input_shape, kernel_shape, strides=1, padding="VALID", dilations=1,
                     groups=1, data_format="channels_last", *, op="conv_classify",
                     input_name="inputs") -> ConvGeometry:
    """Validates a convolution's arguments and resolves its geometry and output shape."""
    _check_format(data_format)
    input_shape = tuple(int(s) for s in input_shape)
    kernel_shape = tuple(int(s) for s in kernel_shape)
    if len(input_shape) not in (3, 4, 5):
        raise ValueError(f"{op}: {input_name} must have rank 3, 4 or 5 (1D, 2D or 3D "
                         f"convolution), got shape {input_shape}")
    if len(kernel_shape) != len(input_shape):
        raise ValueError(f"{op}: {input_name} of shape {input_shape} and kernel of shape "
                         f"{kernel_shape} have different ranks")
    dims = len(input_shape) - 2
    if isinstance(groups, bool) or not isinstance(groups, Integral) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    groups = int(groups)
    batch, in_channels, in_sp = _split_activation(input_shape, data_format)
    out_channels, in_per_group, k_sp = _split_kernel(kernel_shape, data_format)
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"{op}: groups={groups} must divide the input channels ({in_channels}) "
                         f"and the output channels ({out_channels})")
    if in_per_group * groups != in_channels:
        raise ValueError(
            f"{op}: kernel of shape {kernel_shape} expects {in_per_group} input channels per "
            f"group, but {input_name} of shape {input_shape} has {in_channels} channels in "
            f"{groups} group(s) ({data_format})")
    if any(k < 1 for k in k_sp):
        raise ValueError(f"{op}: kernel spatial size must be positive, got shape {kernel_shape}")
    strides = _per_dim(strides, dims, "strides", data_format)
    dilations = _per_dim(dilations, dims, "dilations", data_format)
    pads = _resolve_padding(padding, in_sp, k_sp, strides, dilations)
    if any(v > MAX_EXTENT for pair in pads for v in pair):
        raise ValueError(f"{op}: padding is too large: {padding!r} (at most {MAX_EXTENT})")
    out_sp = []
    for i, k, s, d, (before, after) in zip(in_sp, k_sp, strides, dilations, pads):
        span = i + before + after - ((k - 1) * d + 1)
        out_sp.append(span // s + 1 if span >= 0 else 0)
    if any(o < 1 for o in out_sp) and all(i > 0 for i in in_sp):
        raise ValueError(
            f"{op}: the output would be empty: {input_name} spatial size {in_sp} with kernel "
            f"{k_sp}, dilations {dilations}, strides {strides} and padding {pads}")
    geometry = ConvGeometry(data_format, batch, in_channels, out_channels, groups, in_sp, k_sp,
                            tuple(out_sp), strides, dilations, pads)
    _check_extents(geometry, op)
    return geometry


def _check_shape_argument(value, op, name):
    """A shape passed as an argument (kernel_shape, input_shape): non-negative ints."""
    try:
        shape = tuple(value)
    except TypeError:
        raise ValueError(f"{op}: {name} must be a sequence of ints, got {value!r}") from None
    if not all(isinstance(s, Integral) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise ValueError(f"{op}: {name} must be non-negative ints, got {value!r}")
    return tuple(int(s) for s in shape)


def filter_grad_geometry(x_shape, d_out_shape, kernel_shape, strides, padding, dilations,
                         groups, data_format) -> ConvGeometry:
    """Geometry of the kernel gradient; d_out must have the forward output's shape."""
    op = "conv_backprop_filter_classify"
    kernel_shape = _check_shape_argument(kernel_shape, op, "kernel_shape")
    geometry = forward_geometry(x_shape, kernel_shape, strides, padding, dilations, groups,
                                data_format, op=op, input_name="x")
    _check_d_out(geometry, d_out_shape, op, f"x of shape {tuple(x_shape)} and kernel_shape "
                 f"{kernel_shape}")
    return geometry


def input_grad_geometry(d_out_shape, kernel_shape, input_shape, strides, padding, dilations,
                        groups, data_format) -> ConvGeometry:
    """Geometry of the input gradient; d_out must have the forward output's shape."""
    op = "conv_backprop_input_classify"
    input_shape = _check_shape_argument(input_shape, op, "input_shape")
    geometry = forward_geometry(input_shape, kernel_shape, strides, padding, dilations, groups,
                                data_format, op=op, input_name="input_shape")
    _check_d_out(geometry, d_out_shape, op, f"input_shape {input_shape} and kernel of shape "
                 f"{tuple(kernel_shape)}")
    return geometry


def _check_d_out(geometry, d_out_shape, op, source):
    d_out_shape = tuple(int(s) for s in d_out_shape)
    if d_out_shape != geometry.output_shape:
        raise ValueError(f"{op}: d_out has shape {d_out_shape} but {source} give a convolution "
                         f"output of shape {geometry.output_shape} ({geometry.data_format})")
