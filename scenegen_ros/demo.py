"""Main job: synthetic camera -> real SceneGen node -> recorder, in one process over real DDS.

    python -m scenegen_ros.demo --out DIR [--seed S] [--scenes N] [--cameras K] [--steps N]
                                [--timeout S] [--domain-id D]

Starts the synthetic tabletop camera (scenegen_core.world: RGB, metric depth, CameraInfo, instance
masks), the real `scenegen_node` (continuous mode, parameters from config/scenegen.yaml) and a
recorder subscribed to `/scenegen_node/scene`, on one executor, on a private ROS domain restricted
to localhost. For each scene k received it writes DIR/scene_<k>.glb (posed meshes in the camera
optical frame) and DIR/overlay_<k>.png (the meshes drawn over the input image) and prints one line
per object. Exit status 0 after N scenes, 2 (with a message) when they do not arrive in time.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import queue
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
import rclpy
from PIL import Image as PILImage
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, Image

from scenegen_core.evaluation.visualization import overlay
from scenegen_core.export import write_scene_glb
from scenegen_ros.conversions import camera_info_to_intrinsics, object_color, scene_msg_to_result, stamp_to_ns
from scenegen_ros.image_conversion import image_msg_to_array
from scenegen_ros.msg import Scene
from scenegen_ros.node import SceneGenNode, SpinThread, spin_in_thread
from scenegen_ros.synthetic_camera import CameraTopics, SyntheticCameraNode

SCENE_TOPIC = "/scenegen_node/scene"
EXIT_TIMEOUT = 2

def private_domain_id(requested: int | None) -> int:
    """The ROS domain to use: `requested`, else $ROS_DOMAIN_ID, else one derived from the pid.
    Also keeps discovery on this machine (read by the RMW at rclpy.init)."""
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    if requested is None:
        requested = int(os.environ.get("ROS_DOMAIN_ID", 100 + os.getpid() % 100))
    if not 0 <= requested <= 232:
        raise ValueError(f"ROS domain id must be in [0, 232], got {requested}")
    return requested


@dataclass(frozen=True)
class RecordedScene:
    """A Scene message with view 0's input image ([H, W, 3] uint8) and CameraInfo."""

    scene: Scene
    rgb: np.ndarray
    camera_info: CameraInfo


class SceneRecorder(Node):
    """Keeps the last input images by stamp and queues every Scene together with its image."""

    def __init__(self, topics: CameraTopics, out: "queue.Queue[RecordedScene]", **node_kwargs) -> None:
        super().__init__("scenegen_demo_recorder", **node_kwargs)
        self._out = out
        self._images: dict[int, np.ndarray] = {}  # by stamp, ns
        self._info: CameraInfo | None = None
        self._lock = threading.Lock()
        qos = QoSProfile(depth=10)
        self.create_subscription(Image, topics.image, self._on_image, qos)
        self.create_subscription(CameraInfo, topics.camera_info, self._on_info, qos)
        self.create_subscription(Scene, SCENE_TOPIC, self._on_scene, qos)

    def _on_image(self, msg: Image) -> None:
        with self._lock:
            self._images[stamp_to_ns(msg.header.stamp)] = image_msg_to_array(msg)
            while len(self._images) > 50:
                self._images.pop(next(iter(self._images)))

    def _on_info(self, msg: CameraInfo) -> None:
        with self._lock:
            self._info = msg

    def _on_scene(self, msg: Scene) -> None:
        with self._lock:
            rgb = self._images.get(stamp_to_ns(msg.header.stamp))
            info = self._info
        if rgb is None or info is None:
            self.get_logger().warning("scene without its input image or CameraInfo; skipped")
            return
        self._out.put(RecordedScene(msg, rgb, info))


def object_lines(scene: Scene) -> list[str]:
    """One line per object: id, label, position and size (metres when metric), score."""
    unit = "m" if scene.metric else "(normalised units)"
    lines = []
    for obj in scene.objects:
        p, s = obj.pose.position, obj.size
        lines.append(
            f"id={obj.id} label={obj.label or '-'} position=({p.x:.3f}, {p.y:.3f}, {p.z:.3f}) {unit} "
            f"size=({s.x:.3f}, {s.y:.3f}, {s.z:.3f}) {unit} score={obj.score:.2f}"
        )
    return lines


def save_outputs(record: RecordedScene, index: int, out_dir: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """Write out_dir/scene_<index>.glb and out_dir/overlay_<index>.png; returns their paths."""
    result = scene_msg_to_result(record.scene)
    glb_path = out_dir / f"scene_{index}.glb"
    png_path = out_dir / f"overlay_{index}.png"
    write_scene_glb(result, glb_path)
    meshes = [obj.mesh_in_output_frame() for obj in result.objects]
    colors = np.array([object_color(obj.id) for obj in record.scene.objects]).reshape(-1, 3)
    picture = overlay(record.rgb, meshes, colors, camera_info_to_intrinsics(record.camera_info))
    PILImage.fromarray(picture).save(png_path)
    return glb_path, png_path


def node_overrides(cameras: int, steps: int | None) -> list[Parameter]:
    """scenegen_node parameters for the synthetic rig (the YAML topic defaults fit one camera).

    require_camera_info: the first images can overtake their CameraInfo; skipping such a set
    keeps every recorded scene metric. steps: sampler steps, None = the YAML default.
    """
    overrides = [Parameter("require_camera_info", value=True)]
    if steps is not None:
        overrides.append(Parameter("steps", value=steps))
    if cameras == 1:
        return overrides
    topics = CameraTopics.for_camera("{view}", cameras)
    return overrides + [
        Parameter("views", value=cameras),
        Parameter("image_topics", value=[topics.image]),
        Parameter("depth_topics", value=[topics.depth]),
        Parameter("camera_info_topics", value=[topics.camera_info]),
        Parameter("mask_topics", value=[topics.mask]),
    ]


def run(args: argparse.Namespace) -> int:
    domain_id = private_domain_id(args.domain_id)
    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    executor = MultiThreadedExecutor(num_threads=4, context=context)
    nodes: list[Node] = []
    spinner: SpinThread | None = None
    try:
        camera = SyntheticCameraNode(
            context=context,
            parameter_overrides=[
                Parameter("seed", value=args.seed), Parameter("cameras", value=args.cameras),
                Parameter("rate_hz", value=args.rate),
            ],
        )
        nodes.append(camera)
        print(f"[demo] ROS domain {domain_id}; synthetic scene seed {args.seed}: {len(camera.scene.objects)} objects "
              f"({', '.join(o.label for o in camera.scene.objects)})", flush=True)
        node = SceneGenNode(context=context, parameter_overrides=node_overrides(args.cameras, args.steps))
        nodes.append(node)
        print(f"[demo] model: {node.pipeline.description}", flush=True)
        received: queue.Queue[RecordedScene] = queue.Queue()
        nodes.append(SceneRecorder(CameraTopics.for_camera(0, args.cameras), received, context=context))
        for item in nodes:
            executor.add_node(item)
        spinner = spin_in_thread(executor)

        deadline = time.monotonic() + args.timeout
        for index in range(args.scenes):
            try:
                record = received.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                if spinner.error is not None:
                    print(f"[demo] ERROR: the ROS executor stopped: {spinner.error!r}", file=sys.stderr, flush=True)
                print(
                    f"[demo] ERROR: got {index} of {args.scenes} scenes within {args.timeout:.0f} s; "
                    "see the node's warnings above (/diagnostics has the details)",
                    file=sys.stderr, flush=True,
                )
                return EXIT_TIMEOUT
            glb_path, png_path = save_outputs(record, index, out_dir)
            timings = ", ".join(f"{t.name} {t.seconds:.2f} s" for t in record.scene.timings)
            print(f"[demo] scene {index}: {len(record.scene.objects)} objects in frame "
                  f"'{record.scene.header.frame_id}' (metric={record.scene.metric}); {timings}", flush=True)
            for line in object_lines(record.scene):
                print(line, flush=True)
            print(f"[demo] wrote {glb_path} and {png_path}", flush=True)
        print(f"[demo] done: {args.scenes} scene(s) in {out_dir}", flush=True)
        return 0
    finally:
        executor.shutdown()
        if spinner is not None:
            spinner.join()
        for item in reversed(nodes):
            item.destroy_node()
        rclpy.try_shutdown(context=context)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scenegen_ros.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output directory for scene_<k>.glb and overlay_<k>.png")
    parser.add_argument("--seed", type=int, default=0, help="synthetic scene seed (default 0)")
    parser.add_argument("--scenes", type=int, default=1, help="scenes to record before exiting (default 1)")
    parser.add_argument("--cameras", type=int, default=1, help="synthetic cameras = node views (default 1)")
    parser.add_argument(
        "--steps", type=int, default=None,
        help="flow sampler steps (default: config/scenegen.yaml's; fewer is faster on CPU)",
    )
    parser.add_argument("--rate", type=float, default=2.0, help="camera rate, Hz (default 2)")
    parser.add_argument("--timeout", type=float, default=100.0, help="give up after this many seconds (default 100)")
    parser.add_argument("--domain-id", type=int, default=None, help="ROS domain (default $ROS_DOMAIN_ID or 100 + pid %% 100)")
    args = parser.parse_args(argv)
    if args.scenes < 1 or args.cameras < 1 or not args.timeout > 0 or not args.rate > 0:
        parser.error("--scenes and --cameras must be >= 1, --timeout and --rate > 0")
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    """Console script `scenegen_demo`."""
    sys.exit(run(parse_args(argv)))


if __name__ == "__main__":
    main()
