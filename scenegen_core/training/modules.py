"""Trainable wrappers that put several networks behind one forward call (what DDP needs: every
parameter used in a step must be reached through the wrapped module's forward)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from scenegen_core.conditioning import ConditioningImages, encode_condition_tokens
from scenegen_core.models.dinov2 import DinoEncoder
from scenegen_core.models.ss_decoder import SSDecoder
from scenegen_core.models.ss_encoder import LatentPosterior, SSEncoder
from scenegen_core.models.ss_flow import FlowOutput, SSFlowModel
from scenegen_core.models.vggt.aggregator import VGGTAggregator


class SSVae(nn.Module):
    """Encoder + decoder: forward(occupancy [B, 1, R, R, R], noise [B, C, G, G, G]) ->
    (posterior, logits [B, 1, R, R, R]) with z = mean + std * noise."""

    def __init__(self, encoder: SSEncoder, decoder: SSDecoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, occupancy: torch.Tensor, noise: torch.Tensor) -> tuple[LatentPosterior, torch.Tensor]:
        posterior = self.encoder(occupancy)
        return posterior, self.decoder(posterior.sample(noise))


@dataclass(frozen=True)
class ConditionInputs:
    """Encoder inputs of B scenes (V = 1) and the classifier-free dropout: drop [B*N] bool, True
    where an object's whole context is replaced by zeros (the official neg_cond)."""

    images: ConditioningImages
    drop: torch.Tensor


class ConditionedFlow(nn.Module):
    """DINOv2 + VGGT conditioning and the SS flow model trained together (the scratch recipe; the
    finetune recipe freezes the encoders by name). forward(x_t [B*N, ...], t [B*N] (x1000),
    inputs: ConditionInputs, num_scenes=B) -> FlowOutput."""

    def __init__(self, dino: DinoEncoder, vggt: VGGTAggregator, flow: SSFlowModel):
        super().__init__()
        self.dino, self.vggt, self.flow = dino, vggt, flow

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, inputs: ConditionInputs, num_scenes: int = 1) -> FlowOutput:
        tokens = encode_condition_tokens(self.dino, self.vggt, inputs.images)  # [B, 1, N, L, C]
        if tokens.shape[1] != 1:
            raise ValueError(f"training uses one view per scene, got {tokens.shape[1]}")
        cond = tokens[:, 0].flatten(0, 1)
        drop = inputs.drop.to(cond.device).view(-1, 1, 1)
        cond = torch.where(drop, torch.zeros_like(cond), cond)
        return self.flow(x_t, t, cond, num_scenes=num_scenes)
