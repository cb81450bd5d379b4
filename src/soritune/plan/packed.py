"""Quantised bases on fake tensors: bitsandbytes' packed weights, counted byte for byte.

bitsandbytes kernels cannot run on fake tensors (LLM.int8's outlier split has a data-dependent
shape), so the plan replaces every `nn.Linear` that bitsandbytes would quantise (all but
`SKIP_MODULES`, as `models.quantize` does) by a `PackedLinear` that holds exactly the tensors
bitsandbytes allocates for that layer and, in forward and backward, creates the temporaries its
CUDA kernels create:

- 8-bit (LLM.int8, `Linear8bitLt`): int8 weight [out, in] + fp32 row scales SCB [out]. Forward
  (MatMul8bitLt): the input cast to fp16, its int8 copy and row scales, an int32 accumulator,
  the output; the input is kept for backward. Backward: the weight dequantised to the input's dtype
  [out, in], the gradient cast to it.
- 4-bit (NF4, double quantisation, `Linear4bit`): uint8 weight [(out*in+1)//2, 1]; per 64-weight
  block an 8-bit absmax; per 256 blocks an fp32 absmax; a 16-entry fp32 NF4 code, a 256-entry fp32
  absmax code and an fp32 offset per layer. Forward and backward each dequantise the weight to the
  compute dtype [out, in] (a temporary) and multiply; nothing is kept for backward.

The byte counts are checked against what bitsandbytes allocates on CPU (tests/plan).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from soritune.models.quantize import SKIP_MODULES

NF4_BLOCK = 64  # weights per absmax (bitsandbytes' default blocksize for Linear4bit)
NESTED_BLOCK = 256  # absmax values per second-level scale (double quantisation)


def packed_bytes(out_features: int, in_features: int, bits: int) -> int:
    """Bytes bitsandbytes allocates for one quantised [out, in] weight (bias not included)."""
    n = out_features * in_features
    if bits == 8:
        return n + 4 * out_features
    blocks = math.ceil(n / NF4_BLOCK)
    return (n + 1) // 2 + blocks + 4 * math.ceil(blocks / NESTED_BLOCK) + 4 * 16 + 4 * 256 + 4


class _PackedMatmul(torch.autograd.Function):
    """y = x W^T + b with W dequantised on the fly (the memory behaviour of bitsandbytes' matmuls)."""

    @staticmethod
    def forward(ctx, x, layer):
        ctx.layer, ctx.dtype = layer, x.dtype
        w = layer.dequantized(x.dtype, x.device)
        if layer.bits == 8:
            rows = x.reshape(-1, x.shape[-1])
            a16 = rows.to(torch.float16)
            ca = torch.empty_like(a16, dtype=torch.int8)
            sca = torch.empty(rows.shape[0], dtype=torch.float32, device=x.device)
            acc = torch.empty((rows.shape[0], layer.out_features), dtype=torch.int32, device=x.device)
            del a16, ca, sca, acc
            ctx.save_for_backward(x)
        bias = layer.bias.to(x.dtype) if layer.bias is not None else None
        return F.linear(x, w, bias)

    @staticmethod
    def backward(ctx, grad_out):
        layer = ctx.layer
        if not ctx.needs_input_grad[0]:
            return None, None
        w = layer.dequantized(ctx.dtype, grad_out.device)
        return grad_out.to(ctx.dtype) @ w, None


class PackedLinear(nn.Linear):
    """A frozen bitsandbytes-quantised linear layer as plain tensors (an nn.Linear, so PEFT wraps it)."""

    def __init__(self, linear: nn.Linear, bits: int, compute_dtype=None):
        nn.Module.__init__(self)
        self.in_features, self.out_features, self.bits = linear.in_features, linear.out_features, bits
        self.compute_dtype = compute_dtype
        dev, n = linear.weight.device, linear.in_features * linear.out_features
        if bits == 8:
            self.weight = nn.Parameter(torch.empty((self.out_features, self.in_features), dtype=torch.int8,
                                                   device=dev), requires_grad=False)
            self.register_buffer("scb", torch.empty(self.out_features, device=dev))
        elif bits == 4:
            blocks = math.ceil(n / NF4_BLOCK)
            self.weight = nn.Parameter(torch.empty(((n + 1) // 2, 1), dtype=torch.uint8, device=dev),
                                       requires_grad=False)
            self.register_buffer("absmax", torch.empty(blocks, dtype=torch.uint8, device=dev))
            self.register_buffer("absmax2", torch.empty(math.ceil(blocks / NESTED_BLOCK), device=dev))
            self.register_buffer("code", torch.empty(16, device=dev))
            self.register_buffer("code2", torch.empty(256, device=dev))
            self.register_buffer("offset", torch.empty((), device=dev))
        else:
            raise ValueError(f"bits must be 8 or 4, got {bits}")
        self.bias = linear.bias
        if self.bias is not None:
            self.bias.requires_grad_(False)

    def dequantized(self, dtype, device) -> torch.Tensor:
        return torch.empty((self.out_features, self.in_features), dtype=dtype, device=device)

    def forward(self, x):
        in_dtype = x.dtype
        if self.bits == 4 and self.compute_dtype is not None:
            x = x.to(self.compute_dtype)
        return _PackedMatmul.apply(x, self).to(in_dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bits={self.bits}"


def pack_linears(model: nn.Module, bits: int, compute_dtype=None) -> int:
    """Replace the linear layers bitsandbytes would quantise by PackedLinear; returns how many."""
    n = 0
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if type(child) is nn.Linear and not any(s in full.split(".") for s in SKIP_MODULES):
                setattr(module, child_name, PackedLinear(child, bits, compute_dtype))
                n += 1
    return n
