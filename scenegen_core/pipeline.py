"""Images in, posed meshes out: the one entry point the ROS node and the CLIs call.

`SceneGenPipeline(config).run(views) -> SceneResult`. Stages (each timed, in order):
``preprocess`` (crops, masks, object order), ``encode`` (DINOv2 + VGGT conditioning),
``sample`` (flow-Euler sampling of the sparse-structure latents and the poses),
``decode`` (latent -> 64^3 occupancy), ``mesh`` (marching cubes per object),
``place`` (poses relative to the query object -> metric poses in the first camera's frame).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from scenegen_core.types import SceneResult, View


class PipelineError(ValueError):
    """The input cannot be turned into a scene (no masks, no objects, inconsistent views...)."""


@dataclass(frozen=True)
class PipelineConfig:
    """What to run and how.

    model_path: directory with weights in the official layout, or "" for the embedded default
    (see `scenegen_core.checkpoints`). device: "cpu", "cuda", "cuda:0"... dtype: "auto" (fp16 on
    CUDA as released, fp32 on CPU), "fp32", "fp16", "bf16". steps / cfg_strength / cfg_interval /
    rescale_t: flow sampler settings (paper defaults). max_objects: objects beyond this (smallest
    masks first) are dropped with a warning. mesh_resolution: occupancy grid edge (64 as TRELLIS).
    seed: noise seed; the same seed and input give the same result.
    """

    model_path: str = ""
    device: str = "cpu"
    dtype: str = "auto"
    steps: int = 25
    cfg_strength: float = 5.0
    cfg_interval: tuple[float, float] = (0.5, 1.0)
    rescale_t: float = 3.0
    max_objects: int = 8
    seed: int = 42


class ScenePipeline(Protocol):
    """What the ROS node needs from a pipeline."""

    @property
    def description(self) -> str:
        """One line naming the weights in use (and saying so plainly when they are untrained)."""

    def run(self, views: Sequence[View]) -> SceneResult:
        """Generate the scene seen in `views` (view 0 is the reference camera).

        Every view must carry masks in one shared object order; raises PipelineError otherwise.
        """
