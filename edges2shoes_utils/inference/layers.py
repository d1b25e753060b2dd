"""The fast path's convolutions, with weights prepared once for oneDNN (`PackedConv`).

The test-time layers every runner shares (seeded dropout, per-image batch norm) are in
`nets/runner.py`; `fastpath.build_runner` assembles both into a runner. A `PackedConv` computes what
the convolution it replaces computes, in its dtype.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

# --------------------------------------------------------------------------------------------------
# Convolutions with weights prepared once.

PACKED_SHAPES = 4  # input shapes a PackedConv keeps packed weights for (batch sizes, image sizes)


class PackedConv(nn.Module):
    """A Conv2d or ConvTranspose2d frozen for inference: a fixed dtype, and on a CPU the weight
    packed into oneDNN's blocked layout once per input shape, so no later call with that shape
    re-orders it."""

    def __init__(
        self,
        conv: nn.Conv2d | nn.ConvTranspose2d,
        dtype: torch.dtype,
        device: torch.device,
        pack: bool,
    ) -> None:
        super().__init__()
        self.transposed = isinstance(conv, nn.ConvTranspose2d)
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        weight = conv.weight.detach().float()
        bias = conv.bias.detach().float() if conv.bias is not None else None
        self.stride, self.padding = list(conv.stride), list(conv.padding)
        self.dilation, self.groups = list(conv.dilation), conv.groups
        self.output_padding = list(conv.output_padding) if self.transposed else []
        self.dtype = dtype
        self.packed = pack and device.type == "cpu"
        weight = weight.to(device=device, dtype=dtype)
        self.register_buffer("weight", weight)
        self.register_buffer("bias", None if bias is None else bias.to(device=device, dtype=dtype))
        # oneDNN weights packed for the input shapes seen so far (see `_packed_weight`).
        self._packed: OrderedDict[tuple[int, ...], torch.Tensor] = OrderedDict()

    def extra_repr(self) -> str:
        kind = "transposed " if self.transposed else ""
        notes = [f"{kind}{self.in_channels}->{self.out_channels}", str(self.dtype).replace("torch.", "")]
        notes += ["oneDNN pre-packed"] if self.packed else []
        return ", ".join(notes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.packed:
            mk = torch.ops.mkldnn
            x, weight = x.to(self.dtype), self._packed_weight(x)
            if self.transposed:
                return mk._convolution_transpose_pointwise(
                    x, weight, self.bias, self.padding, self.output_padding, self.stride,
                    self.dilation, self.groups, "none", [], None)
            return mk._convolution_pointwise(
                x, weight, self.bias, self.padding, self.stride, self.dilation, self.groups, "none", [], None)
        if self.transposed:
            return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                      self.output_padding, self.groups, self.dilation)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

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
        if self.transposed:
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
        return dense.transpose(0, 1).contiguous() if self.transposed else dense
