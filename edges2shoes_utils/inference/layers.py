"""The fast path's layers: batch norm folded into the convolution before it, and convolutions with
weights prepared once for oneDNN (`PackedConv`), with activations fused into them.

The test-time layers every runner shares (seeded dropout, per-image batch norm) are in
`nets/runner.py`; `fastpath.build_runner` assembles both into a runner, and each layer here computes
exactly what the layers it replaces compute in eval mode.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from ..util.errors import ConfigError

def fold_batch_norm(conv: nn.Conv2d | nn.ConvTranspose2d, norm: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights and bias of one convolution equal to `norm(conv(x))` with running statistics.

    BN scales each *output* channel: dim 0 of a Conv2d weight (out, in, kh, kw) but dim 1 of a
    ConvTranspose2d weight (in, out / groups, kh, kw). Computed in fp64 so the fold adds no error.
    """
    if conv.groups != 1 and isinstance(conv, nn.ConvTranspose2d):
        raise ConfigError("folding batch norm into a grouped transposed convolution is not supported")
    weight = conv.weight.detach().double()
    out_channels = weight.shape[1] if isinstance(conv, nn.ConvTranspose2d) else weight.shape[0]
    if conv.bias is not None:
        bias = conv.bias.detach().double()
    else:
        bias = torch.zeros(out_channels, dtype=torch.float64, device=weight.device)
    gamma = norm.weight.detach().double() if norm.weight is not None else torch.ones_like(bias)
    beta = norm.bias.detach().double() if norm.bias is not None else torch.zeros_like(bias)
    scale = gamma / torch.sqrt(norm.running_var.detach().double() + norm.eps)
    shape = (1, -1, 1, 1) if isinstance(conv, nn.ConvTranspose2d) else (-1, 1, 1, 1)
    folded_weight = weight * scale.view(shape)
    folded_bias = beta + (bias - norm.running_mean.detach().double()) * scale
    return folded_weight.float(), folded_bias.float()


# --------------------------------------------------------------------------------------------------
# Convolutions with weights prepared once.

PACKED_SHAPES = 4  # input shapes a PackedConv keeps packed weights for (batch sizes, image sizes)


class PackedConv(nn.Module):
    """A Conv2d or ConvTranspose2d frozen for inference: optional folded norm, a fixed dtype, and on a
    CPU the weight packed into oneDNN's blocked layout once per input shape, so no later call with
    that shape re-orders it.

    A transposed convolution can instead run as `algorithm="gemm"`: one matrix product and a
    `fold` (col2im). oneDNN's direct kernels are slow on some CPUs for two shapes this generator
    has: maps of a few pixels with 1024 input channels, and the 3-channel image head (its channels
    are padded to a block of 16).
    The pix2pix shape (kernel 4, stride 2, padding 1) can also run as `algorithm="subpixel"`: an
    ordinary 2x2 convolution with four times the output channels, one set per output pixel phase,
    then a depth-to-space copy. It does the same arithmetic, and oneDNN's ordinary convolutions are
    often faster than its transposed ones for the middle layers. `fastpath.build_runner` times the
    candidates and keeps the fastest one per layer.
    """

    def __init__(
        self,
        conv: nn.Conv2d | nn.ConvTranspose2d,
        norm: nn.BatchNorm2d | None,
        dtype: torch.dtype,
        device: torch.device,
        pack: bool,
        algorithm: str = "direct",
    ) -> None:
        super().__init__()
        self.transposed = isinstance(conv, nn.ConvTranspose2d)
        self.folded = norm is not None
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        if norm is not None:
            weight, bias = fold_batch_norm(conv, norm)
        else:
            weight = conv.weight.detach().float()
            bias = conv.bias.detach().float() if conv.bias is not None else None
        self.stride, self.padding = list(conv.stride), list(conv.padding)
        self.dilation, self.groups = list(conv.dilation), conv.groups
        self.output_padding = list(conv.output_padding) if self.transposed else []
        self.kernel_size = list(conv.kernel_size)
        self.weight_shape: tuple[int, ...] = ()  # of the weight as run (after the sub-pixel rearrangement)
        self.post_op, self.post_scalars = "none", []  # an activation fused into the convolution
        self.dtype = dtype
        self.algorithm = algorithm if algorithm in transposed_algorithms(conv) else "direct"
        self.packed = pack and device.type == "cpu" and self.algorithm != "gemm"
        if self.algorithm == "subpixel":
            weight = _subpixel_weight(weight)
            bias = None if bias is None else bias.repeat(4)  # one copy per phase
        weight = weight.to(device=device, dtype=dtype)
        self.weight_shape = tuple(weight.shape)
        if self.algorithm == "gemm":
            # (in, out, kh, kw) -> (out * kh * kw, in): one matrix product gives every kernel tap's
            # contribution of every input pixel; `F.fold` then adds the overlapping taps into place.
            self.register_buffer("weight", weight.reshape(self.in_channels, -1).t().contiguous())
            self.register_buffer("bias", None if bias is None else bias.to(device=device, dtype=dtype))
        else:
            self.register_buffer("weight", weight)
            self.register_buffer("bias", None if bias is None else bias.to(device=device, dtype=dtype))
        # oneDNN weights packed for the input shapes seen so far (see `_packed_weight`).
        self._packed: OrderedDict[tuple[int, ...], torch.Tensor] = OrderedDict()

    def extra_repr(self) -> str:
        kind = "transposed " if self.transposed else ""
        notes = [f"{kind}{self.in_channels}->{self.out_channels}", str(self.dtype).replace("torch.", "")]
        notes += ["batch norm folded"] if self.folded else []
        notes += [f"{self.post_op} fused"] if self.post_op != "none" else []
        notes += ["oneDNN pre-packed"] if self.packed else []
        notes += ["matrix product + fold"] if self.algorithm == "gemm" else []
        notes += ["2x2 convolution + depth-to-space"] if self.algorithm == "subpixel" else []
        return ", ".join(notes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != self.dtype and (self.packed or self.algorithm == "gemm"):
            x = x.to(self.dtype)
        if self.algorithm == "gemm":
            return self._activate(self._gemm_transposed(x))
        if self.algorithm == "subpixel":
            return _depth_to_space(self._subpixel_phases(x))
        if self.packed:
            mk = torch.ops.mkldnn
            weight = self._packed_weight(x)
            if self.transposed:
                return mk._convolution_transpose_pointwise(
                    x, weight, self.bias, self.padding, self.output_padding, self.stride,
                    self.dilation, self.groups, self.post_op, self.post_scalars, None)
            return mk._convolution_pointwise(
                x, weight, self.bias, self.padding, self.stride, self.dilation, self.groups,
                self.post_op, self.post_scalars, None)
        if self.transposed:
            y = F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                   self.output_padding, self.groups, self.dilation)
        else:
            y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        return self._activate(y)

    def _packed_weight(self, x: torch.Tensor) -> torch.Tensor:
        """The weight in the blocked layout oneDNN's primitive picks for `x`'s shape, packed on the
        first call with that shape.

        oneDNN chooses the weight layout per input shape and CPU tier. A weight packed without the
        input's shape gets a guessed layout, and where the guess differs (AVX2's kernels for the
        deep 512-channel layers) every call re-orders the weight again, which costs more than the
        convolution itself. A few recent shapes are kept; the least recently used goes first. Once
        a packed copy exists the plain weight is dropped (it is read back from a packed copy when a
        new shape needs one), so a runner holds its weights once.
        """
        key = tuple(x.shape)
        packed = self._packed.get(key)
        if packed is not None:
            self._packed.move_to_end(key)
            return packed
        mk = torch.ops.mkldnn
        shape, weight = list(key), self._plain_weight()
        if self.algorithm == "subpixel":
            packed = mk._reorder_convolution_weight(weight, [1, 1], [1, 1], [1, 1], 1, shape)
        elif self.transposed:
            packed = mk._reorder_convolution_transpose_weight(
                weight, self.padding, self.output_padding, self.stride, self.dilation, self.groups, shape)
        else:
            packed = mk._reorder_convolution_weight(
                weight, self.padding, self.stride, self.dilation, self.groups, shape)
        self._packed[key] = packed
        while len(self._packed) > PACKED_SHAPES:
            self._packed.popitem(last=False)
        if self.groups == 1:
            self.weight = None
        return packed

    def _plain_weight(self) -> torch.Tensor:
        """The weight in PyTorch's layout: the buffer, or read back from a packed copy (oneDNN keeps
        a transposed convolution's weight as (out, in, kh, kw), PyTorch as (in, out, kh, kw))."""
        if self.weight is not None:
            return self.weight
        dense = next(iter(self._packed.values())).to_dense()
        return dense.transpose(0, 1).contiguous() if self.transposed and self.algorithm != "subpixel" else dense

    def _gemm_transposed(self, x: torch.Tensor) -> torch.Tensor:
        """conv_transpose2d as (out * kh * kw, in) @ (in, h * w) per image, then col2im."""
        n, c, h, w = x.shape
        size = [
            (length - 1) * s - 2 * p + d * (k - 1) + op + 1
            for length, s, p, d, k, op in zip(
                (h, w), self.stride, self.padding, self.dilation, self.kernel_size, self.output_padding)
        ]
        if x.is_contiguous(memory_format=torch.channels_last):  # (n, h * w, in) is a free view of it
            pixels = x.permute(0, 2, 3, 1).reshape(n, h * w, c)
            columns = torch.matmul(pixels, self.weight.t()).transpose(1, 2)
        else:
            columns = torch.matmul(self.weight, x.contiguous().view(n, c, h * w))
        y = F.fold(columns, size, self.kernel_size, self.dilation, self.padding, self.stride)
        if self.bias is not None:
            y += self.bias.view(1, -1, 1, 1)
        return y

    def _subpixel_phases(self, x: torch.Tensor) -> torch.Tensor:
        """The four output phases, (N, 4 * out, H + 1, W + 1), activation applied (see `_subpixel_weight`)."""
        if self.packed:
            return torch.ops.mkldnn._convolution_pointwise(
                x, self._packed_weight(x), self.bias, [1, 1], [1, 1], [1, 1], 1, self.post_op,
                self.post_scalars, None)
        return self._activate(F.conv2d(x, self.weight, self.bias, 1, 1))

    def _activate(self, y: torch.Tensor) -> torch.Tensor:
        if self.post_op == "relu":
            return F.relu(y, inplace=True)
        if self.post_op == "leaky_relu":
            return F.leaky_relu(y, self.post_scalars[0], inplace=True)
        return torch.tanh_(y) if self.post_op == "tanh" else y


def transposed_algorithms(conv: nn.Module) -> tuple[str, ...]:
    """The algorithms `PackedConv` can run `conv` with: "direct" always; for a transposed
    convolution also "gemm", and "subpixel" for pix2pix's kernel 4, stride 2, padding 1."""
    if not isinstance(conv, nn.ConvTranspose2d) or conv.groups != 1:
        return ("direct",)
    pix2pix = (tuple(conv.kernel_size), tuple(conv.stride), tuple(conv.padding), tuple(conv.output_padding),
               tuple(conv.dilation)) == ((4, 4), (2, 2), (1, 1), (0, 0), (1, 1))
    return ("direct", "gemm", "subpixel") if pix2pix else ("direct", "gemm")


def _subpixel_weight(weight: torch.Tensor) -> torch.Tensor:
    """A 2x2 convolution weight (4 * out, in, 2, 2) equal to a 4x4, stride 2, padding 1 transposed
    convolution's (in, out, 4, 4), one block of `out` channels per output phase (py, px).

    With the input padded by 1, output pixel (2m + py, 2l + px) reads input rows m - 1 + py + a
    (a = 0, 1) through kernel row 3 - py - 2a, and likewise for columns; so 2x2 window (m + py,
    l + px) of the padded input, with the flipped kernel's taps (2a + py, 2b + px), gives it.
    """
    cin, cout = weight.shape[:2]
    taps = weight.flip(2, 3).reshape(cin, cout, 2, 2, 2, 2)  # (in, out, a, py, b, px)
    return taps.permute(3, 5, 1, 0, 2, 4).reshape(4 * cout, cin, 2, 2).contiguous()


def _depth_to_space(phases: torch.Tensor) -> torch.Tensor:
    """(N, 4 * C, H + 1, W + 1) phases -> (N, C, 2H, 2W) channels_last, pixel (2m + py, 2l + px)
    taken from phase (py, px) at (m + py, l + px): one strided copy."""
    n, c4, h1, w1 = phases.shape
    c, h, w = c4 // 4, h1 - 1, w1 - 1
    nhwc = phases.permute(0, 2, 3, 1).contiguous()  # free when the phases are channels_last
    sn, row, col = nhwc.stride(0), nhwc.stride(1), nhwc.stride(2)
    # (n, m, py, l, px, c) -> element (n, m + py, l + px, (2 py + px) c + c')
    view = nhwc.as_strided((n, h, 2, w, 2, c), (sn, row, row + 2 * c, col, col + c, 1))
    return view.reshape(n, 2 * h, 2 * w, c).permute(0, 3, 1, 2)


def _post_op(layer: nn.Module) -> tuple[str, list] | None:
    """The oneDNN post-op name and scalars equal to an activation layer, if it has one."""
    if isinstance(layer, nn.LeakyReLU):
        return "leaky_relu", [float(layer.negative_slope)]
    if isinstance(layer, nn.ReLU):
        return "relu", []
    if isinstance(layer, nn.Tanh):
        return "tanh", []
    return None


def fuse_activations(encoder: nn.ModuleList, decoder: nn.ModuleList) -> None:
    """Move activations into the convolution that feeds them (fewer passes over memory).

    Within a block, an activation right after a convolution (the TF layout's conv -> norm -> act
    once the norm is folded, and the tanh head) fuses directly. Across blocks, the official layout
    starts each block with an in-place activation of the previous block's output; in place means
    the skip connection holds the activated tensor too, so applying it at the end of the previous
    block instead is the same computation. Only in-place activations move across blocks.
    """

    def fusable_conv(layer: nn.Module) -> bool:
        return isinstance(layer, PackedConv) and layer.post_op == "none"

    for block in [*encoder, *decoder]:
        names = list(block._modules)
        for first, second in zip(names, names[1:]):
            conv, act = getattr(block, first, None), getattr(block, second)
            op = _post_op(act)
            if conv is not None and fusable_conv(conv) and op is not None:
                conv.post_op, conv.post_scalars = op
                delattr(block, second)
    consumers = [*encoder[1:], decoder[-1]]  # the blocks that read encoder[i]'s output first
    for producer, consumer in zip(encoder, consumers):
        last = list(producer.children())[-1]
        name, act = next(iter(consumer.named_children()))
        op = _post_op(act)
        if fusable_conv(last) and op is not None and getattr(act, "inplace", False):
            last.post_op, last.post_scalars = op
            delattr(consumer, name)
