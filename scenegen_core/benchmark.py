"""Speed / memory / FLOPs of the SS flow model: one CFG step and a full CFG sampling run per object count.

    python -m scenegen_core.benchmark --size small --objects 1 2 4 8 --steps 25 --device cpu --dtype fp32 \
        [--json out.json]

Weights are random (speed does not depend on their values); the context has the real pipeline's
token count, 5 x object_context_tokens (object DINOv2, mask DINOv2, scene DINOv2, 2 x VGGT halves).

Measured per N:
* ``step_seconds`` / ``step_cpu_seconds``: median wall / process-CPU time of one guided step = conditional + unconditional forward pass
  (what every step inside the CFG interval costs), after one warm-up step.
* ``sampling_seconds`` / ``sampling_cpu_seconds``: one full `FlowEulerSampler` run with the given steps (default interval/cfg).
* Memory above a baseline taken after the model and inputs exist (so weights are excluded):
  CUDA: ``torch.cuda.max_memory_allocated`` - allocated at baseline (caching-allocator view).
  CPU: peak resident set size (VmHWM) - VmRSS at baseline, with the peak reset through
  ``/proc/self/clear_refs``; each N runs in a fresh process (``--isolate``, default on CPU) so memory
  the allocator kept from a previous N cannot hide the growth. ``step_peak_bytes`` is read after the
  warm-up step, ``sampling_peak_bytes`` after everything (the peak of the whole measurement).
  None where the platform offers neither.

FLOPs are analytic (`flow_forward_flops`): matmul FLOPs only (2 per multiply-add), counted from
the architecture; norms, activations, softmax and elementwise ops are excluded. The test suite
checks the formula against ``torch.utils.flop_counter.FlopCounterMode`` on the tiny model.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from scenegen_core.models.ss_flow import SSFlowConfig, SSFlowModel
from scenegen_core.sampler import FlowEulerSampler, SamplerConfig

CONTEXT_PARTS = 5  # object DINO, mask DINO, scene DINO, VGGT frame half, VGGT global half
DTYPES = {"fp32": (False, "float16"), "fp16": (True, "float16"), "bf16": (True, "bfloat16")}

FLOPS_FORMULA = (
    "per forward, N objects, C channels, T patch tokens, S = T + 1 + n_reg, L context tokens "
    "(Lo object tokens), F = mlp_ratio*C, Cin/Cout = latent channels * p^3, P = pose dim: "
    "2NT*Cin*C + 2N(256C + C^2) + 2NT*C*Cout "
    "+ blocks * [2N*9C^2 (adaLN) + 2NT*4C^2 + 4NT^2*C (self) + 2NT*2C^2 + 2N*Lo*2C^2 + 4NT*Lo*C (object cross) "
    "+ 2NS*4C^2 + 4(NS)^2*C (global) + 2NS*2C^2 + 2NL*2C^2 + 4NS*L*C (scene cross) + 4NT*C*F (mlp)] "
    "+ iterations * [2N*P*C + trunk * (2N*6C^2 + 2N*4C^2 + 4NC + 4NC*F) + 2N(C^2/2 + C/2*P)]; "
    "a guided step = 2 forwards"
)


@dataclass(frozen=True)
class BenchmarkSize:
    """A named model size and its context length (tokens per object)."""

    name: str
    flow: SSFlowConfig
    context_tokens: int


def benchmark_size(name: str, dtype: str = "fp32") -> BenchmarkSize:
    """'tiny' (R 8, C 64, 2 blocks), 'small' (R 8, C 256, 4 blocks, 4 heads, trunk 2), 'full' (released).

    'small' keeps the released R = 16 out: at R 16 one guided step for 8 objects is ~13 TFLOP, hours
    of 25-step sampling on a 2-core CPU; R 8 (512 patch tokens) is ~20x cheaper."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    use_fp16, half = DTYPES[dtype]
    configs = {
        "tiny": SSFlowConfig.tiny(),
        "small": SSFlowConfig(resolution=8, model_channels=256, cond_channels=256, num_blocks=4, num_heads=4, trunk_depth=2),
        "full": SSFlowConfig.full(),
    }
    if name not in configs:
        raise ValueError(f"size must be one of {sorted(configs)}, got {name!r}")
    flow = dataclasses.replace(configs[name], use_fp16=use_fp16, half_dtype=half)
    return BenchmarkSize(name, flow, CONTEXT_PARTS * flow.object_context_tokens)


def flow_forward_flops(config: SSFlowConfig, n_objects: int, context_tokens: int) -> int:
    """Matmul FLOPs of one `SSFlowModel` forward pass (see FLOPS_FORMULA)."""
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


@dataclass(frozen=True)
class ObjectCountResult:
    """Numbers for one object count. Times in seconds (wall, and CPU time of the process summed over
    its threads: on a shared CPU the wall time grows with other load, the CPU time much less),
    memory in bytes above the baseline."""

    objects: int
    step_seconds: float
    step_cpu_seconds: float
    sampling_seconds: float
    sampling_cpu_seconds: float
    step_flops: int
    sampling_flops: int
    baseline_bytes: int | None
    step_peak_bytes: int | None
    sampling_peak_bytes: int | None


@dataclass(frozen=True)
class BenchmarkReport:
    size: str
    device: str
    dtype: str
    steps: int
    context_tokens: int
    torch_version: str
    memory_method: str
    flops_formula: str
    config: dict
    results: tuple[ObjectCountResult, ...]

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


class _MemoryProbe:
    """Peak memory above a baseline (module docstring explains both methods)."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
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
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.baseline = torch.cuda.memory_allocated()
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
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() - self.baseline
        hwm = self._proc_status_kib("VmHWM")
        return None if hwm is None else max(0, hwm - self.baseline)


def memory_method(device: torch.device) -> str:
    if device.type == "cuda":
        return "cuda max_memory_allocated minus allocated at baseline (weights and inputs excluded)"
    return "process VmHWM minus VmRSS at baseline, peak reset via /proc/self/clear_refs (weights and inputs excluded)"


def _timed(fn: Callable[[], object], device: torch.device) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process over all threads) of one call."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start, start_cpu = time.perf_counter(), time.process_time()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, time.process_time() - start_cpu


def measure(size: BenchmarkSize, n_objects: int, steps: int, device: str, repeats: int = 3, seed: int = 0) -> ObjectCountResult:
    """Benchmark one object count in this process (see module docstring for what is measured)."""
    dev = torch.device(device)
    torch.manual_seed(seed)
    cfg = size.flow
    # Random init is fine for speed; requires_grad off keeps autograd bookkeeping out of the numbers.
    model = SSFlowModel(cfg).to(dev).eval().requires_grad_(False)
    gen = torch.Generator().manual_seed(seed)
    shape = (n_objects, cfg.in_channels, cfg.resolution, cfg.resolution, cfg.resolution)
    x = torch.randn(shape, generator=gen).to(dev)
    cond = torch.randn(n_objects, size.context_tokens, cfg.cond_channels, generator=gen).to(dev)
    uncond = torch.zeros_like(cond)
    t = torch.full((n_objects,), 1000.0, device=dev)
    sampler = FlowEulerSampler(SamplerConfig(steps=steps))

    @torch.no_grad()
    def guided_step() -> None:
        model(x, t, cond)
        model(x, t, uncond)

    probe = _MemoryProbe(dev)
    probe.reset()
    _timed(guided_step, dev)  # warm-up, also the memory reading of one step
    step_peak = probe.peak()
    step_times = [_timed(guided_step, dev) for _ in range(repeats)]
    sampling_seconds, sampling_cpu_seconds = _timed(lambda: sampler.sample(model, cond, x), dev)
    forward = flow_forward_flops(cfg, n_objects, size.context_tokens)
    return ObjectCountResult(
        objects=n_objects,
        step_seconds=statistics.median(wall for wall, _ in step_times),
        step_cpu_seconds=statistics.median(cpu for _, cpu in step_times),
        sampling_seconds=sampling_seconds,
        sampling_cpu_seconds=sampling_cpu_seconds,
        step_flops=2 * forward,
        sampling_flops=sampler.config.model_passes() * forward,
        baseline_bytes=probe.baseline,
        step_peak_bytes=step_peak,
        sampling_peak_bytes=probe.peak(),
    )


def _measure_isolated(size: str, dtype: str, n_objects: int, steps: int, device: str, repeats: int) -> ObjectCountResult:
    """`measure` in a fresh Python process (clean allocator state for the memory reading)."""
    cmd = [sys.executable, "-m", "scenegen_core.benchmark", "--worker", "--size", size, "--dtype", dtype,
           "--objects", str(n_objects), "--steps", str(steps), "--device", device, "--repeats", str(repeats)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ}, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark worker for N={n_objects} failed:\n{proc.stderr[-4000:]}")
    return ObjectCountResult(**json.loads(proc.stdout.strip().splitlines()[-1]))


def run_benchmark(
    size: str,
    objects: Sequence[int],
    steps: int = 25,
    device: str = "cpu",
    dtype: str = "fp32",
    repeats: int = 3,
    isolate: bool | None = None,
) -> BenchmarkReport:
    """Benchmark every object count; isolate (default: on CPU) runs each N in its own process."""
    spec = benchmark_size(size, dtype)
    if any(n < 1 for n in objects):
        raise ValueError(f"object counts must be >= 1, got {list(objects)}")
    isolate = torch.device(device).type == "cpu" if isolate is None else isolate
    results = tuple(
        _measure_isolated(size, dtype, n, steps, device, repeats) if isolate else measure(spec, n, steps, device, repeats)
        for n in objects
    )
    return BenchmarkReport(
        size=size,
        device=device,
        dtype=dtype,
        steps=steps,
        context_tokens=spec.context_tokens,
        torch_version=torch.__version__,
        memory_method=memory_method(torch.device(device)) + ("; fresh process per N" if isolate else ""),
        flops_formula=FLOPS_FORMULA,
        config=dataclasses.asdict(spec.flow),
        results=results,
    )


def format_report(report: BenchmarkReport) -> str:
    """Human-readable table of a report."""
    mib = lambda b: "n/a" if b is None else f"{b / 2**20:.0f}"  # noqa: E731
    lines = [
        f"SS flow benchmark: size={report.size} device={report.device} dtype={report.dtype} steps={report.steps} "
        f"context={report.context_tokens} tokens, torch {report.torch_version}",
        f"memory: {report.memory_method}",
        f"{'N':>3} {'step s':>9} {'step cpu s':>10} {'step TFLOP':>10} {'step MiB':>9} {'sampling s':>11} "
        f"{'sampling cpu s':>14} {'sampling TFLOP':>14} {'sampling MiB':>12}",
    ]
    for r in report.results:
        lines.append(
            f"{r.objects:>3} {r.step_seconds:>9.3f} {r.step_cpu_seconds:>10.3f} {r.step_flops / 1e12:>10.3f} "
            f"{mib(r.step_peak_bytes):>9} {r.sampling_seconds:>11.2f} {r.sampling_cpu_seconds:>14.2f} "
            f"{r.sampling_flops / 1e12:>14.3f} {mib(r.sampling_peak_bytes):>12}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=("tiny", "small", "full"), default="small")
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    parser.add_argument("--repeats", type=int, default=3, help="timed guided steps per N (median reported)")
    parser.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=None,
                        help="one process per N (default: on for cpu)")
    parser.add_argument("--json", help="also write the report as JSON to this path")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        result = measure(benchmark_size(args.size, args.dtype), args.objects[0], args.steps, args.device, args.repeats)
        print(json.dumps(dataclasses.asdict(result)))
        return 0
    report = run_benchmark(args.size, args.objects, args.steps, args.device, args.dtype, args.repeats, args.isolate)
    print(format_report(report))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(report.to_json(), out, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
