"""Opt-in int8 loop: dynamic int8 quantisation of the looped block pair's Linear layers (CPU only).

The block pair runs 2K times per request and its four Linear layers per block are most of its
time, so int8 weights with per-call int8 activations (fbgemm / oneDNN VNNI kernels) cut the
loop's matrix products about 3x on AVX512-VNNI / AVX2 CPUs. The quantised copy lives beside the
model (not a submodule), so the checkpoint layout and the float32 weights stay untouched.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from .loop import LoopedBlockPair

QUANTIZED_LAYERS = ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")


def weights_key(pair: LoopedBlockPair) -> tuple:
    """Identity and version of the pair's weights: a changed key means the int8 copy is stale."""
    return tuple((p.data_ptr(), p._version) for p in pair.parameters())


def quantize_loop(pair: LoopedBlockPair) -> LoopedBlockPair:
    """A copy of the block pair whose qkv/proj/fc1/fc2 Linear layers compute in dynamic int8."""
    names = {f"{block}.{layer}" for block in ("frame_attn", "global_attn") for layer in QUANTIZED_LAYERS}
    float_copy = copy.deepcopy(pair).float().eval()
    with warnings.catch_warnings():  # torch.ao's eager quantisation API warns about its future move
        warnings.simplefilter("ignore")
        qconfig = torch.ao.quantization.per_channel_dynamic_qconfig  # one weight scale per output channel
        quantized = torch.ao.quantization.quantize_dynamic(
            float_copy, dict.fromkeys(names, qconfig), torch.qint8, inplace=True
        )
    for name, module in quantized.named_modules():
        if name in names and isinstance(module, nn.Linear):
            raise RuntimeError(f"{name} was not quantised")
    return quantized
