"""End-to-end time of the pipeline per object count, stage by stage, on synthetic RGB-D scenes.

    python -m scenegen_core.pipeline_benchmark --objects 1 2 4 8 [--views 1] [--repeats 3] [--threads 2]
        [--model-path DIR] [--steps 25] [--cache-interval 1] [--compile] [--registration similarity]
        [--json out.json]

Scenes: the idealised world (what the embedded default was trained on), 256 x 256, `views` cameras
with depth and true masks, the first test-split seed whose scene holds exactly N objects, each
visible in every camera. One warm-up run, then `repeats` timed runs; the median of each stage
(`SceneResult.timings`) and of the wall time of `SceneGenPipeline.run` is reported. A benchmark,
not a test: the speed targets live here. `scenegen_core.benchmark` builds on `scene_with` and
`time_runs` for its sizes x object counts x views matrix.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from dataclasses import dataclass
from typing import Sequence

import torch

from scenegen_core.pipeline import PipelineConfig, SceneGenPipeline
from scenegen_core.registration import REGISTRATION_MODES
from scenegen_core.types import View
from scenegen_core.world.dataset import split_seeds
from scenegen_core.world.scene import WorldConfig, generate_scene


@dataclass(frozen=True)
class RunTiming:
    """Medians over the timed runs: total_s wall and total_cpu_s process CPU seconds (all threads;
    on a shared CPU the wall time grows with other load, the CPU time much less) of one
    `SceneGenPipeline.run`; stages: seconds per stage name, in pipeline order."""

    total_s: float
    total_cpu_s: float
    stages: dict[str, float]


@dataclass(frozen=True)
class PipelineTiming:
    """objects: N; views: cameras used; seed: the scene's world seed; total_s / total_cpu_s /
    stages: see RunTiming."""

    objects: int
    views: int
    seed: int
    total_s: float
    total_cpu_s: float
    stages: dict[str, float]


def scene_with(objects: int, size: int = 256, views: int = 1, max_tries: int = 200) -> tuple[int, tuple[View, ...]]:
    """(seed, its `views` views) of the first test-split scene of the idealised world with exactly
    `objects` objects, every one visible in every view (so the pipeline keeps all views)."""
    config = WorldConfig.idealised(
        min_objects=objects, max_objects=objects, num_cameras=views, image_width=size, image_height=size
    )
    for seed in split_seeds("test", max_tries):
        scene = generate_scene(seed, config)
        if len(scene.objects) != objects:
            continue
        scene_views = tuple(scene.views())
        if all(v.masks.reshape(len(v.masks), -1).any(1).all() for v in scene_views):
            return seed, scene_views
    raise ValueError(
        f"no test-split scene with exactly {objects} objects visible in {views} view(s) in the first {max_tries} seeds"
    )


def time_runs(pipeline: SceneGenPipeline, views: Sequence[View], repeats: int) -> RunTiming:
    """One warm-up `pipeline.run(views)` (first-call allocations, kernel selection, compilation),
    then the medians of `repeats` timed runs."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    pipeline.run(views)
    totals, cpu_totals, stages = [], [], {}
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = pipeline.run(views)
        totals.append(time.perf_counter() - start)
        cpu_totals.append(time.process_time() - start_cpu)
        for timing in result.timings:
            stages.setdefault(timing.name, []).append(timing.seconds)
    return RunTiming(
        statistics.median(totals), statistics.median(cpu_totals), {k: statistics.median(v) for k, v in stages.items()}
    )


def time_pipeline(pipeline: SceneGenPipeline, objects: int, repeats: int, size: int = 256, views: int = 1) -> PipelineTiming:
    """Median stage and total times of `pipeline` on the scene of `scene_with(objects, size, views)`."""
    seed, scene_views = scene_with(objects, size, views)
    timing = time_runs(pipeline, scene_views, repeats)
    return PipelineTiming(objects, views, seed, timing.total_s, timing.total_cpu_s, timing.stages)


def format_timings(timings: Sequence[PipelineTiming], description: str) -> str:
    names = list(timings[0].stages) if timings else []
    header = f"{'N':>3} {'V':>2} {'seed':>8} {'total s':>8} {'cpu s':>7} " + " ".join(f"{n:>8}" for n in names)
    lines = [description, header]
    for t in timings:
        lines.append(
            f"{t.objects:>3} {t.views:>2} {t.seed:>8} {t.total_s:>8.2f} {t.total_cpu_s:>7.2f} "
            + " ".join(f"{t.stages.get(n, 0.0):>8.2f}" for n in names)
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--views", type=int, default=1, help="cameras per scene")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--model-path", default="", help="bundle or official weights directory; '' = embedded default")
    parser.add_argument("--untrained", action="store_true", help="the tiny random-weight network (tests)")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--rescale-t", type=float, default=3.0)
    parser.add_argument("--cache-interval", type=int, default=1, help="step caching: the model runs every k-th step")
    parser.add_argument("--compile", action="store_true", help="torch.compile the flow model (warmed up first)")
    parser.add_argument("--registration", choices=sorted(REGISTRATION_MODES), default="similarity")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="also write the timings as JSON to this path")
    args = parser.parse_args(argv)
    if min(args.objects) < 1 or args.repeats < 1 or args.views < 1:
        parser.error(f"--objects, --views and --repeats must be >= 1, got {args.objects}, {args.views} and {args.repeats}")
    if args.threads:
        torch.set_num_threads(args.threads)
    config = PipelineConfig(
        model_path=args.model_path, untrained=args.untrained, steps=args.steps, rescale_t=args.rescale_t,
        cache_interval=args.cache_interval, compile_flow=args.compile, device=args.device,
        registration=REGISTRATION_MODES[args.registration],
    )
    pipeline = SceneGenPipeline(config)
    if args.compile:
        pipeline.warm_up()
    timings = [time_pipeline(pipeline, n, args.repeats, views=args.views) for n in args.objects]
    description = (
        f"pipeline: {pipeline.description}; steps {args.steps}, rescale_t {args.rescale_t}, cache interval "
        f"{args.cache_interval}, compile {args.compile}, registration {args.registration}, device {args.device}, "
        f"{torch.get_num_threads()} torch thread(s), median of {args.repeats}"
    )
    print(format_timings(timings, description))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"description": description, "timings": [dataclasses.asdict(t) for t in timings]}, out, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
