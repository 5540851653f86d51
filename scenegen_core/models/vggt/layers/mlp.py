"""Two-layer perceptron used by every VGGT / DINOv2 block and by the camera head."""

from __future__ import annotations

import torch
import torch.nn as nn


class Mlp(nn.Module):
    """Linear(in, hidden) -> exact-erf GELU -> Linear(hidden, out).

    Input [..., in_features] -> output [..., out_features], same dtype.
    Parameter names: ``fc1.*``, ``fc2.*`` (official layout).
    """

    def __init__(self, in_features: int, hidden_features: int, out_features: int | None = None, bias: bool = True):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, out_features or in_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))
