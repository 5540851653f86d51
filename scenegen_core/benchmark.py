"""Speed, memory and FLOPs of SceneGen inference: the whole pipeline per object count and view
count, stage by stage, and the SS flow model's guided step.

    python -m scenegen_core.benchmark [--size default|tiny|small|full] [--objects 1 2 4 8] [--views 1 2 4]
        [--steps 25] [--device cpu|cuda] [--dtype auto|fp32|fp16|bf16] [--encoder-dtype ...]
        [--compile] [--cache-interval 1] [--attention auto|math] [--grad-mode inference|no_grad]
        [--no-batch-passes] [--repeats 3] [--threads T] [--json out.json] [--plot out.png]

    # the official full-size configuration on one GPU, random weights (no download):
    python -m scenegen_core.benchmark --size full --device cuda --dtype bf16 --json full.json --plot full.png

Sizes: ``default`` = the embedded trained bundle (the CPU model; real geometry, so the mesh and
place stages are representative); ``tiny`` = the untrained test network; ``small`` = flow R 8,
C 256, 4 blocks with 518 px encoders of C 256, 4 layers; ``full`` = the released architecture
(DINOv2 ViT-L/14-reg, VGGT-1B aggregator, SS flow and decoder). tiny / small / full have random
weights: encode, sample and decode cost the same as with trained weights. A random decoder would
decode noise (~60% of the 64^3 grid in a sponge of ~1M triangles, tens of seconds of mesh
simplification per object, which no trained model produces), so its last convolution is set to
a constant positive logit (`solid_decoder_output`): every object decodes to its full grid, a
closed box of ~49k triangles at 64^3, as many as a real object's surface. The mesh and place
times of these sizes are therefore those of boxes, not of real shapes.

Per cell (N objects, V views; scenes of `pipeline_benchmark.scene_with`, 256 px, depth and true
masks): one warm-up `SceneGenPipeline.run`, then `repeats` timed runs; medians of the wall time,
of the process CPU time (all threads: on a shared CPU the wall time grows with other load, the CPU
time much less) and of each stage (`SceneResult.timings`, CUDA-synchronised). With V = the first
view count, also the flow model's guided step (conditional + unconditional pass as the sampler
runs them, after one warm-up step; median of `repeats`).

Memory above a baseline taken once the models and the scene exist (weights excluded):
CUDA: ``torch.cuda.max_memory_allocated`` - allocated at baseline (caching-allocator view).
CPU: peak resident set size (VmHWM) - VmRSS at baseline, peak reset through
``/proc/self/clear_refs``; each cell runs in a fresh process (``--isolate``, default on CPU) so
memory the allocator kept from a previous cell cannot hide the growth. None where the platform
offers neither.

FLOPs are analytic, matmul and convolution FLOPs only (2 per multiply-add), counted from the
architecture; norms, activations, softmax, RoPE and elementwise ops are excluded. encode =
DINOv2 on V (2N + 1) images + VGGT on V frames; sample = `SamplerConfig.model_passes(V)` flow
forwards over N objects; decode = the SS decoder on N latents. The test suite checks every
formula against ``torch.utils.flop_counter.FlopCounterMode``. Achieved TFLOP/s = FLOPs / median
seconds. ``peak_tflops`` (``--peak-tflops``, or known for a few GPUs by name) is the dense
fp16/bf16 peak; ``x peak`` = seconds / (FLOPs / peak), 1.0 being the hardware limit.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from scenegen_core.bundle import DEFAULT_BUNDLE_DIR, load_bundle
from scenegen_core.checkpoints import LoadedModels
from scenegen_core.models.dinov2 import DinoEncoder, DinoEncoderConfig
from scenegen_core.models.ss_decoder import SSDecoder, SSDecoderConfig
from scenegen_core.models.ss_flow import SSFlowConfig, SSFlowModel
from scenegen_core.models.vggt.aggregator import VGGTAggregator, VGGTAggregatorConfig
from scenegen_core.pipeline import PRECISIONS, PipelineConfig, SceneGenPipeline, resolve_half_dtype, untrained_default_models
from scenegen_core.pipeline_benchmark import scene_with, time_runs
from scenegen_core.runtime import synchronize
from scenegen_core.sampler import FlowEulerSampler, SamplerConfig

SIZES = ("default", "tiny", "small", "full")
STAGES_WITH_FLOPS = ("encode", "sample", "decode")
GRAD_MODES = {"inference": torch.inference_mode, "no_grad": torch.no_grad}
# Dense fp16/bf16 tensor-core peaks (TFLOP/s, no sparsity) from the vendors' data sheets, matched
# against torch.cuda.get_device_name in this order (the PCIe H100 before the SXM one).
KNOWN_PEAK_TFLOPS = (("H100 PCIe", 756.0), ("H100", 989.4), ("H200", 989.4), ("A100", 312.0), ("L40S", 362.1))

FLOPS_FORMULA = (
    "flow forward, N objects, C channels, T patch tokens, S = T + 1 + n_reg, L context tokens "
    "(Lo object tokens), F = mlp_ratio*C, Cin/Cout = latent channels * p^3, P = pose dim: "
    "2NT*Cin*C + 2N(256C + C^2) + 2NT*C*Cout "
    "+ blocks * [2N*9C^2 (adaLN) + 2NT*4C^2 + 4NT^2*C (self) + 2NT*2C^2 + 2N*Lo*2C^2 + 4NT*Lo*C (object cross) "
    "+ 2NS*4C^2 + 4(NS)^2*C (global) + 2NS*2C^2 + 2NL*2C^2 + 4NS*L*C (scene cross) + 4NT*C*F (mlp)] "
    "+ iterations * [2N*P*C + trunk * (2N*6C^2 + 2N*4C^2 + 4NC + 4NC*F) + 2N(C^2/2 + C/2*P)]; "
    "ViT layer over T tokens: 8TC^2 + 4T^2*C + 4TC*F; DINOv2 image: 2*patches*3p^2*C + layers * ViT(T); "
    "VGGT, V frames: V * DINOv2(frame) + depth * (V * ViT(T) + ViT(V*T)); "
    "decoder conv3d k^3 = 27: 2 * voxels * Cout * Cin * 27 per conv"
)


# ----------------------------------------------------------------------------- sizes


@dataclass(frozen=True)
class BenchmarkSize:
    """A named model size: the four networks' configs (random weights unless name is 'default')."""

    name: str
    flow: SSFlowConfig
    decoder: SSDecoderConfig
    dino: DinoEncoderConfig
    vggt: VGGTAggregatorConfig

    @property
    def context_tokens(self) -> int:
        """Conditioning tokens per object: 3 DINOv2 images + 2 VGGT halves (conditioning.py)."""
        return 3 * self.dino.num_tokens + 2 * self.vggt.tokens_per_frame

    @staticmethod
    def of(name: str, models: LoadedModels) -> "BenchmarkSize":
        return BenchmarkSize(name, models.ss_flow.config, models.ss_decoder.config, models.dino.config, models.vggt.config)


def _small_configs(precision: dict) -> tuple:
    """'small' keeps the released R = 16 out: at R 16 one guided step for 8 objects is ~13 TFLOP,
    hours of 25-step sampling on a 2-core CPU; R 8 (512 patch tokens) is ~20x cheaper. The
    encoders keep the released 518 px (1374 tokens per image), so the context length is real."""
    flow = SSFlowConfig(resolution=8, model_channels=256, cond_channels=256, num_blocks=4, num_heads=4, trunk_depth=2, **precision)
    decoder = SSDecoderConfig(num_res_blocks=1, channels=(128, 64, 32), **precision)
    dino = DinoEncoderConfig(hidden_size=256, num_layers=4, num_heads=4)
    vggt = VGGTAggregatorConfig.sized(img_size=518, embed_dim=256, depth=4, num_heads=4)
    return flow, decoder, dino, vggt


def solid_decoder_output(decoder: SSDecoder) -> None:
    """Make a random-weight decoder output logit +1 everywhere (weights of its last conv zeroed,
    bias 1): same computation, but every object decodes to its full grid (module docstring)."""
    conv = decoder.out_layer[-1]
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.fill_(1.0)


def load_benchmark_models(size: str, dtype: str = "fp32", device: str = "cpu", seed: int = 0) -> LoadedModels:
    """The networks of a named size on `device`. dtype: PipelineConfig.dtype of the flow and
    decoder torso. Random weights are drawn on the device itself (fast for the full size on a GPU);
    their decoder outputs solid grids (`solid_decoder_output`)."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {list(SIZES)}, got {size!r}")
    if dtype not in PRECISIONS:
        raise ValueError(f"dtype must be one of {PRECISIONS}, got {dtype!r}")
    dev = torch.device(device)
    half = resolve_half_dtype(dtype, dev)
    if size == "default":
        return load_bundle(DEFAULT_BUNDLE_DIR, device=dev, half_dtype=half)
    if size == "tiny":
        models = untrained_default_models(seed, str(dev), half)
        solid_decoder_output(models.ss_decoder)
        return models
    precision = dict(use_fp16=half is not None, half_dtype=half or "float16")
    if size == "small":
        flow, decoder, dino, vggt = _small_configs(precision)
    else:
        flow = dataclasses.replace(SSFlowConfig.full(), **precision)
        decoder = dataclasses.replace(SSDecoderConfig.full(), **precision)
        dino, vggt = DinoEncoderConfig.full(), VGGTAggregatorConfig.full()
    with torch.random.fork_rng(devices=[]), torch.device(dev):
        torch.manual_seed(seed)
        modules = [SSFlowModel(flow), SSDecoder(decoder), VGGTAggregator(vggt), DinoEncoder(dino)]
    modules = [m.to(dev).eval().requires_grad_(False) for m in modules]
    solid_decoder_output(modules[1])
    return LoadedModels(*modules, sampler=None, files=(), description=f"random weights, size {size} (benchmark)")


# ----------------------------------------------------------------------------- FLOPs


def flow_forward_flops(config: SSFlowConfig, n_objects: int, context_tokens: int) -> int:
    """Matmul FLOPs of one `SSFlowModel` forward pass over one scene of N objects (FLOPS_FORMULA)."""
    n, c, t = n_objects, config.model_channels, config.num_patch_tokens
    s = t + config.num_special_tokens
    lc, lo = context_tokens, config.object_context_tokens
    f = int(c * config.mlp_ratio)
    cin, cout = config.in_channels * config.patch_size**3, config.out_channels * config.patch_size**3
    head = config.position_head
    p = head.pose_dim
    io = 2 * n * t * cin * c + 2 * n * (256 * c + c * c) + 2 * n * t * c * cout
    block = (
        2 * n * 9 * c * c
        + 2 * n * t * 4 * c * c + 4 * n * t * t * c
        + 2 * n * t * 2 * c * c + 2 * n * lo * 2 * c * c + 4 * n * t * lo * c
        + 2 * n * s * 4 * c * c + 4 * (n * s) ** 2 * c
        + 2 * n * s * 2 * c * c + 2 * n * lc * 2 * c * c + 4 * n * s * lc * c
        + 4 * n * t * c * f
    )
    trunk_block = 2 * n * 6 * c * c + 2 * n * 4 * c * c + 4 * n * c + 4 * n * c * f
    iteration = 2 * n * p * c + head.trunk_depth * trunk_block + 2 * n * (c * (c // 2) + (c // 2) * p)
    return io + config.num_blocks * block + head.num_iteration * iteration


def vit_layer_flops(tokens: int, channels: int, mlp_ratio: float) -> int:
    """One pre-norm ViT layer over a sequence of `tokens` tokens: q/k/v/out projections, the two
    attention matmuls and the MLP."""
    t, c, f = tokens, channels, int(channels * mlp_ratio)
    return 8 * t * c * c + 4 * t * t * c + 4 * t * c * f


def dino_forward_flops(config: DinoEncoderConfig, images: int) -> int:
    """`DinoEncoder` on `images` images at config.image_size: patch embedding + layers."""
    patches = (config.image_size // config.patch_size) ** 2
    embed = 2 * patches * 3 * config.patch_size**2 * config.hidden_size
    return images * (embed + config.num_layers * vit_layer_flops(config.num_tokens, config.hidden_size, config.mlp_ratio))


def vggt_forward_flops(config: VGGTAggregatorConfig, frames: int) -> int:
    """`VGGTAggregator` on one scene of `frames` square frames at config.img_size: the DINOv2
    patch embedder per frame, then per depth step a frame block on each frame and a global block
    over all frames' tokens together."""
    backbone = config.backbone
    patches = (backbone.img_size // backbone.patch_size) ** 2
    backbone_tokens = 1 + backbone.num_register_tokens + patches
    embed = 2 * patches * 3 * backbone.patch_size**2 * backbone.embed_dim
    per_frame = embed + backbone.depth * vit_layer_flops(backbone_tokens, backbone.embed_dim, backbone.mlp_ratio)
    t, c = config.tokens_per_frame, config.embed_dim
    blocks = config.depth * (frames * vit_layer_flops(t, c, config.mlp_ratio) + vit_layer_flops(frames * t, c, config.mlp_ratio))
    return frames * per_frame + blocks


def decoder_forward_flops(config: SSDecoderConfig, n_objects: int, grid: int) -> int:
    """`SSDecoder` on N latents of edge `grid`: every conv3d (3x3x3, same padding) as
    2 * output voxels * Cout * Cin * 27."""
    def conv(edge: int, cin: int, cout: int) -> int:
        return 2 * edge**3 * cout * cin * 27

    ch = config.channels
    total = conv(grid, config.latent_channels, ch[0]) + config.num_res_blocks_middle * 2 * conv(grid, ch[0], ch[0])
    edge = grid
    for level, width in enumerate(ch):
        total += config.num_res_blocks * 2 * conv(edge, width, width)
        if level + 1 < len(ch):
            total += conv(edge, width, 8 * ch[level + 1])
            edge *= 2
    total += conv(edge, ch[-1], config.out_channels)
    return n_objects * total


@dataclass(frozen=True)
class StageFlops:
    """Analytic FLOPs of the pipeline stages that run networks (see FLOPS_FORMULA)."""

    encode: int
    sample: int
    decode: int

    def of(self, stage: str) -> int | None:
        """FLOPs of a stage by its `SceneResult.timings` name; None for stages without networks."""
        return getattr(self, stage) if stage in STAGES_WITH_FLOPS else None


def stage_flops(size: BenchmarkSize, sampler: SamplerConfig, n_objects: int, n_views: int) -> StageFlops:
    """FLOPs of encode / sample / decode for N objects seen in V views."""
    return StageFlops(
        encode=dino_forward_flops(size.dino, n_views * (2 * n_objects + 1)) + vggt_forward_flops(size.vggt, n_views),
        sample=sampler.model_passes(n_views) * flow_forward_flops(size.flow, n_objects, size.context_tokens),
        decode=decoder_forward_flops(size.decoder, n_objects, size.flow.resolution),
    )


def peak_tflops_for(device: torch.device, override: float | None = None) -> float | None:
    """Dense fp16/bf16 peak of `device` (TFLOP/s): `override`, else KNOWN_PEAK_TFLOPS by GPU name."""
    if override is not None:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in KNOWN_PEAK_TFLOPS if key in name), None)


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class StageFigures:
    """One pipeline stage: median wall seconds; analytic FLOPs and achieved TFLOP/s (None for the
    stages without networks: prepare, mesh, place)."""

    name: str
    seconds: float
    flops: int | None
    tflops_per_s: float | None


@dataclass(frozen=True)
class FlowStepResult:
    """One guided flow step over N objects (conditional + unconditional pass): median wall and
    process-CPU seconds, FLOPs (2 forwards), achieved TFLOP/s, memory in bytes above the baseline."""

    objects: int
    seconds: float
    cpu_seconds: float
    flops: int
    tflops_per_s: float
    peak_bytes: int | None


@dataclass(frozen=True)
class CellResult:
    """The pipeline on one scene of N objects and V views (see module docstring)."""

    objects: int
    views: int
    seed: int
    total_seconds: float
    total_cpu_seconds: float
    stages: tuple[StageFigures, ...]
    baseline_bytes: int | None
    peak_bytes: int | None
    flow_step: FlowStepResult | None

    def stage(self, name: str) -> StageFigures:
        return next(s for s in self.stages if s.name == name)

    @staticmethod
    def from_json(data: dict) -> "CellResult":
        step = data["flow_step"]
        return CellResult(**{
            **data,
            "stages": tuple(StageFigures(**s) for s in data["stages"]),
            "flow_step": None if step is None else FlowStepResult(**step),
        })


@dataclass(frozen=True)
class BenchmarkSettings:
    """What was run (the CLI flags); see `main` for each one's meaning."""

    size: str
    device: str
    dtype: str
    encoder_dtype: str
    steps: int
    rescale_t: float
    cache_interval: int
    compile: bool
    attention: str
    grad_mode: str
    batch_passes: bool
    repeats: int
    image_size: int
    threads: int | None

    def pipeline_config(self) -> PipelineConfig:
        return PipelineConfig(
            device=self.device, dtype=self.dtype, encoder_dtype=self.encoder_dtype, steps=self.steps,
            rescale_t=self.rescale_t, cache_interval=self.cache_interval, compile_flow=self.compile,
        )


@dataclass(frozen=True)
class BenchmarkReport:
    settings: BenchmarkSettings
    description: str
    device_name: str
    torch_version: str
    torch_threads: int
    memory_method: str
    flops_formula: str
    peak_tflops: float | None
    configs: dict
    cells: tuple[CellResult, ...]

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------- measuring


class _MemoryProbe:
    """Peak memory above a baseline (module docstring explains both methods)."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.device = device
        self.baseline: int | None = None

    @staticmethod
    def _proc_status_kib(field: str) -> int | None:
        try:
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith(field + ":"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def reset(self) -> None:
        if self.cuda:
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.baseline = torch.cuda.memory_allocated(self.device)
            return
        try:
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")  # resets VmHWM to the current RSS
        except OSError:
            self.baseline = None
            return
        self.baseline = self._proc_status_kib("VmRSS")

    def peak(self) -> int | None:
        if self.baseline is None:
            return None
        if self.cuda:
            synchronize(self.device)
            return torch.cuda.max_memory_allocated(self.device) - self.baseline
        hwm = self._proc_status_kib("VmHWM")
        return None if hwm is None else max(0, hwm - self.baseline)


def memory_method(device: torch.device) -> str:
    if device.type == "cuda":
        return "cuda max_memory_allocated minus allocated at baseline (weights and inputs excluded)"
    return "process VmHWM minus VmRSS at baseline, peak reset via /proc/self/clear_refs (weights and inputs excluded)"


def _timed(fn: Callable[[], object], device: torch.device) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process over all threads) of one call, GPU work included."""
    synchronize(device)
    start, start_cpu = time.perf_counter(), time.process_time()
    fn()
    synchronize(device)
    return time.perf_counter() - start, time.process_time() - start_cpu


@contextlib.contextmanager
def attention_backend(name: str) -> Iterator[None]:
    """"auto": torch picks the SDPA kernel (flash / memory-efficient / fused CPU); "math": the
    unfused reference (the 'before' of fused attention)."""
    if name == "auto":
        yield
    elif name == "math":
        with sdpa_kernel(SDPBackend.MATH):
            yield
    else:
        raise ValueError(f"attention must be auto or math, got {name!r}")


def measure_flow_step(
    pipeline: SceneGenPipeline,
    size: BenchmarkSize,
    n_objects: int,
    repeats: int,
    grad_mode: str = "inference",
    batch_passes: bool = True,
    seed: int = 0,
) -> FlowStepResult:
    """Median time of one guided step of the pipeline's flow model (compiled when it is) over N
    objects, the passes run by `FlowEulerSampler.passes`; inputs random, context of real length."""
    dev = pipeline.device
    cfg = size.flow
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n_objects, cfg.in_channels, cfg.resolution, cfg.resolution, cfg.resolution, generator=gen).to(dev)
    cond = torch.randn(n_objects, size.context_tokens, cfg.cond_channels, generator=gen).to(dev)
    t = torch.full((n_objects,), 1000.0, device=dev)
    sampler = FlowEulerSampler(SamplerConfig(batch_passes=batch_passes))

    def guided_step() -> None:
        with GRAD_MODES[grad_mode]():
            sampler.passes(pipeline.flow_model, x, t, [cond, torch.zeros_like(cond)])

    probe = _MemoryProbe(dev)
    probe.reset()
    _timed(guided_step, dev)  # warm-up, also the memory reading
    peak = probe.peak()
    times = [_timed(guided_step, dev) for _ in range(repeats)]
    seconds = statistics.median(wall for wall, _ in times)
    flops = 2 * flow_forward_flops(cfg, n_objects, size.context_tokens)
    return FlowStepResult(n_objects, seconds, statistics.median(cpu for _, cpu in times), flops, flops / seconds / 1e12, peak)


def measure_cell(
    pipeline: SceneGenPipeline, size: BenchmarkSize, settings: BenchmarkSettings, n_objects: int, n_views: int, flow_step: bool
) -> CellResult:
    """The pipeline on the `scene_with(n_objects, views=n_views)` scene (and the flow step when asked)."""
    with attention_backend(settings.attention):
        step = measure_flow_step(pipeline, size, n_objects, settings.repeats, settings.grad_mode, settings.batch_passes) if flow_step else None
        seed, views = scene_with(n_objects, settings.image_size, n_views)
        probe = _MemoryProbe(pipeline.device)
        probe.reset()
        timing = time_runs(pipeline, views, settings.repeats)
        peak = probe.peak()
    flops = stage_flops(size, pipeline.config.sampler, n_objects, n_views)
    stages = tuple(
        StageFigures(name, seconds, flops.of(name), None if flops.of(name) is None else flops.of(name) / seconds / 1e12)
        for name, seconds in timing.stages.items()
    )
    return CellResult(n_objects, n_views, seed, timing.total_s, timing.total_cpu_s, stages, probe.baseline, peak, step)


def build_pipeline(
    settings: BenchmarkSettings, objects: Sequence[int], views: Sequence[int]
) -> tuple[SceneGenPipeline, BenchmarkSize]:
    """The pipeline of `settings`; with compile, warmed up for the object and view counts to come
    (counts from 3 on share one graph, see `SceneGenPipeline.warm_up`), so compilation stays out
    of every timed number."""
    models = load_benchmark_models(settings.size, settings.dtype, settings.device)
    pipeline = SceneGenPipeline(settings.pipeline_config(), models=models)
    if settings.compile:
        for v in sorted(set(views)):
            pipeline.warm_up(sorted({min(n, 3) for n in objects}), v)
    return pipeline, BenchmarkSize.of(settings.size, models)


def _worker_argv(settings: BenchmarkSettings, n_objects: int, n_views: int, flow_step: bool) -> list[str]:
    argv = [
        "--size", settings.size, "--device", settings.device, "--dtype", settings.dtype,
        "--encoder-dtype", settings.encoder_dtype, "--steps", str(settings.steps), "--rescale-t", str(settings.rescale_t),
        "--cache-interval", str(settings.cache_interval), "--attention", settings.attention,
        "--grad-mode", settings.grad_mode, "--repeats", str(settings.repeats), "--image-size", str(settings.image_size),
        "--objects", str(n_objects), "--views", str(n_views), "--worker",
    ]
    argv += ["--compile"] if settings.compile else []
    argv += [] if settings.batch_passes else ["--no-batch-passes"]
    argv += ["--threads", str(settings.threads)] if settings.threads else []
    argv += [] if flow_step else ["--no-flow-step"]
    return argv


def _measure_isolated(settings: BenchmarkSettings, n_objects: int, n_views: int, flow_step: bool) -> tuple[CellResult, str]:
    """`measure_cell` in a fresh Python process (clean allocator state for the memory reading)."""
    cmd = [sys.executable, "-m", "scenegen_core.benchmark", *_worker_argv(settings, n_objects, n_views, flow_step)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ}, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark worker for N={n_objects}, V={n_views} failed:\n{proc.stderr[-4000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return CellResult.from_json(data["cell"]), data["description"]


def run_benchmark(
    settings: BenchmarkSettings,
    objects: Sequence[int],
    views: Sequence[int] = (1,),
    isolate: bool | None = None,
    peak_tflops: float | None = None,
) -> BenchmarkReport:
    """Every (object count, view count) cell; isolate (default: on CPU) runs each in its own process."""
    if not objects or not views or min(objects) < 1 or min(views) < 1:
        raise ValueError(f"object and view counts must be >= 1, got {list(objects)} and {list(views)}")
    if settings.repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {settings.repeats}")
    dev = torch.device(settings.device)
    isolate = dev.type == "cpu" if isolate is None else isolate
    if isolate:  # the models here only name the configs; every cell builds its own in its process
        models = load_benchmark_models(settings.size, settings.dtype, settings.device)
        size, description, pipeline = BenchmarkSize.of(settings.size, models), models.description, None
        del models
    else:
        pipeline, size = build_pipeline(settings, objects, views)
        description = pipeline.description
    cells = []
    for n in objects:
        for k, v in enumerate(views):
            if pipeline is None:
                cell, description = _measure_isolated(settings, n, v, flow_step=k == 0)
            else:
                cell = measure_cell(pipeline, size, settings, n, v, flow_step=k == 0)
            cells.append(cell)
    return BenchmarkReport(
        settings=settings,
        description=description,
        device_name=torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        torch_version=torch.__version__,
        torch_threads=torch.get_num_threads(),
        memory_method=memory_method(dev) + ("; fresh process per cell" if isolate else ""),
        flops_formula=FLOPS_FORMULA,
        peak_tflops=peak_tflops_for(dev, peak_tflops),
        configs={name: dataclasses.asdict(getattr(size, name)) for name in ("flow", "decoder", "dino", "vggt")},
        cells=tuple(cells),
    )


# ----------------------------------------------------------------------------- output


def _mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.0f}"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def format_report(report: BenchmarkReport) -> str:
    """Human-readable tables of a report: pipeline cells, then flow steps."""
    s = report.settings
    peak = report.peak_tflops
    lines = [
        f"SceneGen benchmark: {report.description}",
        f"size={s.size} device={s.device} ({report.device_name}) dtype={s.dtype} encoder_dtype={s.encoder_dtype} "
        f"steps={s.steps} rescale_t={s.rescale_t} cache_interval={s.cache_interval} compile={s.compile} "
        f"attention={s.attention} torch {report.torch_version}, {report.torch_threads} thread(s), median of {s.repeats}",
        f"memory: {report.memory_method}; peak {peak if peak is not None else 'unknown'} TFLOP/s",
    ]
    names = [st.name for st in report.cells[0].stages] if report.cells else []
    lines.append(
        f"{'N':>3} {'V':>2} {'total s':>8} {'cpu s':>7} " + " ".join(f"{n:>8}" for n in names)
        + f" {'enc TF/s':>9} {'smp TF/s':>9} {'smp xpk':>8} {'peak MiB':>9}"
    )
    for c in report.cells:
        sample = c.stage("sample")
        ratio = "-" if peak is None or sample.flops is None else f"{sample.seconds / (sample.flops / peak / 1e12):.2f}"
        lines.append(
            f"{c.objects:>3} {c.views:>2} {c.total_seconds:>8.3f} {c.total_cpu_seconds:>7.2f} "
            + " ".join(f"{st.seconds:>8.3f}" for st in c.stages)
            + f" {_rate(c.stage('encode').tflops_per_s):>9} {_rate(sample.tflops_per_s):>9} {ratio:>8} {_mib(c.peak_bytes):>9}"
        )
    steps = [c.flow_step for c in report.cells if c.flow_step is not None]
    if steps:
        lines.append(f"flow guided step ({'batched' if s.batch_passes else 'two calls'}, grad mode {s.grad_mode}):")
        lines.append(f"{'N':>3} {'step s':>9} {'cpu s':>8} {'TFLOP':>9} {'TF/s':>8} {'x peak':>7} {'MiB':>7}")
        for st in steps:
            ratio = "-" if peak is None else f"{st.seconds / (st.flops / peak / 1e12):.2f}"
            lines.append(
                f"{st.objects:>3} {st.seconds:>9.4f} {st.cpu_seconds:>8.4f} {st.flops / 1e12:>9.4f} "
                f"{st.tflops_per_s:>8.3g} {ratio:>7} {_mib(st.peak_bytes):>7}"
            )
    return "\n".join(lines)


def plot_report(report: BenchmarkReport, path: str) -> None:
    """PNG with three panels: stage seconds per cell (stacked), achieved TFLOP/s of the encode and
    sample stages against N, peak memory against N (one line per view count)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    cells = report.cells
    names = [st.name for st in cells[0].stages]
    views = sorted({c.views for c in cells})
    fig, (ax_time, ax_rate, ax_mem) = plt.subplots(1, 3, figsize=(16, 4.8))
    labels = [f"N{c.objects} V{c.views}" for c in cells]
    bottom = [0.0] * len(cells)
    for name in names:
        heights = [c.stage(name).seconds for c in cells]
        ax_time.bar(labels, heights, bottom=bottom, label=name)
        bottom = [b + h for b, h in zip(bottom, heights)]
    ax_time.set_ylabel("seconds (median)")
    ax_time.set_title("stage time per scene")
    ax_time.tick_params(axis="x", rotation=60)
    ax_time.legend(fontsize=8)
    for i, v in enumerate(views):
        row = [c for c in cells if c.views == v]
        n = [c.objects for c in row]
        ax_rate.plot(n, [c.stage("sample").tflops_per_s for c in row], "o-", color=f"C{i}", label=f"sample, V={v}")
        ax_rate.plot(n, [c.stage("encode").tflops_per_s for c in row], "s--", color=f"C{i}", label=f"encode, V={v}")
        ax_mem.plot(n, [(c.peak_bytes or 0) / 2**20 for c in row], "o-", color=f"C{i}", label=f"V={v}")
    if report.peak_tflops:
        ax_rate.axhline(report.peak_tflops, color="k", lw=0.8, ls=":", label="dense peak")
    ax_rate.set_xlabel("objects")
    ax_rate.set_ylabel("achieved TFLOP/s (analytic FLOPs)")
    ax_rate.legend(fontsize=8)
    ax_mem.set_xlabel("objects")
    ax_mem.set_ylabel("peak MiB above weights")
    ax_mem.legend(fontsize=8)
    s = report.settings
    fig.suptitle(f"SceneGen {s.size} on {report.device_name}, {s.dtype}/{s.encoder_dtype}, {s.steps} steps, torch {report.torch_version}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=SIZES, default="default")
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--views", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--rescale-t", type=float, default=3.0)
    parser.add_argument("--cache-interval", type=int, default=1, help="step caching: the model runs every k-th step")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=PRECISIONS, default="auto", help="flow and decoder torso")
    parser.add_argument("--encoder-dtype", choices=PRECISIONS, default=None, help="DINOv2 and VGGT (default: --dtype)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the flow model (warmed up, untimed)")
    parser.add_argument("--attention", choices=("auto", "math"), default="auto", help="math: unfused SDPA reference")
    parser.add_argument("--grad-mode", choices=sorted(GRAD_MODES), default="inference", help="of the flow step")
    parser.add_argument("--no-batch-passes", dest="batch_passes", action="store_false",
                        help="flow step as two calls instead of one scene-batched forward")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per cell (median reported)")
    parser.add_argument("--image-size", type=int, default=256, help="synthetic camera pixels (square)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=None,
                        help="one process per cell (default: on for cpu)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="dense fp16/bf16 peak of the device")
    parser.add_argument("--json", help="write the report as JSON to this path")
    parser.add_argument("--plot", help="write a PNG plot to this path")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-flow-step", dest="flow_step", action="store_false", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.objects) < 1 or min(args.views) < 1 or args.repeats < 1:
        parser.error(f"--objects, --views and --repeats must be >= 1, got {args.objects}, {args.views}, {args.repeats}")
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = BenchmarkSettings(
        size=args.size, device=args.device, dtype=args.dtype, encoder_dtype=args.encoder_dtype or args.dtype,
        steps=args.steps, rescale_t=args.rescale_t, cache_interval=args.cache_interval, compile=args.compile,
        attention=args.attention, grad_mode=args.grad_mode, batch_passes=args.batch_passes, repeats=args.repeats,
        image_size=args.image_size, threads=args.threads,
    )
    if args.worker:
        pipeline, size = build_pipeline(settings, args.objects[:1], args.views[:1])
        cell = measure_cell(pipeline, size, settings, args.objects[0], args.views[0], args.flow_step)
        print(json.dumps({"cell": dataclasses.asdict(cell), "description": pipeline.description}))
        return 0
    report = run_benchmark(settings, args.objects, args.views, args.isolate, args.peak_tflops)
    print(format_report(report))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(report.to_json(), out, indent=2)
    if args.plot:
        plot_report(report, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
