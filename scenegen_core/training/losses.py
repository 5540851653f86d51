"""SceneGen's training objective (official ``FlowMatchingTrainer.training_losses``, VGGT variant) and
the sparse-structure VAE loss, as pure functions of their random draws (t, noise), so tests can pin them.

Flow matching (TRELLIS / SceneGen, rectified flow with sigma_min):

1. x_t = (1 - t) x_0 + (sigma_min + (1 - sigma_min) t) eps,   t in [0, 1] per object
2. target velocity v = (1 - sigma_min) eps - x_0; ``mse`` = mean squared error of the model's v
   (the model receives 1000 t).
3. Position loss on the non-query objects (rows 1..N-1 of a scene), each component compared as
   smooth_l1(pred / 0.02, gt / 0.02) * 0.02; translations are first divided by the scene scale
   (per axis: max over objects of t + s/2 minus min of t - s/2, floored at 1e-2);
   ``pos_loss`` = 7 trans + 5 rot + 3 scale (+ the collision term, below).
4. Collision term: smooth_l1(ratio / 0.05, 0) * 0.05 * weight.
   * ``official``: ratio from integer voxel counts under no_grad, with the GROUND-TRUTH poses and
     the decoder occupancy of the predicted x_0 (so it shifts the loss value and adds no gradient;
     see shared/reference/README "train_loss_tiny").
   * ``differentiable`` (ours): soft occupancies sigmoid(decoder(x_0_pred)) of every pair of
     objects, placed with the PREDICTED poses; ratio = sum over ordered pairs of the expected
     overlap volume / the total expected volume. Gradients reach the poses and the latents.
5. pos_weight = clamp(EMA_0.99(mse / pos_loss), 0.2, 1) (the first update takes the ratio itself);
   loss = mse + pos_weight * pos_loss (pos_weight is a constant for the gradient).

Scenes batched together (``num_scenes`` > 1, equal object counts) are scored per scene and
averaged; with one scene per step this is exactly the official objective, which is what
``test_training_parity`` checks against the golden ``train_loss_tiny`` data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from scenegen_core.assembly import preview_points

COLLISION_MODES = ("none", "official", "differentiable")


@dataclass(frozen=True)
class FlowLossConfig:
    """Hyper-parameters of the SceneGen flow objective (defaults: ss_scenegen_flow_img_train.json).

    t_mean / t_std: logit-normal t ~ sigmoid(N(mean, std)); collision: one of COLLISION_MODES;
    collision_resolution: voxel grid of the official count; collision_points: grid edge at which
    the differentiable term samples each object's soft occupancy.
    """

    sigma_min: float = 1e-5
    t_mean: float = 1.0
    t_std: float = 1.0
    smooth_scale: float = 0.02
    collision_smooth_scale: float = 0.05
    trans_weight: float = 7.0
    rot_weight: float = 5.0
    scale_weight: float = 3.0
    position_weight_min_ratio: float = 0.2
    position_weight_max_ratio: float = 1.0
    position_weight_decay: float = 0.99
    collision: str = "official"
    collision_weight: float = 1.0
    collision_resolution: int = 64
    collision_points: int = 16

    def __post_init__(self) -> None:
        if self.collision not in COLLISION_MODES:
            raise ValueError(f"collision must be one of {COLLISION_MODES}, got {self.collision!r}")
        if not 0 < self.position_weight_min_ratio <= self.position_weight_max_ratio:
            raise ValueError("need 0 < position_weight_min_ratio <= position_weight_max_ratio")
        if not 0 <= self.sigma_min < 1 or self.smooth_scale <= 0 or self.collision_smooth_scale <= 0:
            raise ValueError("sigma_min must be in [0, 1), smooth scales > 0")


def sample_t(count: int, mean: float, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Logit-normal flow times [count] float32: sigmoid(N(mean, std^2))."""
    return torch.sigmoid(torch.randn(count, generator=generator) * std + mean)


def _per_sample(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.view(-1, *[1] * (like.ndim - 1))


def diffuse(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, sigma_min: float) -> torch.Tensor:
    """x_t [N, ...] = (1 - t) x_0 + (sigma_min + (1 - sigma_min) t) noise; t [N]."""
    t = _per_sample(t, x0)
    return (1 - t) * x0 + (sigma_min + (1 - sigma_min) * t) * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor, sigma_min: float) -> torch.Tensor:
    """v = (1 - sigma_min) noise - x_0, the official ``get_v``."""
    return (1 - sigma_min) * noise - x0


def predicted_x0(x_t: torch.Tensor, velocity: torch.Tensor, t: torch.Tensor, sigma_min: float) -> torch.Tensor:
    """x_0 implied by x_t and a predicted velocity, with the official algebra (see its derivation:
    x_0 = (x_t - sigma_t v / (1 - sigma_min)) / ((1 - t) + sigma_t / (1 - sigma_min)))."""
    t = _per_sample(t, x_t)
    sigma_t = sigma_min + (1 - sigma_min) * t
    return (x_t - sigma_t * velocity / (1 - sigma_min)) / ((1 - t) + sigma_t / (1 - sigma_min))


def scene_scale(positions: torch.Tensor) -> torch.Tensor:
    """[3] per-axis extent of one scene's pose boxes: max(t + s/2) - min(t - s/2), floored at 1e-2."""
    half = positions[:, 7:8] / 2
    extent = (positions[:, :3] + half).max(dim=0).values - (positions[:, :3] - half).min(dim=0).values
    return torch.maximum(extent, torch.tensor(1e-2, dtype=extent.dtype, device=extent.device))


def _smooth(pred: torch.Tensor, target: torch.Tensor, scale: float) -> torch.Tensor:
    return F.smooth_l1_loss(pred / scale, target / scale) * scale


@dataclass(frozen=True)
class PositionTerms:
    """One scene's pose losses (scalars): trans / rot / scale are the weighted-sum inputs
    (smooth-L1), the ``*_l1`` values are plain L1 errors for logging."""

    trans: torch.Tensor
    rot: torch.Tensor
    scale: torch.Tensor
    trans_l1: torch.Tensor
    rot_l1: torch.Tensor
    scale_l1: torch.Tensor

    def weighted(self, config: FlowLossConfig) -> torch.Tensor:
        return config.trans_weight * self.trans + config.rot_weight * self.rot + config.scale_weight * self.scale


def position_terms(pred: torch.Tensor, target: torch.Tensor, config: FlowLossConfig) -> PositionTerms:
    """pred, target: [N, 8] poses (t, q w-first, s) of one scene, N >= 2; row 0 (query) is ignored."""
    s = config.smooth_scale
    scale_xyz = scene_scale(target)
    p, g = pred[1:], target[1:]
    return PositionTerms(
        trans=_smooth(p[:, :3] / scale_xyz, g[:, :3] / scale_xyz, s),
        rot=_smooth(p[:, 3:7], g[:, 3:7], s),
        scale=_smooth(p[:, 7:], g[:, 7:], s),
        trans_l1=F.l1_loss(p[:, :3], g[:, :3]).detach(),
        rot_l1=F.l1_loss(p[:, 3:7], g[:, 3:7]).detach(),
        scale_l1=F.l1_loss(p[:, 7:], g[:, 7:]).detach(),
    )


def _identity_query(positions: torch.Tensor) -> torch.Tensor:
    identity = torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], dtype=positions.dtype, device=positions.device)
    return torch.cat([identity[None], positions[1:]])


@torch.no_grad()
def official_collision_ratio(logits: torch.Tensor, positions: torch.Tensor, resolution: int) -> torch.Tensor:
    """The official collision ratio of one scene (no gradient).

    logits: [N, 1, R, R, R] decoder output of the predicted x_0; positions: [N, 8] ground-truth
    poses (row 0 is treated as the identity). Voxels (logit > 0) are placed exactly like the
    official voxel preview (`assembly.preview_points`: corner coordinates, scene normalised to its
    largest extent), binned into a resolution^3 grid by truncation of p * (resolution - 1); every
    non-query object marks its voxels once. Returns the scalar float32 tensor
    (#voxels marked by > 1 object) / (#marked voxels + 1e-8).
    """
    occupied = (logits[:, 0] > 0).cpu()
    coords = torch.cat(
        [torch.cat([torch.full((len(c), 1), i), c], dim=1) for i, c in enumerate(torch.nonzero(o) for o in occupied)]
    )
    rows = _identity_query(positions.detach().float().cpu()).numpy()
    if len(coords) == 0:
        return torch.zeros((), device=logits.device)
    normalised = preview_points(coords.numpy(), rows, resolution=occupied.shape[-1]).post_norm
    counts = np.zeros((resolution,) * 3, dtype=np.int64)
    for points in normalised[1:]:
        index = np.clip((points * np.float32(resolution - 1)).astype(np.int64), 0, resolution - 1)
        unique = np.unique(index, axis=0)
        counts[unique[:, 0], unique[:, 1], unique[:, 2]] += 1
    ratio = np.float32((counts > 1).sum()) / (np.float32((counts > 0).sum()) + np.float32(1e-8))
    return torch.tensor(ratio, dtype=torch.float32, device=logits.device)


def quaternion_to_matrix(q_wxyz: torch.Tensor) -> torch.Tensor:
    """[..., 4] (w, x, y, z), any norm -> [..., 3, 3] rotation of the normalised quaternion.
    Hand-written because scipy cannot carry autograd; agrees with `types.Pose` (tested)."""
    w, x, y, z = F.normalize(q_wxyz, dim=-1).unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).unflatten(-1, (3, 3))


_Z_UP_TO_Y_UP = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # R_x(-90 deg)


def soft_collision_ratio(logits: torch.Tensor, positions: torch.Tensor, points: int) -> torch.Tensor:
    """Differentiable interpenetration of one scene.

    logits: [N, 1, R, R, R] decoder logits (with grad); positions: [N, 8] PREDICTED poses (row 0 is
    the identity, SceneGen's frame). Each object's occupancy probability is average-pooled to
    points^3 cells; cell centres v of object i go to the scene (p = s_i R_i R_x(-90) v + t_i), then
    into object j's canonical box, where j's probability is read by trilinear interpolation
    (zero outside). Returns sum_{i != j} sum_v P_i(v) P_j(T_j^-1 T_i v) vol_i / sum_i sum_v P_i(v) vol_i,
    the expected fraction of occupied volume that lies inside another object.
    """
    n = logits.shape[0]
    probs = torch.sigmoid(logits.float())
    cells = F.adaptive_avg_pool3d(probs, points)[:, 0]  # [N, P, P, P]
    centres = (torch.arange(points, dtype=probs.dtype, device=probs.device) + 0.5) / points - 0.5
    grid = torch.stack(torch.meshgrid(centres, centres, centres, indexing="ij"), dim=-1).reshape(-1, 3)
    poses = _identity_query(positions.float())
    rotation = quaternion_to_matrix(poses[:, 3:7]) @ _Z_UP_TO_Y_UP.to(probs)
    scale = poses[:, 7].clamp_min(1e-3)
    scene_points = scale[:, None, None] * grid[None] @ rotation.transpose(1, 2) + poses[:, None, :3]  # [N, M, 3]
    weights = cells.reshape(n, -1) * scale[:, None] ** 3  # occupied volume per cell, scene units
    overlap = torch.zeros((), dtype=probs.dtype, device=probs.device)
    for j in range(n):
        local = ((scene_points - poses[j, :3]) @ rotation[j]) / scale[j]  # [N, M, 3] in j's box
        # grid_sample wants (x -> W, y -> H, z -> D) = our (z, y, x) index order, in [-1, 1].
        sample_grid = (2 * local[..., [2, 1, 0]]).reshape(1, n, -1, 1, 3)
        inside_j = F.grid_sample(probs[j : j + 1], sample_grid, align_corners=False, padding_mode="zeros")
        inside_j = inside_j.reshape(n, -1)
        others = torch.ones(n, dtype=torch.bool, device=probs.device)
        others[j] = False
        overlap = overlap + (weights[others] * inside_j[others]).sum()
    return overlap / weights.sum().clamp_min(1e-8)


class PositionWeight:
    """The official EMA position weight: ema <- ratio on the first update, then
    decay * ema + (1 - decay) * ratio; value = clamp(ema, min_ratio, max_ratio)."""

    def __init__(self, config: FlowLossConfig):
        self.config = config
        self.ema: float | None = None

    def update(self, ratio: float) -> float:
        decay = self.config.position_weight_decay
        self.ema = float(ratio) if self.ema is None else decay * self.ema + (1 - decay) * float(ratio)
        return self.value

    @property
    def value(self) -> float:
        if self.ema is None:
            raise ValueError("position weight read before its first update")
        return min(max(self.ema, self.config.position_weight_min_ratio), self.config.position_weight_max_ratio)

    def state_dict(self) -> dict:
        return {"ema": self.ema}

    def load_state_dict(self, state: dict) -> None:
        self.ema = None if state["ema"] is None else float(state["ema"])


@dataclass(frozen=True)
class FlowLossTerms:
    """Scalars of one training step (means over its scenes). loss carries the gradient; the others
    are detached. pos_loss / collision_ratio / pos_* are NaN-free zeros when every scene has one object."""

    loss: torch.Tensor
    mse: torch.Tensor
    pos_loss: torch.Tensor
    pos_weight: float
    collision_ratio: torch.Tensor
    trans_l1: torch.Tensor
    rot_l1: torch.Tensor
    scale_l1: torch.Tensor

    def scalars(self) -> dict[str, float]:
        """Name -> float for logging (CSV columns, progress bar)."""
        return {
            "loss": float(self.loss.detach()),
            "mse": float(self.mse),
            "pos_loss": float(self.pos_loss),
            "pos_weight": float(self.pos_weight),
            "collision": float(self.collision_ratio),
            "trans_l1": float(self.trans_l1),
            "rot_l1": float(self.rot_l1),
            "scale_l1": float(self.scale_l1),
        }


def flow_losses(
    model: Callable[..., object],
    x0: torch.Tensor,
    cond: torch.Tensor,
    positions: torch.Tensor,
    t: torch.Tensor,
    noise: torch.Tensor,
    position_weight: PositionWeight,
    config: FlowLossConfig,
    *,
    num_scenes: int = 1,
    decoder: torch.nn.Module | None = None,
    reduce_ratio: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> FlowLossTerms:
    """The SceneGen objective for B = num_scenes scenes of equal object count N (module docstring).

    model: SSFlowModel in train mode, called as model(x_t, 1000 t, cond, num_scenes=B).
    x0: [B*N, C, R, R, R] latents; cond: [B*N, L, C] (after classifier-free dropout);
    positions: [B*N, 8] ground-truth poses, each scene's first row the identity; t: [B*N] in [0, 1];
    noise: like x0. position_weight: the EMA state, updated once here with
    mean(mse) / mean(pos_loss) over the scenes (after ``reduce_ratio``, e.g. an all-reduce mean
    across DDP ranks, applied to the tensor [mse, pos_loss]). decoder: SS decoder for the collision
    term (required unless config.collision == "none").
    """
    total = x0.shape[0]
    if total % num_scenes:
        raise ValueError(f"{total} objects cannot form {num_scenes} scenes of equal size")
    per_scene = total // num_scenes
    if config.collision != "none" and decoder is None and per_scene > 1:
        raise ValueError(f"collision={config.collision!r} needs the SS decoder")
    x_t = diffuse(x0, t, noise, config.sigma_min)
    out = model(x_t, t * 1000, cond, num_scenes=num_scenes)
    target = velocity_target(x0, noise, config.sigma_min)
    mse = F.mse_loss(out.velocity, target)
    zero = torch.zeros((), device=x0.device)
    if per_scene < 2:
        return FlowLossTerms(mse, mse.detach(), zero, 0.0, zero, zero, zero, zero)

    pos_losses, collisions, terms = [], [], []
    if config.collision == "official":
        with torch.no_grad():
            logits = decoder(predicted_x0(x_t, out.velocity, t, config.sigma_min))
    elif config.collision == "differentiable":
        logits = decoder(predicted_x0(x_t, out.velocity, t, config.sigma_min))
    for b in range(num_scenes):
        rows = slice(b * per_scene, (b + 1) * per_scene)
        scene_terms = position_terms(out.positions[rows], positions[rows], config)
        pos = scene_terms.weighted(config)
        collision = zero
        if config.collision == "official":
            collision = official_collision_ratio(logits[rows], positions[rows], config.collision_resolution)
        elif config.collision == "differentiable":
            collision = soft_collision_ratio(logits[rows], out.positions[rows], config.collision_points)
        if config.collision != "none":
            pos = pos + _smooth(collision, torch.zeros_like(collision), config.collision_smooth_scale) * config.collision_weight
        pos_losses.append(pos)
        collisions.append(collision.detach())
        terms.append(scene_terms)
    pos_loss = torch.stack(pos_losses).mean()
    ratio_inputs = torch.stack([mse.detach(), pos_loss.detach()])
    if reduce_ratio is not None:
        ratio_inputs = reduce_ratio(ratio_inputs)
    weight = position_weight.update(float(ratio_inputs[0] / (ratio_inputs[1] + 1e-8)))
    return FlowLossTerms(
        loss=mse + pos_loss * weight,
        mse=mse.detach(),
        pos_loss=pos_loss.detach(),
        pos_weight=weight,
        collision_ratio=torch.stack(collisions).mean(),
        trans_l1=torch.stack([s.trans_l1 for s in terms]).mean(),
        rot_l1=torch.stack([s.rot_l1 for s in terms]).mean(),
        scale_l1=torch.stack([s.scale_l1 for s in terms]).mean(),
    )


@dataclass(frozen=True)
class VaeLossConfig:
    """TRELLIS SparseStructureVaeTrainer: loss_type "bce" | "l1" | "dice" on the occupancy, plus
    lambda_kl * KL. pos_weight_bce (ours, 1 = TRELLIS) up-weights occupied voxels in the BCE."""

    loss_type: str = "bce"
    lambda_kl: float = 1e-6
    pos_weight_bce: float = 1.0

    def __post_init__(self) -> None:
        if self.loss_type not in ("bce", "l1", "dice"):
            raise ValueError(f"loss_type must be bce, l1 or dice, got {self.loss_type!r}")


@dataclass(frozen=True)
class VaeLossTerms:
    """loss (with gradient), recon (the loss_type term) and kl, scalars; iou: mean occupancy IoU
    of the reconstruction (logit > 0) against the input, for logging."""

    loss: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor
    iou: float

    def scalars(self) -> dict[str, float]:
        return {"loss": float(self.loss.detach()), "recon": float(self.recon), "kl": float(self.kl), "iou": self.iou}


def occupancy_iou(logits: torch.Tensor, occupancy: torch.Tensor) -> torch.Tensor:
    """[B] IoU of (logits > 0) against boolean occupancy [B, 1, R, R, R] (1 when both are empty)."""
    pred, true = logits > 0, occupancy > 0.5
    inter = (pred & true).flatten(1).sum(1).float()
    union = (pred | true).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def vae_losses(vae: torch.nn.Module, occupancy: torch.Tensor, noise: torch.Tensor, config: VaeLossConfig) -> VaeLossTerms:
    """vae(occupancy, noise) -> (posterior, logits) (`training.modules.SSVae`); occupancy:
    [B, 1, R, R, R] float (0/1); noise: [B, latent_channels, G, G, G] for z = mean + std * noise."""
    posterior, logits = vae(occupancy, noise)
    if config.loss_type == "bce":
        weight = torch.tensor(config.pos_weight_bce, device=logits.device)
        recon = F.binary_cross_entropy_with_logits(logits, occupancy, pos_weight=weight)
    elif config.loss_type == "l1":
        recon = F.l1_loss(torch.sigmoid(logits), occupancy)
    else:
        probs = torch.sigmoid(logits)
        recon = 1 - (2 * (probs * occupancy).sum() + 1) / (probs.sum() + occupancy.sum() + 1)
    kl = posterior.kl()
    return VaeLossTerms(recon + config.lambda_kl * kl, recon.detach(), kl.detach(), float(occupancy_iou(logits, occupancy).mean()))
