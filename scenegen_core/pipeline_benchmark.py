"""End-to-end time of the pipeline per object count, stage by stage, on synthetic RGB-D scenes.

    python -m scenegen_core.pipeline_benchmark --objects 1 2 4 8 [--repeats 3] [--threads 2]
        [--model-path DIR] [--steps 25] [--registration similarity] [--json out.json]

Scenes: the idealised world (what the embedded default was trained on), 256 x 256, one camera with
depth and true masks, the first test-split seed whose scene holds exactly N objects. One warm-up
run, then `repeats` timed runs; the median of each stage (`SceneResult.timings`) and of the wall
time of `SceneGenPipeline.run` is reported. A benchmark, not a test: the speed targets live here.
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
class PipelineTiming:
    """objects: N; seed: the scene's world seed; total_s: median wall time of one run, seconds;
    stages: median seconds per stage name, in pipeline order."""

    objects: int
    seed: int
    total_s: float
    stages: dict[str, float]


def scene_with(objects: int, size: int = 256, max_tries: int = 200) -> tuple[int, View]:
    """(seed, view 0) of the first test-split scene of the idealised world with exactly `objects` objects."""
    config = WorldConfig.idealised(min_objects=objects, max_objects=objects, image_width=size, image_height=size)
    for seed in split_seeds("test", max_tries):
        scene = generate_scene(seed, config)
        if len(scene.objects) == objects:
            return seed, scene.views()[0]
    raise ValueError(f"no test-split scene with exactly {objects} objects in the first {max_tries} seeds")


def time_pipeline(pipeline: SceneGenPipeline, objects: int, repeats: int, size: int = 256) -> PipelineTiming:
    """Median stage and total times of `pipeline` on the scene of `scene_with(objects)`."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    seed, view = scene_with(objects, size)
    pipeline.run([view])  # warm-up: first-call allocations and kernel selection
    totals, stages = [], {}
    for _ in range(repeats):
        start = time.perf_counter()
        result = pipeline.run([view])
        totals.append(time.perf_counter() - start)
        for timing in result.timings:
            stages.setdefault(timing.name, []).append(timing.seconds)
    return PipelineTiming(objects, seed, statistics.median(totals), {k: statistics.median(v) for k, v in stages.items()})


def format_timings(timings: Sequence[PipelineTiming], description: str) -> str:
    names = list(timings[0].stages) if timings else []
    lines = [description, f"{'N':>3} {'seed':>8} {'total s':>8} " + " ".join(f"{n:>8}" for n in names)]
    for t in timings:
        lines.append(f"{t.objects:>3} {t.seed:>8} {t.total_s:>8.2f} " + " ".join(f"{t.stages.get(n, 0.0):>8.2f}" for n in names))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--model-path", default="", help="bundle or official weights directory; '' = embedded default")
    parser.add_argument("--untrained", action="store_true", help="the tiny random-weight network (tests)")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--registration", choices=sorted(REGISTRATION_MODES), default="similarity")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="also write the timings as JSON to this path")
    args = parser.parse_args(argv)
    if min(args.objects) < 1 or args.repeats < 1:
        parser.error(f"--objects and --repeats must be >= 1, got {args.objects} and {args.repeats}")
    if args.threads:
        torch.set_num_threads(args.threads)
    config = PipelineConfig(
        model_path=args.model_path, untrained=args.untrained, steps=args.steps, device=args.device,
        registration=REGISTRATION_MODES[args.registration],
    )
    pipeline = SceneGenPipeline(config)
    timings = [time_pipeline(pipeline, n, args.repeats) for n in args.objects]
    description = (
        f"pipeline: {pipeline.description}; steps {args.steps}, registration {args.registration}, device {args.device}, "
        f"{torch.get_num_threads()} torch thread(s), median of {args.repeats}"
    )
    print(format_timings(timings, description))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"description": description, "timings": [dataclasses.asdict(t) for t in timings]}, out, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
