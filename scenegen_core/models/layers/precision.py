"""Mixed-precision helpers shared by the flow model and the decoder.

The released SceneGen/TRELLIS models are "fp16": Linear and Conv weights inside the transformer /
conv torso are stored in half precision, while norms, embeddings and the input/output layers stay
float32. `convert_to_half` reproduces exactly that split.
"""

from __future__ import annotations

import torch
import torch.nn as nn

HALF_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}

# Module types whose parameters the official `convert_module_to_f16` casts.
_HALF_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def resolve_half_dtype(name: str) -> torch.dtype:
    """'float16' | 'bfloat16' -> torch dtype; ValueError otherwise."""
    try:
        return HALF_DTYPES[name]
    except KeyError:
        raise ValueError(f"half_dtype must be one of {sorted(HALF_DTYPES)}, got {name!r}") from None


def torso_dtype(use_fp16: bool, half_dtype: str) -> torch.dtype:
    """Torso dtype of an official-style model: the half dtype when use_fp16, else float32."""
    return resolve_half_dtype(half_dtype) if use_fp16 else torch.float32


def convert_to_half(module: nn.Module, dtype: torch.dtype) -> None:
    """Cast the parameters of every Linear/Conv inside `module` to `dtype`, in place (norms untouched)."""
    for sub in module.modules():
        if isinstance(sub, _HALF_MODULES):
            for param in sub.parameters(recurse=False):
                param.data = param.data.to(dtype)
