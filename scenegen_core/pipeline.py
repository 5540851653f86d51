"""Images in, posed meshes out: the one entry point the ROS node and the CLIs call.

`SceneGenPipeline(config).run(views) -> SceneResult`. Stages (each timed, in order):

1. ``segment``  - masks from depth (table plane + clustering) when the views carry none.
2. ``prepare``  - object order (largest mask in view 0 = query object, as SceneGen's inference),
                  the `max_objects` cap, views in which an object is missing are dropped.
3. ``encode``   - DINOv2 (object crop, mask, scene) + VGGT tokens per view (paper Sec. 3.2).
4. ``sample``   - flow-Euler sampling of all objects' sparse-structure latents and poses in one
                  batch (global attention mixes the objects), CFG in the guidance interval.
5. ``decode``   - latent -> occupancy logits -> per-object voxel grid (logits > 0).
6. ``mesh``     - marching cubes per object, asset frame [-0.5, 0.5]^3, z up.
7. ``place``    - SceneGen poses -> every asset in the query object's frame
                  (`assembly.assemble_in_query_frame`) -> metric similarity into the first
                  camera's optical frame from depth (`placement.estimate_placement`) -> colours.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field, replace
from typing import Iterator, Protocol, Sequence

import numpy as np
import torch

from scenegen_core.assembly import assemble_in_query_frame, voxels_to_mesh
from scenegen_core.bundle import DEFAULT_BUNDLE_DIR, is_bundle, load_bundle
from scenegen_core.checkpoints import LoadedModels, load_scenegen_models
from scenegen_core.conditioning import build_multiview_conditioning, order_objects_by_mask_area
from scenegen_core.mesh_ops import simplify_to_face_budget
from scenegen_core.models.dinov2 import DinoEncoder, DinoEncoderConfig
from scenegen_core.models.ss_decoder import SSDecoder, SSDecoderConfig
from scenegen_core.models.ss_flow import SSFlowConfig, SSFlowModel
from scenegen_core.models.vggt.aggregator import VGGTAggregator, VGGTAggregatorConfig
from scenegen_core.placement import PlacementConfig, back_project, compose, estimate_placement
from scenegen_core.registration import DepthObservation, RegistrationConfig, register_scene
from scenegen_core.runtime import synchronize
from scenegen_core.sampler import FlowEulerSampler, SamplerConfig
from scenegen_core.segmentation.depth_proposals import (
    SegmentationConfig,
    segment_depth,
    table_plane_from_views,
    view_points,
)
from scenegen_core.types import Mesh, Pose, SceneObject, SceneResult, StageTiming, View

UNTRAINED_DESCRIPTION = (
    "UNTRAINED network (test option): the real SceneGen architecture at a tiny size with random weights "
    "(seed {seed}); its shapes and relative poses are meaningless"
)


class PipelineError(ValueError):
    """The input cannot be turned into a scene (no masks, no objects, inconsistent views...)."""


@dataclass(frozen=True)
class PipelineConfig:
    """What to run and how.

    model_path: a model bundle directory (`scenegen_core.bundle`, what our training exports), a
    directory with weights in the official layout (`scenegen_core.checkpoints`), or "" for the
    embedded default (the trained bundle in scenegen_core/default_model). untrained: ignore
    model_path and run the tiny architecture with random weights (tests only). device: "cpu", "cuda", "cuda:0"... dtype: "auto" (half precision on
    CUDA as released, fp32 on CPU), "fp32", "fp16", "bf16": the flow and decoder torso.
    encoder_dtype: the same choices for DINOv2 and VGGT (`resolve_encoder_dtype`; "auto" is bf16 on
    CUDA where the GPU has it, else fp16, and fp32 on CPU). compile_flow: run the flow model through
    `torch.compile` (first calls compile: call `SceneGenPipeline.warm_up` at start-up).
    steps / cfg_strength / cfg_interval / rescale_t / cache_interval: flow sampler settings (paper
    defaults; cache_interval 1 = no step caching, see SamplerConfig). max_objects: objects beyond this (smallest
    masks first) are dropped with a warning. min_mask_pixels: smaller masks are ignored.
    mesh_max_faces: marching-cubes meshes are simplified to at most this many faces. min_scale:
    floor for predicted scales (the model's ReLU can output 0). seed: noise seed; the same seed and
    input give the same meshes, and poses equal to ~1e-15 (open3d's ICP reduces in thread order). default_seed: weight seed of the untrained network.
    """

    model_path: str = ""
    untrained: bool = False
    device: str = "cpu"
    dtype: str = "auto"
    encoder_dtype: str = "auto"
    compile_flow: bool = False
    steps: int = 25
    cfg_strength: float = 5.0
    cfg_interval: tuple[float, float] = (0.5, 1.0)
    rescale_t: float = 3.0
    cache_interval: int = 1
    max_objects: int = 8
    min_mask_pixels: int = 16
    min_scale: float = 0.05
    mesh_max_faces: int = 5000
    seed: int = 42
    default_seed: int = 0
    placement: PlacementConfig = field(default_factory=PlacementConfig)
    registration: RegistrationConfig = field(default_factory=RegistrationConfig)

    def __post_init__(self) -> None:
        for name in ("dtype", "encoder_dtype"):
            if getattr(self, name) not in PRECISIONS:
                raise ValueError(f"{name} must be auto, fp32, fp16 or bf16, got {getattr(self, name)!r}")
        for name in ("max_objects", "min_mask_pixels", "mesh_max_faces"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.min_scale > 0:
            raise ValueError(f"min_scale must be > 0, got {self.min_scale}")
        _ = self.sampler  # building the SamplerConfig validates the sampler settings

    @property
    def sampler(self) -> SamplerConfig:
        return SamplerConfig(
            self.steps, self.cfg_strength, tuple(self.cfg_interval), self.rescale_t, cache_interval=self.cache_interval
        )


class ScenePipeline(Protocol):
    """What the ROS node needs from a pipeline."""

    @property
    def description(self) -> str:
        """One line naming the weights in use (and saying so plainly when they are untrained)."""

    def run(self, views: Sequence[View]) -> SceneResult:
        """Generate the scene seen in `views` (view 0 is the reference camera)."""


PRECISIONS = ("auto", "fp32", "fp16", "bf16")
_TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_half_dtype(dtype: str, device: torch.device) -> str | None:
    """Torso precision of the flow and decoder for PipelineConfig.dtype on `device`: None = fp32.
    "auto" is fp16 on CUDA (as released) and fp32 elsewhere (CPU kernels are fp32-fast)."""
    if dtype == "auto":
        return "float16" if device.type == "cuda" else None
    return {"fp32": None, "fp16": "float16", "bf16": "bfloat16"}[dtype]


def resolve_encoder_dtype(dtype: str, device: torch.device, bf16_supported: bool | None = None) -> torch.dtype:
    """Precision of DINOv2 and VGGT (weights and activations) for PipelineConfig.encoder_dtype.

    "auto": on CUDA bf16 where the GPU supports it (compute capability >= 8, VGGT's own inference
    recipe; bf16 keeps fp32's exponent range, so activations cannot overflow), else fp16; fp32 on
    other devices (CPU half-precision matmuls are slower than fp32). bf16_supported: None asks
    torch about `device` (only consulted for "auto" on CUDA)."""
    if dtype not in PRECISIONS:
        raise ValueError(f"encoder dtype must be one of {PRECISIONS}, got {dtype!r}")
    if dtype != "auto":
        return _TORCH_DTYPES[dtype]
    if device.type != "cuda":
        return torch.float32
    if bf16_supported is None:
        bf16_supported = torch.cuda.get_device_capability(device)[0] >= 8
    return torch.bfloat16 if bf16_supported else torch.float16


def untrained_default_models(seed: int = 0, device: str = "cpu", half_dtype: str | None = None) -> LoadedModels:
    """SceneGen's architecture at a CPU-friendly size with random weights (tests, PipelineConfig.untrained).

    DINOv2 and VGGT at 112 px (69 tokens, 64 channels), SS flow at R = 8 (2 blocks), decoder to
    32^3 occupancy. Weights are drawn from `seed` with a private generator state, so building it
    does not disturb the caller's RNG and always gives the same network.
    """
    dino_config = DinoEncoderConfig.tiny()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        dino = DinoEncoder(dino_config)
        vggt = VGGTAggregator(VGGTAggregatorConfig.tiny())
        precision = dict(use_fp16=half_dtype is not None, half_dtype=half_dtype or "float16")
        flow = SSFlowModel(SSFlowConfig.tiny(object_context_tokens=dino_config.num_tokens, **precision))
        decoder = SSDecoder(SSDecoderConfig.tiny(**precision))
    models = [m.to(device).eval() for m in (flow, decoder, vggt, dino)]
    return LoadedModels(*models, sampler=None, files=(), description=UNTRAINED_DESCRIPTION.format(seed=seed))


class _StageClock:
    """Wall-clock seconds per stage. On CUDA each reading first waits for the queued kernels
    (`runtime.synchronize`), so a stage's GPU work is charged to it and not to the next one."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.timings: list[StageTiming] = []

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        synchronize(self.device)
        start = time.perf_counter()
        try:
            yield
        finally:
            synchronize(self.device)
            self.timings.append(StageTiming(name, time.perf_counter() - start))


@dataclass(frozen=True)
class WarmUp:
    """What `SceneGenPipeline.warm_up` ran: object_counts, views per scene, and the wall seconds
    each object count took (the first includes torch.compile's compilation when enabled)."""

    object_counts: tuple[int, ...]
    num_views: int
    seconds: tuple[float, ...]


@dataclass(frozen=True)
class _Prepared:
    """Objects in query order. input_index: [N] index of each object in the caller's mask order.
    views: the views used for conditioning; masks: per used view [N, H, W] bool. boxes: [N, V, 4]
    mask boxes in every given view (NaN where the object is not visible), see SceneObject."""

    input_index: np.ndarray
    views: tuple[View, ...]
    masks: tuple[np.ndarray, ...]
    boxes: np.ndarray


class SceneGenPipeline:
    """Loads the networks once; `run` may be called repeatedly (not concurrently)."""

    def __init__(self, config: PipelineConfig = PipelineConfig(), models: LoadedModels | None = None):
        self.config = config
        self.device = torch.device(config.device)
        half_dtype = resolve_half_dtype(config.dtype, self.device)
        if models is None:
            if config.untrained:
                models = untrained_default_models(config.default_seed, str(self.device), half_dtype)
            elif not config.model_path or is_bundle(config.model_path):
                models = load_bundle(config.model_path or DEFAULT_BUNDLE_DIR, device=self.device, half_dtype=half_dtype)
            else:
                models = load_scenegen_models(config.model_path, device=self.device, half_dtype=half_dtype)
        self.models = models
        self.encoder_dtype = resolve_encoder_dtype(config.encoder_dtype, self.device)
        # Encoders run in their weights' dtype (DinoEncoder / VGGTAggregator cast their inputs and
        # hand back float32 tokens), so casting the weights is all half precision needs.
        for encoder in (models.dino, models.vggt):
            encoder.to(self.encoder_dtype)
        self._sampler = FlowEulerSampler(config.sampler)
        # The compiled module shares the eager one's weights; dynamic shapes, so scenes with other
        # object counts reuse the compiled graph instead of recompiling (see warm_up).
        self._flow = torch.compile(models.ss_flow, dynamic=True) if config.compile_flow else models.ss_flow

    @property
    def description(self) -> str:
        return self.models.description

    @property
    def trained(self) -> bool:
        return bool(self.models.files)

    @property
    def flow_model(self) -> torch.nn.Module:
        """The flow model the sampler calls: `models.ss_flow`, or its torch.compile wrapper (same weights)."""
        return self._flow

    # ------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def warm_up(self, object_counts: Sequence[int] = (1, 2, 3), num_views: int = 1) -> WarmUp:
        """Run encode -> sample -> decode once per object count on a synthetic image, so the first
        real scene does not pay for one-off work: torch.compile's compilation (compile_flow),
        CUDA context and kernel selection, allocator growth. Call it once at start-up, before
        serving requests (the ROS node's start-up is the intended caller).

        object_counts: scene sizes to run; with compile_flow, 1, 2 and 3 cover every count: torch
        compiles dimensions of size 1 as constants, so 1 object, and 2 (one non-query object),
        get their own graphs, and from 3 objects on one dynamic-shape graph serves every count.
        num_views: views per synthetic scene; the last sampling step batches one pass per view,
        another graph per view count. Returns what ran and how long each count took."""
        if not object_counts or min(object_counts) < 1 or num_views < 1:
            raise ValueError(f"need object counts >= 1 and num_views >= 1, got {object_counts}, {num_views}")
        rng = np.random.default_rng(0)
        seconds = []
        for count in object_counts:
            size = 32 * count
            rgb = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            masks = np.zeros((count, size, size), dtype=bool)
            for k in range(count):
                masks[k, 8:-8, 32 * k + 8 : 32 * k + 24] = True  # one vertical bar per object
            start = time.perf_counter()
            self._decode(self._sample(self._encode([rgb] * num_views, [masks] * num_views)).samples)
            synchronize(self.device)
            seconds.append(time.perf_counter() - start)
        return WarmUp(tuple(object_counts), num_views, tuple(seconds))

    def _encode(self, rgbs: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> torch.Tensor:
        """Conditioning tokens [V, N, L, C] float32 on the pipeline's device."""
        cond = build_multiview_conditioning(self.models.dino, self.models.vggt, list(rgbs), list(masks))
        return cond.tokens.to(self.device)

    def _sample(self, tokens: torch.Tensor):
        generator = torch.Generator("cpu").manual_seed(self.config.seed)
        return self._sampler.sample(self._flow, tokens, generator=generator)

    def _decode(self, samples: torch.Tensor) -> np.ndarray:
        """Occupancy logits [N, R', R', R'] float32 (numpy) of latents [N, C, R, R, R]."""
        decoder_dtype = next(self.models.ss_decoder.parameters()).dtype
        return self.models.ss_decoder(samples.to(decoder_dtype)).float()[:, 0].cpu().numpy()

    @torch.inference_mode()
    def run(self, views: Sequence[View]) -> SceneResult:
        """Generate the scene seen in `views` (view 0 is the reference camera).

        views: >= 1 View; masks in one shared object order in every view, or none at all (then depth
        and intrinsics are required and objects are segmented from depth). Raises PipelineError for
        input that cannot give a scene. The result's poses are metric in view 0's optical frame when
        view 0 has depth and intrinsics, otherwise in the query object's frame (`metric=False`).
        """
        views = tuple(views)
        if not views:
            raise PipelineError("no views given")
        clock = _StageClock(self.device)
        warnings: list[str] = []
        if any(v.masks is None for v in views):
            with clock.stage("segment"):
                views = self._segment(views, warnings)
        with clock.stage("prepare"):
            prepared = self._prepare(views, warnings)
        with clock.stage("encode"):
            tokens = self._encode([v.rgb for v in prepared.views], prepared.masks)
        with clock.stage("sample"):
            sampled = self._sample(tokens)
        with clock.stage("decode"):
            logits = self._decode(sampled.samples)
        with clock.stage("mesh"):
            meshes = [simplify_to_face_budget(voxels_to_mesh(grid > 0), self.config.mesh_max_faces) for grid in logits]
            scores = [_occupancy_confidence(grid) for grid in logits]
            for k, mesh in enumerate(meshes):
                if mesh.is_empty:
                    warnings.append(f"object {int(prepared.input_index[k])}: decoder produced no occupied voxels")
        with clock.stage("place"):
            objects, metric = self._place(prepared, sampled.positions.float().cpu().numpy(), meshes, scores, warnings)
        reference = views[0]
        return SceneResult(
            objects=tuple(objects),
            frame_id=reference.frame_id,
            stamp_ns=reference.stamp_ns,
            metric=metric,
            timings=tuple(clock.timings),
            model_description=self.description,
            warnings=tuple(warnings),
        )

    # ------------------------------------------------------------------------------------------
    def _segment(self, views: tuple[View, ...], warnings: list[str]) -> tuple[View, ...]:
        """Masks from depth for views that carry none. Objects can only be associated across views
        with known extrinsics (View.camera_from_reference); views without them are dropped."""
        if any(v.masks is not None for v in views):
            raise PipelineError("either every view carries masks or none does")
        if views[0].depth is None or views[0].intrinsics is None:
            raise PipelineError(
                "views carry no object masks and no depth + intrinsics to segment from: "
                "publish instance masks, or depth with CameraInfo"
            )
        usable = [views[0]] + [
            v for v in views[1:] if v.depth is not None and v.intrinsics is not None and v.camera_from_reference is not None
        ]
        if len(usable) < len(views):
            warnings.append(
                f"{len(views) - len(usable)} view(s) dropped: segmenting from depth needs depth, intrinsics "
                "and camera_from_reference in every view"
            )
        try:
            segmentation = segment_depth(usable)
        except ValueError as error:
            raise PipelineError(f"depth segmentation failed: {error}") from error
        if segmentation.num_objects == 0:
            raise PipelineError("no objects found above the table in the depth image")
        return tuple(replace(v, masks=m) for v, m in zip(usable, segmentation.masks))

    def _prepare(self, views: tuple[View, ...], warnings: list[str]) -> _Prepared:
        counts = {len(v.masks) for v in views}
        if len(counts) != 1:
            raise PipelineError(f"every view needs the same number of object masks, got {sorted(counts)}")
        reference_masks = views[0].masks
        areas = reference_masks.reshape(len(reference_masks), -1).sum(1)
        keep = np.flatnonzero(areas >= self.config.min_mask_pixels)
        if len(keep) < len(reference_masks):
            warnings.append(
                f"ignored {len(reference_masks) - len(keep)} object(s) with fewer than "
                f"{self.config.min_mask_pixels} mask pixels in view 0"
            )
        if len(keep) == 0:
            raise PipelineError("no object mask in view 0 is large enough to generate from")
        order = keep[order_objects_by_mask_area(reference_masks[keep])]
        if len(order) > self.config.max_objects:
            warnings.append(f"kept the {self.config.max_objects} largest of {len(order)} objects (max_objects)")
            order = order[: self.config.max_objects]
        boxes = np.stack([[_mask_box(view.masks[k]) for view in views] for k in order])
        used_views, used_masks = [], []
        for v, view in enumerate(views):
            masks = view.masks[order]
            if v > 0 and not masks.reshape(len(masks), -1).any(1).all():
                warnings.append(f"view {v} dropped: not every object is visible in it")
                continue
            used_views.append(view)
            used_masks.append(masks)
        return _Prepared(order, tuple(used_views), tuple(used_masks), boxes)

    def _place(
        self,
        prepared: _Prepared,
        positions: np.ndarray,
        meshes: list[Mesh],
        scores: list[float],
        warnings: list[str],
    ) -> tuple[list[SceneObject], bool]:
        scores = list(scores)
        if np.any(positions[1:, 7] < self.config.min_scale):
            warnings.append(f"predicted scales below {self.config.min_scale} were raised to it")
        try:
            in_query_frame = assemble_in_query_frame(positions, min_scale=self.config.min_scale)
        except ValueError as error:
            raise PipelineError(f"the model predicted unusable poses: {error}") from error
        scene_boxes = np.stack([_posed_bounds(mesh, pose) for mesh, pose in zip(meshes, in_query_frame)])
        reference = prepared.views[0]
        placement = estimate_placement(
            scene_boxes, prepared.masks[0], reference.depth, reference.intrinsics, self.config.placement
        )
        if not placement.metric and reference.depth is not None:
            warnings.append("no object had valid depth: poses stay in the query object's frame")
        camera_from_scene = placement.camera_from_scene
        corrections = [Pose()] * len(meshes)
        observed = [None] * len(meshes)
        if placement.metric:
            depth_range = self.config.placement.depth_range_m
            observed = [back_project(reference.depth, mask, reference.intrinsics, depth_range) for mask in prepared.masks[0]]
        if placement.metric and self.config.registration.enabled:
            registration = self._register(prepared, meshes, in_query_frame, camera_from_scene, observed)
            camera_from_scene = registration.camera_from_scene
            corrections = [fit.correction for fit in registration.objects]
            for k, fit in enumerate(registration.objects):
                if np.isfinite(fit.overlap):
                    scores[k] *= fit.overlap
                    if fit.overlap < 0.5:
                        warnings.append(
                            f"object {int(prepared.input_index[k])}: only {fit.overlap:.0%} of its depth points "
                            "lie on the registered mesh"
                        )
        objects = []
        for k, (mesh, pose) in enumerate(zip(meshes, in_query_frame)):
            final = compose(camera_from_scene, compose(corrections[k], pose))
            colored = _color_from_view(mesh, final, reference, prepared.masks[0][k]) if placement.metric else mesh
            objects.append(
                SceneObject(
                    index=int(prepared.input_index[k]),
                    mesh=colored,
                    pose=final,
                    pose_relative=pose,
                    boxes_per_view=prepared.boxes[k],
                    score=scores[k],
                    observed_points=None if observed[k] is None else observed[k].astype(np.float32),
                )
            )
        return objects, placement.metric

    def _register(
        self, prepared: _Prepared, meshes: list[Mesh], in_query_frame: list[Pose], initial: Pose, observed: list[np.ndarray]
    ):
        """Fit the generated surfaces to view 0's depth points `observed` (per object, camera frame;
        `registration.register_scene`), with the table normal from the depth outside the object masks
        as the up direction when a plane is found."""
        reference, masks = prepared.views[0], prepared.masks[0]
        try:
            plane = table_plane_from_views(view_points([reference]), [masks], SegmentationConfig())
            up = plane.normal
        except ValueError:
            up = None
        posed = [mesh.transformed(pose) for mesh, pose in zip(meshes, in_query_frame)]
        observation = DepthObservation(reference.depth, reference.intrinsics, up)
        axes = [pose.rotation_matrix.T for pose in in_query_frame]
        return register_scene(posed, observed, initial, observation, self.config.registration, axes)


def _occupancy_confidence(logits: np.ndarray) -> float:
    """Mean decoder probability over the occupied voxels, in [0, 1] (0 for an empty grid)."""
    occupied = logits > 0
    if not occupied.any():
        return 0.0
    return float(np.mean(1.0 / (1.0 + np.exp(-logits[occupied].astype(np.float64)))))


def _posed_bounds(mesh: Mesh, pose: Pose) -> np.ndarray:
    """[2, 3] min/max of the posed mesh (the posed unit asset box when the mesh is empty)."""
    if mesh.is_empty:
        corners = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
        points = pose.apply(corners)
    else:
        points = pose.apply(mesh.vertices)
    return np.stack([points.min(0), points.max(0)])


def _mask_box(mask: np.ndarray) -> np.ndarray:
    """[4] float64 (u_min, v_min, u_max, v_max) pixel box of a mask; NaN when empty."""
    rows, cols = np.nonzero(mask)
    if len(rows) == 0:
        return np.full(4, np.nan)
    return np.array([cols.min(), rows.min(), cols.max(), rows.max()], dtype=np.float64)


def _color_from_view(mesh: Mesh, pose: Pose, view: View, mask: np.ndarray) -> Mesh:
    """Per-vertex colours sampled from the image where a vertex projects into the object's mask,
    the object's median colour elsewhere (until TRELLIS stage 2 gives real textures)."""
    if mesh.is_empty:
        return mesh
    median = np.median(view.rgb[mask].reshape(-1, 3), axis=0) / 255.0 if mask.any() else np.full(3, 0.5)
    colors = np.tile(median, (len(mesh.vertices), 1))
    points = pose.apply(mesh.vertices)
    k = view.intrinsics
    in_front = points[:, 2] > 1e-6
    u = np.full(len(points), -1)
    v = np.full(len(points), -1)
    u[in_front] = np.round(k.fx * points[in_front, 0] / points[in_front, 2] + k.cx).astype(int)
    v[in_front] = np.round(k.fy * points[in_front, 1] / points[in_front, 2] + k.cy).astype(int)
    height, width = mask.shape
    inside = in_front & (u >= 0) & (u < width) & (v >= 0) & (v < height)
    inside[inside] = mask[v[inside], u[inside]]
    colors[inside] = view.rgb[v[inside], u[inside]] / 255.0
    return replace(mesh, vertex_colors=colors.astype(np.float32))
