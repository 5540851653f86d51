"""Flow-Euler sampler with classifier-free guidance restricted to a time interval (SceneGen's
``FlowEulerGuidanceIntervalSamplerVGGT``): integrates the SS flow model from noise (t = 1) to data
(t = 0) and returns the latents together with the poses predicted at the last step.

Rectified-flow convention (TRELLIS): x_t = (1 - t) x_0 + (sigma_min + (1 - sigma_min) t) eps, the model
predicts v ~ dx_t/dt, so one Euler step is x_{t_prev} = x_t - (t - t_prev) v.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np
import torch

from scenegen_core.models.ss_flow import FlowOutput, SSFlowConfig
from scenegen_core.runtime import host_to_device

ProgressCallback = Callable[[int, int], None]


class FlowModel(Protocol):
    """What the sampler needs: ``model(x [P*N,C,R,R,R], t [P*N] (x1000), cond [P*N,L,C], num_scenes=P)
    -> FlowOutput`` for P independent scenes of N objects each."""

    training: bool
    config: SSFlowConfig

    def __call__(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, num_scenes: int = 1) -> FlowOutput: ...


@dataclass(frozen=True)
class SamplerConfig:
    """steps: Euler steps; cfg_strength s: v = (1 + s) v_cond - s v_uncond; cfg_interval: guidance
    only for cfg_interval[0] <= t <= cfg_interval[1] (inclusive); rescale_t r: t <- r t / (1 + (r - 1) t)
    (r > 1 spends more steps near t = 1); sigma_min: noise floor of the flow path. batch_passes: run
    a step's conditional and unconditional passes as one scene-batched forward (faster; equal to
    separate calls up to float rounding) instead of one call each, as the official sampler does.
    cache_interval k: step caching (Fast-SAM3D's shape rule, arXiv 2602.05293): with k > 1 only
    the steps `evaluated_steps` marks run the model, the others extrapolate the velocity linearly
    in t from the last two evaluated steps and keep their poses; 1 = every step runs the model."""

    steps: int = 25
    cfg_strength: float = 5.0
    cfg_interval: tuple[float, float] = (0.5, 1.0)
    rescale_t: float = 3.0
    sigma_min: float = 1e-5
    batch_passes: bool = True
    cache_interval: int = 1

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.cache_interval < 1:
            raise ValueError(f"cache_interval must be >= 1, got {self.cache_interval}")
        if self.rescale_t <= 0:
            raise ValueError(f"rescale_t must be > 0, got {self.rescale_t}")
        lo, hi = self.cfg_interval
        if lo > hi:
            raise ValueError(f"cfg_interval must be (low, high) with low <= high, got {self.cfg_interval}")
        if self.cfg_strength < 0:
            raise ValueError(f"cfg_strength must be >= 0, got {self.cfg_strength}")

    def time_grid(self) -> np.ndarray:
        """[steps + 1] float64 times from 1 down to 0 after rescaling."""
        t = np.linspace(1.0, 0.0, self.steps + 1)
        return self.rescale_t * t / (1.0 + (self.rescale_t - 1.0) * t)

    def guided(self, t: float) -> bool:
        """Whether the step starting at flow time t runs the unconditional pass too."""
        return self.cfg_strength > 0 and self.cfg_interval[0] <= t <= self.cfg_interval[1]

    def evaluated_steps(self) -> tuple[bool, ...]:
        """Per step: whether it runs the model (True) or reuses the cache (False, cache_interval > 1).

        Step i runs the model when i is a multiple of cache_interval, when it is the last step (its
        poses are the result), or when fewer than two of the evaluated steps before it share its
        guidance state: the linear extrapolation needs two velocities of the same kind, and a guided
        velocity is a different function of x than an unguided one."""
        grid = self.time_grid()
        evaluated: list[bool] = []
        history: list[bool] = []  # guidance state of the evaluated steps so far
        for i in range(self.steps):
            guided = self.guided(float(grid[i]))
            run = (
                self.cache_interval == 1
                or i % self.cache_interval == 0
                or i == self.steps - 1
                or len(history) < 2
                or history[-1] != guided
                or history[-2] != guided
            )
            evaluated.append(run)
            if run:
                history.append(guided)
        return tuple(evaluated)

    def model_passes(self, num_views: int = 1) -> int:
        """Forward passes (each over the scene's N objects) of one sampling run with `num_views`
        views: per evaluated step one conditional pass (all views on the last step, see
        `FlowEulerSampler.sample`) plus one unconditional pass when guided; cached steps none."""
        if num_views < 1:
            raise ValueError(f"num_views must be >= 1, got {num_views}")
        grid = self.time_grid()
        passes = 0
        for i, run in enumerate(self.evaluated_steps()):
            if run:
                views = num_views if i == self.steps - 1 else 1
                passes += views + (1 if self.guided(float(grid[i])) else 0)
        return passes


@dataclass(frozen=True)
class SamplingStep:
    """One Euler step from t to t_prev. x_t: state AFTER the step [N,C,R,R,R] float32;
    x_0: the data prediction at t (from the guided velocity); positions: [N, pose_dim] float32 of the
    conditional pass (of the last evaluated step when this one was cached); guided: whether CFG
    applies at t; evaluated: whether the model ran (False: velocity extrapolated, see
    SamplerConfig.cache_interval)."""

    t: float
    t_prev: float
    guided: bool
    x_t: torch.Tensor
    x_0: torch.Tensor
    positions: torch.Tensor
    evaluated: bool = True


@dataclass(frozen=True)
class SamplingResult:
    """samples: [N, C, R, R, R] float32 latents at t = 0; positions: [N, pose_dim] float32 poses of the
    last step (relative to object 0); t_seq: [steps + 1] float64; trajectory: per-step records, or
    None when not requested."""

    samples: torch.Tensor
    positions: torch.Tensor
    t_seq: np.ndarray
    trajectory: tuple[SamplingStep, ...] | None = None


class FlowEulerSampler:
    """Flow-Euler integration with interval-restricted classifier-free guidance (see module doc)."""

    def __init__(self, config: SamplerConfig = SamplerConfig()):
        self.config = config

    @torch.inference_mode()
    def sample(
        self,
        model: FlowModel,
        cond: torch.Tensor,
        noise: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
        neg_cond: torch.Tensor | None = None,
        record_trajectory: bool = False,
        progress: ProgressCallback | None = None,
    ) -> SamplingResult:
        """Integrate from noise (t = 1) to data (t = 0).

        model: in eval mode (the query object's pose must be the identity).
        cond: [N, L, C] (or [1, L, C], repeated for every object) for one view, or [V, N, L, C] for V
        views of one scene (SceneGen's ``run_multi_image``, mode "stochastic"): step i < steps - 1 is
        conditioned on view i mod V alone, the last step averages the guided velocities and the poses
        over all views, so the returned positions are the view average.
        neg_cond: [N, L, C], default zeros.
        noise: [N, Cin, R, R, R] float32 initial state; or give `generator` instead and the noise is
        drawn as the official pipeline does (``torch.randn(N, Cin, R, R, R)`` on the generator's device,
        then moved to cond's device), so a CPU generator seeded 42 reproduces ``torch.manual_seed(42)``.
        progress: called as progress(step_index + 1, steps) after each step.
        A step's passes (views, unconditional) run as one scene-batched forward (`passes`); plain
        stacking would be wrong, since the model's global attention mixes all objects of a scene.
        """
        if cond.ndim not in (3, 4):
            raise ValueError(f"cond must be [N, L, C] or [V, N, L, C], got {tuple(cond.shape)}")
        views = cond[None] if cond.ndim == 3 else cond
        return self._integrate(model, views, noise, generator, neg_cond, record_trajectory, progress)

    def passes(self, model, x: torch.Tensor, t: torch.Tensor, contexts: list[torch.Tensor]):
        """Velocities and poses of the scene x under each context, as one scene-batched forward
        (`SSFlowModel(..., num_scenes=P)`: global attention stays inside each pass, so this equals P
        separate calls up to float rounding) or, with batch_passes off, P calls.

        x: [N, C, R, R, R] float32; t: [N] (flow time x 1000); contexts: P tensors [N, L, C].
        Returns (P velocities [N, C, R, R, R] float32, P poses [N, pose_dim] float32)."""
        if not self.config.batch_passes or len(contexts) == 1:
            outputs = [model(x, t, c) for c in contexts]
            return [o.velocity for o in outputs], [o.positions for o in outputs]
        count = len(contexts)
        out = model(x.repeat(count, 1, 1, 1, 1), t.repeat(count), torch.cat(contexts), num_scenes=count)
        return list(out.velocity.chunk(count)), list(out.positions.chunk(count))

    def _views_for_step(self, step: int, num_views: int) -> range:
        if num_views == 1:
            return range(1)
        if step == self.config.steps - 1:
            return range(num_views)
        return range(step % num_views, step % num_views + 1)

    def _integrate(self, model, cond, noise, generator, neg_cond, record_trajectory, progress) -> SamplingResult:
        """cond: [V, N or 1, L, C]; see `sample` for how views are used."""
        if (noise is None) == (generator is None):
            raise ValueError("give exactly one of noise or generator")
        if noise is None:
            mc = model.config
            shape = (cond.shape[1], mc.in_channels, mc.resolution, mc.resolution, mc.resolution)
            noise = host_to_device(torch.randn(shape, generator=generator, device=generator.device), cond.device)
        if model.training:
            raise ValueError("sampler needs the model in eval mode (call model.eval())")
        if noise.ndim != 5 or not noise.is_floating_point():
            raise ValueError(f"noise must be a float [N, C, R, R, R] tensor, got {tuple(noise.shape)} {noise.dtype}")
        n = noise.shape[0]
        if cond.shape[1] not in (1, n):
            raise ValueError(f"cond must be [{n}, L, C] or [1, L, C] per view, got {tuple(cond.shape[1:])}")
        cond = cond.expand(-1, n, -1, -1)
        if neg_cond is None:
            neg_cond = torch.zeros_like(cond[0])
        elif neg_cond.shape[1:] != cond.shape[2:] or neg_cond.shape[0] not in (1, n):
            raise ValueError(f"neg_cond shape {tuple(neg_cond.shape)} does not match cond {tuple(cond.shape[1:])}")
        neg_cond = neg_cond.expand(n, -1, -1)

        cfg = self.config
        t_seq = cfg.time_grid()
        evaluated = cfg.evaluated_steps()
        x = noise
        steps: list[SamplingStep] = []
        positions = None
        cache: list[tuple[float, torch.Tensor]] = []  # (t, guided velocity) of the last two evaluated steps
        for i in range(cfg.steps):
            t, t_prev = float(t_seq[i]), float(t_seq[i + 1])
            guided = cfg.guided(t)
            if evaluated[i]:
                # 1. Conditional velocity and poses (averaged over the step's views); guidance
                #    extrapolates away from the unconditional velocity, which is the same for every view.
                t_model = torch.full((n,), 1000.0 * t, dtype=torch.float32, device=x.device)
                views = self._views_for_step(i, cond.shape[0])
                contexts = [cond[v] for v in views] + ([neg_cond] if guided else [])
                velocities, poses = self.passes(model, x, t_model, contexts)
                velocity = sum(velocities[: len(views)]) / len(views)
                positions = sum(poses[: len(views)]) / len(views)
                if guided:
                    velocity = (1 + cfg.cfg_strength) * velocity - cfg.cfg_strength * velocities[-1]
                cache = [*cache[-1:], (t, velocity)]
            else:
                # 1'. Cached step: first-order Taylor extrapolation of the velocity in t from the last
                #     two evaluated steps (the shape latent moves smoothly). Poses are not integrated,
                #     only read from the last step, which always runs the model, so they keep the
                #     last evaluated values here instead of being extrapolated (the volatile part).
                (t_b, v_b), (t_a, v_a) = cache
                velocity = v_a + (v_a - v_b) * ((t - t_a) / (t_a - t_b))
            # 2. Euler step x_{t_prev} = x_t - (t - t_prev) v; x_0 estimate for inspection only.
            if record_trajectory:
                x_0 = (1 - cfg.sigma_min) * x - (cfg.sigma_min + (1 - cfg.sigma_min) * t) * velocity
            x = x - (t - t_prev) * velocity
            if record_trajectory:
                steps.append(SamplingStep(t, t_prev, guided, x, x_0, positions, evaluated[i]))
            if progress is not None:
                progress(i + 1, cfg.steps)
        return SamplingResult(
            samples=x,
            positions=positions,
            t_seq=t_seq,
            trajectory=tuple(steps) if record_trajectory else None,
        )
