"""CLI: generate a split of synthetic scenes on disk.

    python -m scenegen_core.world.generate --out DIR --split train --count N \
        [--start 0] [--cameras K] [--size 256] [--workers 2] [--idealised] [--held-out] \
        [--depth-noise off|d435]

Writes DIR/<split>/scene_<seed>/ (format in dataset.py) for the split's seeds
[lo + start, lo + start + count); existing complete scenes are skipped, so an interrupted run
can be resumed (with the same world config: scenes of another one stop the run). Prints the
mean per-scene time of each step at the end.

World: the realistic ``WorldConfig()`` (its held-out shape family never appears), or with
--idealised the first world (``WorldConfig.idealised()``: what the embedded default model was
trained on). --held-out writes the held-out family's test variant (every object of that family,
``WorldConfig.held_out_variant``) into DIR/<split>_held_out/ instead, so it never mixes with the
same seeds' ordinary scenes; evaluate it with ``evaluate --data DIR --split test_held_out``.
--depth-noise NAME records a depth sensor model (`sensor.py`) in the scenes' WorldConfig: the
stored renders stay exact and the noise is applied, deterministically from the seed, whenever
the scenes' views are produced (``SyntheticScene.views``; ``evaluate --depth-noise`` overrides it).
"""

from __future__ import annotations

import argparse
import multiprocessing
import pathlib
import sys
import time
from dataclasses import dataclass

from tqdm import tqdm

from scenegen_core.world.dataset import load_config, scene_dir_name, split_seeds, write_scene
from scenegen_core.world.ground_truth import compute_ground_truth
from scenegen_core.world.scene import WorldConfig, generate_scene
from scenegen_core.world.sensor import DEPTH_NOISE_PRESETS, depth_noise_preset


@dataclass(frozen=True)
class SceneTiming:
    """Seconds spent on one scene: generate (placement + rendering), ground_truth (grids, poses), write."""

    seed: int
    generate: float
    ground_truth: float
    write: float


def _make_one(job: tuple[int, WorldConfig, str]) -> SceneTiming:
    seed, config, out_dir = job
    t0 = time.perf_counter()
    scene = generate_scene(seed, config)
    t1 = time.perf_counter()
    ground_truth = compute_ground_truth(scene)
    t2 = time.perf_counter()
    write_scene(scene, out_dir, ground_truth)
    t3 = time.perf_counter()
    return SceneTiming(seed, t1 - t0, t2 - t1, t3 - t2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scenegen_core.world.generate", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=pathlib.Path, help="dataset root folder")
    parser.add_argument("--split", required=True, choices=["train", "val", "test"])
    parser.add_argument("--count", required=True, type=int, help="number of scenes")
    parser.add_argument("--start", default=0, type=int, help="offset of the first seed inside the split")
    parser.add_argument("--cameras", default=1, type=int, help="cameras per scene")
    parser.add_argument("--size", default=256, type=int, help="image width = height in pixels")
    parser.add_argument("--min-objects", default=WorldConfig.min_objects, type=int)
    parser.add_argument("--max-objects", default=WorldConfig.max_objects, type=int)
    parser.add_argument("--workers", default=1, type=int, help="worker processes")
    parser.add_argument("--idealised", action="store_true", help="the first world (WorldConfig.idealised())")
    parser.add_argument(
        "--held-out", action="store_true", help="only the held-out shape family, into DIR/<split>_held_out"
    )
    parser.add_argument(
        "--depth-noise",
        choices=["off", *DEPTH_NOISE_PRESETS],
        default="off",
        help="depth sensor model recorded in the world config (applied when views are produced)",
    )
    args = parser.parse_args(argv)

    try:
        fields = dict(
            min_objects=args.min_objects,
            max_objects=args.max_objects,
            num_cameras=args.cameras,
            image_width=args.size,
            image_height=args.size,
            depth_noise=depth_noise_preset(args.depth_noise),
        )
        if args.held_out:
            if args.idealised:
                raise ValueError("the idealised world has no held-out family: use --held-out without --idealised")
            fields["held_out_variant"] = True
        config = WorldConfig.idealised(**fields) if args.idealised else WorldConfig(**fields)
        seeds = split_seeds(args.split, args.count, args.start)
    except ValueError as error:
        parser.error(str(error))
    out_dir = args.out / (f"{args.split}_held_out" if args.held_out else args.split)
    todo = [s for s in seeds if not (out_dir / scene_dir_name(s) / "meta.json").is_file()]
    # Resuming must not mix worlds (e.g. idealised scenes left by an older run in the same folder).
    missing = set(todo)
    other = [s for s in seeds if s not in missing and load_config(out_dir / scene_dir_name(s)) != config]
    if other:
        parser.error(f"{len(other)} scenes in {out_dir} (e.g. seed {other[0]}) come from another world config; use another --out")
    jobs = [(seed, config, str(out_dir)) for seed in todo]
    print(f"{len(seeds) - len(todo)} of {len(seeds)} scenes already present; generating {len(todo)} into {out_dir}")

    start = time.perf_counter()
    timings: list[SceneTiming] = []
    if args.workers <= 1:
        results = map(_make_one, jobs)
        timings = list(tqdm(results, total=len(jobs), unit="scene"))
    else:
        # spawn, not fork: open3d's thread pools do not survive a fork reliably.
        with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
            timings = list(tqdm(pool.imap_unordered(_make_one, jobs, chunksize=4), total=len(jobs), unit="scene"))
    wall = time.perf_counter() - start
    if timings:
        n = len(timings)
        print(
            f"{n} scenes in {wall:.1f} s wall ({wall / n * 1000:.0f} ms/scene with {max(args.workers, 1)} workers); "
            f"per scene (one worker): generate {sum(t.generate for t in timings) / n * 1000:.0f} ms, "
            f"ground truth {sum(t.ground_truth for t in timings) / n * 1000:.0f} ms, "
            f"write {sum(t.write for t in timings) / n * 1000:.0f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
