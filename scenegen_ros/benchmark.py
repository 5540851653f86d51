"""Node overhead per result: the work `SceneGenNode` does between the pipeline's SceneResult and the
messages leaving it, timed on a synthetic result without a running node (needs the rclpy message
packages, not a ROS graph).

    python -m scenegen_ros.benchmark [--objects 4] [--faces 50000] [--repeats 5] [--json out.json]

Stages, in the node's order (`SceneGenNode._publish` for a metric result, parameters from
config/scenegen.yaml):

1. ``track``     - object centroids and sizes -> `ObjectTracker.update` (stable ids).
2. ``scene``     - `conversions.scene_result_to_msg` (scenegen_ros/Scene with every full mesh).
3. ``markers``   - `conversions.scene_to_markers` at marker_max_faces.
4. ``collision`` - `conversions.collision_shapes` (collision_geometry settings; the node runs it first) and
                   `conversions.scene_to_collision_objects` (skipped, 0 s,
                   when moveit_msgs is not importable).
5. ``serialize`` - `rclpy.serialization.serialize_message` of the Scene, the MarkerArray and each
                   CollisionObject: the Python -> C conversion and CDR serialisation that
                   `Publisher.publish` performs (transport excluded).

The synthetic result: `objects` closed UV-sphere meshes (ellipsoids of different radii) of
exactly `faces` triangles each (when `faces` / 2 factors into rings x segments, else the nearest
such count below), with vertex colours, placed 0.8-1.0 m in front of the camera. One warm-up
result, then `repeats` timed ones through the same tracker (a node's steady state: every object
matched); medians reported. The issue-11 target, 50 ms per result for 4 x 50k triangles on two
CPU cores, is printed beside the figure and never asserted in tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from builtin_interfaces.msg import Duration
from rclpy.serialization import serialize_message
from std_msgs.msg import Header

from scenegen_core.collision_geometry import CollisionGeometryConfig
from scenegen_core.types import Mesh, Pose, SceneObject, SceneResult, StageTiming
from scenegen_ros.conversions import collision_shapes, ns_to_stamp, scene_result_to_msg, scene_to_collision_objects, scene_to_markers
from scenegen_ros.parameters import config_from_values, load_defaults
from scenegen_ros.tracking import ObjectTracker

TARGET_SECONDS = 0.05  # issue 11: node overhead per result, 4 objects x 50k triangles, 2 CPU cores
STAGES = ("track", "scene", "markers", "collision", "serialize")


@dataclass(frozen=True)
class NodeBenchmarkConfig:
    """objects x faces: the synthetic result; marker_max_faces / collision_geometry /
    object_timeout_s / collision_object_db: the node's settings (defaults: config/scenegen.yaml);
    repeats: timed results after one warm-up."""

    objects: int
    faces: int
    marker_max_faces: int
    collision_geometry: CollisionGeometryConfig
    object_timeout_s: float
    collision_object_db: str
    repeats: int

    def __post_init__(self) -> None:
        for name in ("objects", "repeats"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.faces < 12:
            raise ValueError(f"faces must be >= 12 (the smallest UV sphere), got {self.faces}")

    @staticmethod
    def from_node_defaults(objects: int = 4, faces: int = 50_000, repeats: int = 5) -> "NodeBenchmarkConfig":
        node = config_from_values(load_defaults())
        return NodeBenchmarkConfig(
            objects, faces, node.marker_max_faces, node.collision_geometry_config(), node.object_timeout_s,
            node.collision_object_db, repeats,
        )


@dataclass(frozen=True)
class MessageSize:
    """One published message kind: how many per result and their serialised bytes in total."""

    kind: str
    count: int
    bytes: int


@dataclass(frozen=True)
class NodeBenchmarkResult:
    """Medians over the timed results: total_seconds wall and total_cpu_seconds process CPU time
    of all stages; stages: median wall seconds per stage in STAGES order; faces_per_object /
    vertices_per_object: the synthetic meshes; messages: what one result publishes."""

    config: NodeBenchmarkConfig
    faces_per_object: int
    vertices_per_object: int
    total_seconds: float
    total_cpu_seconds: float
    stages: tuple[StageTiming, ...]
    messages: tuple[MessageSize, ...]
    collision_available: bool
    target_seconds: float = TARGET_SECONDS

    @property
    def meets_target(self) -> bool:
        return self.total_seconds <= self.target_seconds


def _sphere_grid(faces: int) -> tuple[int, int]:
    """(bands, segments) of a UV sphere with 2 * segments * (bands - 1) <= faces triangles (two pole
    fans and bands - 2 rings of quads): the exact count when faces / 2 has a divisor near
    sqrt(faces / 4) (bands ~ segments / 2, cells about square)."""
    half = faces // 2
    target = np.sqrt(faces / 4)
    inner = [b for b in range(1, half // 3 + 1) if half % b == 0]
    quads = min(inner, key=lambda b: abs(b - target))  # bands - 1
    if abs(quads - target) > target / 2:  # no divisor near: nearest grid below the count
        quads = max(1, int(target))
    return quads + 1, max(3, half // quads)


def uv_sphere(faces: int, radii: Sequence[float] = (0.5, 0.5, 0.5)) -> Mesh:
    """Closed, consistently wound (outward) ellipsoid mesh in the asset box [-0.5, 0.5]^3 with about
    `faces` triangles (see `_sphere_grid`); vertex_colors a smooth gradient. Vertices: poles +
    (bands - 1) rings of `segments` vertices."""
    bands, segments = _sphere_grid(faces)
    theta = np.pi * np.arange(1, bands) / bands  # polar angle of each inner ring
    phi = 2 * np.pi * np.arange(segments) / segments
    ring = np.stack(
        [np.outer(np.sin(theta), np.cos(phi)), np.outer(np.sin(theta), np.sin(phi)), np.repeat(np.cos(theta)[:, None], segments, 1)],
        axis=-1,
    ).reshape(-1, 3)
    vertices = np.concatenate([[[0.0, 0.0, 1.0]], ring, [[0.0, 0.0, -1.0]]]) * np.asarray(radii)
    top, bottom = 0, len(vertices) - 1
    j = np.arange(segments)
    nxt = (j + 1) % segments
    tris = [np.stack([np.full(segments, top), 1 + j, 1 + nxt], 1)]
    for r in range(bands - 2):
        a, b = 1 + r * segments + j, 1 + r * segments + nxt
        c, d = a + segments, b + segments
        tris += [np.stack([a, c, d], 1), np.stack([a, d, b], 1)]
    last = 1 + (bands - 2) * segments
    tris.append(np.stack([np.full(segments, bottom), last + nxt, last + j], 1))
    colors = 0.5 + 0.5 * vertices / np.max(np.abs(vertices))
    return Mesh(vertices, np.concatenate(tris), colors)


def synthetic_result(objects: int, faces: int, seed: int = 0) -> SceneResult:
    """A metric SceneResult of `objects` ellipsoids of ~`faces` triangles in a row on a table
    0.8-1.0 m in front of a camera (optical frame: z forward), sizes 8-20 cm, each with up to 2000
    depth points on its near half (1 mm noise)."""
    rng = np.random.default_rng(seed)
    result_objects = []
    for k in range(objects):
        mesh = uv_sphere(faces, rng.uniform(0.3, 0.5, 3))
        translation = np.array([0.25 * (k - (objects - 1) / 2), 0.1, rng.uniform(0.8, 1.0)])
        pose = Pose(translation=translation, rotation_wxyz=np.array([1.0, 0.0, 0.0, 0.0]), scale=float(rng.uniform(0.08, 0.2)))
        box = np.array([[100.0 + 60 * k, 200.0, 150.0 + 60 * k, 260.0]])
        # Depth points as a camera sees them: the near half of the surface, 1 mm noise.
        surface = pose.apply(mesh.vertices)
        near = surface[surface[:, 2] < translation[2]]
        observed = near[rng.permutation(len(near))[:2000]] + rng.normal(0.0, 0.001, (min(len(near), 2000), 3))
        result_objects.append(
            SceneObject(index=k, mesh=mesh, pose=pose, pose_relative=Pose(), boxes_per_view=box, score=0.9,
                        observed_points=observed.astype(np.float32))
        )
    timings = tuple(StageTiming(name, 0.1) for name in ("prepare", "encode", "sample", "decode", "mesh", "place"))
    return SceneResult(tuple(result_objects), "cam0_optical_frame", 1_000_000_000, True, timings, "synthetic (node benchmark)")


def _collision_class():
    try:
        from moveit_msgs.msg import CollisionObject
    except ImportError:  # the node publishes no collision objects then either
        return None
    return CollisionObject


def _publish_once(result: SceneResult, tracker: ObjectTracker, now_s: float, config: NodeBenchmarkConfig, collision_cls):
    """One result through the node's publishing path; (stage seconds, messages)."""
    seconds = {}
    start = time.perf_counter()
    centroids = np.array([obj.pose.translation for obj in result.objects]).reshape(-1, 3)
    sizes = np.array([obj.size for obj in result.objects]).reshape(-1, 3)
    update = tracker.update(centroids, sizes, now_s)
    seconds["track"] = time.perf_counter() - start

    start = time.perf_counter()
    header = Header(stamp=ns_to_stamp(result.stamp_ns), frame_id=result.frame_id)
    scene = scene_result_to_msg(result, header, list(update.ids))
    seconds["scene"] = time.perf_counter() - start

    start = time.perf_counter()
    lifetime = Duration(sec=int(config.object_timeout_s), nanosec=int(config.object_timeout_s % 1 * 1e9))
    markers = scene_to_markers(scene, max_faces=config.marker_max_faces, lifetime=lifetime)
    seconds["markers"] = time.perf_counter() - start

    start = time.perf_counter()
    collisions = []
    if collision_cls is not None:
        shapes = collision_shapes(result, config.collision_geometry)
        collisions = scene_to_collision_objects(scene, shapes, collision_cls, db=config.collision_object_db)
    seconds["collision"] = time.perf_counter() - start

    start = time.perf_counter()
    sizes_out = [
        MessageSize("scenegen_ros/Scene", 1, len(serialize_message(scene))),
        MessageSize("visualization_msgs/MarkerArray", 1, len(serialize_message(markers))),
        MessageSize("moveit_msgs/CollisionObject", len(collisions), sum(len(serialize_message(c)) for c in collisions)),
    ]
    seconds["serialize"] = time.perf_counter() - start
    return seconds, tuple(sizes_out)


def run_node_benchmark(config: NodeBenchmarkConfig, seed: int = 0) -> NodeBenchmarkResult:
    """Time `config.repeats` results (after one warm-up) through the node's publishing path."""
    result = synthetic_result(config.objects, config.faces, seed)
    tracker = ObjectTracker(dataclasses.replace(config_from_values(load_defaults()).tracker_config(), object_timeout_s=config.object_timeout_s))
    collision_cls = _collision_class()
    _publish_once(result, tracker, 0.0, config, collision_cls)
    runs, totals, cpu_totals, messages = [], [], [], ()
    for k in range(config.repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        seconds, messages = _publish_once(result, tracker, 0.1 * (k + 1), config, collision_cls)
        totals.append(time.perf_counter() - start)
        cpu_totals.append(time.process_time() - start_cpu)
        runs.append(seconds)
    mesh = result.objects[0].mesh
    return NodeBenchmarkResult(
        config=config,
        faces_per_object=len(mesh.faces),
        vertices_per_object=len(mesh.vertices),
        total_seconds=statistics.median(totals),
        total_cpu_seconds=statistics.median(cpu_totals),
        stages=tuple(StageTiming(name, statistics.median(run[name] for run in runs)) for name in STAGES),
        messages=messages,
        collision_available=collision_cls is not None,
    )


def format_result(result: NodeBenchmarkResult) -> str:
    c = result.config
    verdict = "meets" if result.meets_target else "MISSES"
    lines = [
        f"node overhead per result: {c.objects} objects x {result.faces_per_object} triangles "
        f"({result.vertices_per_object} vertices), markers <= {c.marker_max_faces} faces, collision <= "
        f"{c.collision_geometry.kind} {c.collision_geometry.max_faces} faces{'' if result.collision_available else ' (moveit_msgs missing: skipped)'}, "
        f"median of {c.repeats}",
        f"total {result.total_seconds * 1e3:.1f} ms (cpu {result.total_cpu_seconds * 1e3:.1f} ms): {verdict} the "
        f"{result.target_seconds * 1e3:.0f} ms target",
        "  " + "  ".join(f"{s.name} {s.seconds * 1e3:.1f} ms" for s in result.stages),
        "  " + "  ".join(f"{m.kind} x{m.count} {m.bytes / 2**20:.2f} MiB" for m in result.messages),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=4)
    parser.add_argument("--faces", type=int, default=50_000, help="triangles per object")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the result as JSON to this path")
    args = parser.parse_args(argv)
    try:
        config = NodeBenchmarkConfig.from_node_defaults(args.objects, args.faces, args.repeats)
    except ValueError as error:
        parser.error(str(error))
    result = run_node_benchmark(config)
    print(format_result(result))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({**dataclasses.asdict(result), "meets_target": result.meets_target}, out, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
