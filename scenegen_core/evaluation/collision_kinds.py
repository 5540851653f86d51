"""How well each collision-geometry kind covers the true objects, given their TRUE shapes.

    python -m scenegen_core.evaluation.collision_kinds --split test --scenes 100 [--kinds box mesh ...]
        [--padding 0.005] [--out collision_kinds.json]

Each object's true mesh (camera 0 frame, metres) and its depth points (true mask, view 0) go
through `collision_geometry`; the parts are voxelized like the robotics metrics
(`metrics.voxelize`, 4 mm). Per kind: completeness = true volume covered / true volume, false
occupancy = covered volume outside the true object / covered volume, seconds per object, and
whether every part was closed and manifold and contained every depth point. The world is the
default (realistic) one; scenes are regenerated from their split's seeds, not read from disk.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from scenegen_core.collision_geometry import COLLISION_KINDS, CollisionGeometryConfig, collision_geometry, contains_points
from scenegen_core.evaluation.evaluate import gt_meshes_in_camera
from scenegen_core.evaluation.metrics import VoxelBlock, voxelize
from scenegen_core.mesh_ops import is_closed_manifold
from scenegen_core.placement import back_project
from scenegen_core.world import SPLITS, WorldConfig, generate_scene, split_seeds


@dataclass(frozen=True)
class KindScores:
    """Means over objects (fractions in [0, 1], seconds per object); valid = fraction of objects
    whose parts were all closed manifolds containing every depth point."""

    kind: str
    objects: int
    completeness: float
    false_occupancy: float
    seconds: float
    valid: float


def score_object(gt_mesh, points: np.ndarray, config: CollisionGeometryConfig, voxel_size: float = 0.004) -> tuple[float, float, float, bool]:
    """(completeness, false occupancy, seconds, valid) of one object's collision geometry."""
    start = time.perf_counter()
    geometry = collision_geometry(gt_mesh, points, config)
    seconds = time.perf_counter() - start
    covered = VoxelBlock.union([voxelize(part, voxel_size) for part in geometry.parts], voxel_size)
    truth = voxelize(gt_mesh, voxel_size)
    inside = truth.intersection_volume(covered)
    completeness = inside / truth.volume if truth.volume else float("nan")
    false_occupancy = (covered.volume - inside) / covered.volume if covered.volume else float("nan")
    valid = contains_points(geometry, points, config.padding_m) and all(is_closed_manifold(p) for p in geometry.parts)
    return completeness, false_occupancy, seconds, valid


def evaluate_kinds(seeds, kinds, config: CollisionGeometryConfig, world: WorldConfig, min_points: int = 20) -> list[KindScores]:
    """KindScores per kind over every object with at least min_points depth points in the scenes of `seeds`."""
    rows = {kind: [] for kind in kinds}
    for seed in seeds:
        scene = generate_scene(int(seed), world)
        view = scene.views()[0]
        for mesh, mask in zip(gt_meshes_in_camera(scene), view.masks):
            points = back_project(view.depth, mask, view.intrinsics)
            if len(points) < min_points:
                continue
            for kind in kinds:
                rows[kind].append(score_object(mesh, points, replace(config, kind=kind)))
    out = []
    for kind, values in rows.items():
        v = np.array(values, dtype=np.float64).reshape(-1, 4)
        out.append(KindScores(kind, len(v), *(float(np.nanmean(v[:, c])) if len(v) else float("nan") for c in range(4))))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scenegen_core.evaluation.collision_kinds", description=__doc__.split("\n")[0])
    parser.add_argument("--split", default="test", choices=SPLITS)
    parser.add_argument("--scenes", type=int, default=100, help="first N seeds of the split (>= 1)")
    parser.add_argument("--kinds", nargs="+", default=list(COLLISION_KINDS), choices=COLLISION_KINDS)
    parser.add_argument("--padding", type=float, default=0.0, help="padding_m, metres")
    parser.add_argument("--max-faces", type=int, default=500)
    parser.add_argument("--out", help="write the table as JSON here")
    args = parser.parse_args(argv)
    if args.scenes < 1:
        parser.error(f"--scenes must be >= 1, got {args.scenes}")
    config = CollisionGeometryConfig(padding_m=args.padding, max_faces=args.max_faces)
    seeds = split_seeds(args.split, args.scenes)
    scores = evaluate_kinds(seeds, args.kinds, config, WorldConfig())
    print(f"{'kind':22s} {'objects':>7s} {'compl':>6s} {'false occ':>9s} {'s/object':>8s} {'valid':>6s}")
    for s in scores:
        print(f"{s.kind:22s} {s.objects:7d} {s.completeness:6.3f} {s.false_occupancy:9.3f} {s.seconds:8.3f} {s.valid:6.3f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"split": args.split, "scenes": args.scenes, "config": asdict(config), "kinds": [asdict(s) for s in scores]}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
