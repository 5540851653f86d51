"""`synthetic_camera`: publishes a synthetic tabletop scene (scenegen_core.world) as a RGB-D camera rig.

For each camera k (prefix ``camera`` for a single camera, ``camera{k}`` otherwise) it publishes,
with one shared header stamp per tick and frame id ``cam{k}_optical_frame``:

* ``<prefix>/color/image_raw``                  sensor_msgs/Image rgb8
* ``<prefix>/aligned_depth_to_color/image_raw`` sensor_msgs/Image 32FC1, metres (0 = no hit)
* ``<prefix>/color/camera_info``                sensor_msgs/CameraInfo (pinhole, no distortion)
* ``<prefix>/instances/image_raw``              sensor_msgs/Image mono16, 0 = background/table,
  i + 1 = object i (objects in SceneGen order: object 0 has the largest mask in camera 0)

The scene is static: it is rendered once and re-stamped at ``rate_hz``. These topic names are the
defaults of config/scenegen.yaml for one view and of its ``{view}`` pattern for several.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rclpy.executors import SingleThreadedExecutor
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from scenegen_core.types import CameraIntrinsics
from scenegen_core.world.scene import SyntheticScene, WorldConfig, generate_scene
from scenegen_ros.image_conversion import array_to_image_msg
from scenegen_ros.node import run_node

NODE_NAME = "synthetic_camera"


@dataclass(frozen=True)
class CameraTopics:
    """Topic names and optical frame of one synthetic camera."""

    image: str
    depth: str
    camera_info: str
    mask: str
    frame_id: str

    @classmethod
    def for_camera(cls, index: int | str, count: int) -> "CameraTopics":
        """Topics of camera `index` of `count`; index "{view}" gives the node's per-view pattern."""
        prefix = "camera" if count == 1 else f"camera{index}"
        return cls(
            image=f"{prefix}/color/image_raw",
            depth=f"{prefix}/aligned_depth_to_color/image_raw",
            camera_info=f"{prefix}/color/camera_info",
            mask=f"{prefix}/instances/image_raw",
            frame_id=f"cam{index}_optical_frame",
        )


@dataclass(frozen=True)
class CameraFrame:
    """The messages of one camera for one tick (stamps filled in at publish time)."""

    image: Image
    depth: Image
    camera_info: CameraInfo
    mask: Image


def intrinsics_to_camera_info(intrinsics: CameraIntrinsics, header: Header) -> CameraInfo:
    """Pinhole CameraInfo (plumb_bob, zero distortion, R = I, P = [K | 0]) for rectified images."""
    k = intrinsics.matrix
    return CameraInfo(
        header=header,
        width=intrinsics.width,
        height=intrinsics.height,
        distortion_model="plumb_bob",
        d=[0.0] * 5,
        k=k.reshape(-1).tolist(),
        r=np.eye(3).reshape(-1).tolist(),
        p=np.hstack([k, np.zeros((3, 1))]).reshape(-1).tolist(),
    )


def instance_ids_to_mono16(instance_ids: np.ndarray) -> np.ndarray:
    """Scene instance ids ([H, W] int32: object index, or < 0 for table/background) -> [H, W]
    uint16 with 0 = not an object and i + 1 = object i."""
    ids = np.asarray(instance_ids)
    return np.where(ids >= 0, ids + 1, 0).astype(np.uint16)


def scene_frames(scene: SyntheticScene) -> list[CameraFrame]:
    """The messages of every camera of a scene (frame ids set, stamps zero)."""
    frames = []
    count = len(scene.cameras)
    for index, (camera, render) in enumerate(zip(scene.cameras, scene.renders)):
        header = Header(frame_id=CameraTopics.for_camera(index, count).frame_id)
        frames.append(
            CameraFrame(
                image=array_to_image_msg(render.rgb, "rgb8", header),
                depth=array_to_image_msg(render.depth.astype(np.float32), "32FC1", header),
                camera_info=intrinsics_to_camera_info(camera.intrinsics, header),
                mask=array_to_image_msg(instance_ids_to_mono16(render.instance_ids), "mono16", header),
            )
        )
    return frames


class SyntheticCameraNode(Node):
    """Publishes one generated scene from every camera at a fixed rate with matching stamps.

    Parameters: seed (int), cameras (int), width / height (pixels), min_objects / max_objects,
    rate_hz (Hz), world (preset name).
    """

    def __init__(self, **node_kwargs) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        def declare(name: str, default, description: str):
            return self.declare_parameter(name, default, ParameterDescriptor(description=description, read_only=True)).value

        seed = declare("seed", 0, "scene seed (scenegen_core.world.generate_scene): same seed, same scene")
        cameras = declare("cameras", 1, "number of cameras; camera k publishes under the camera{k}/ prefix when > 1")
        width = declare("width", 256, "image width, pixels")
        height = declare("height", 256, "image height, pixels")
        min_objects = declare("min_objects", 2, "fewest objects on the table")
        max_objects = declare("max_objects", 4, "most objects on the table")
        rate_hz = declare("rate_hz", 2.0, "publishing rate of every camera, Hz")
        world = declare(
            "world", "idealised",
            "world preset (scenegen_core.world.scene.WorldConfig): 'idealised' (7 primitive kinds, flat colours; "
            "what the embedded default model was trained on) or 'realistic' (shape families, textures, shadows, "
            "stacking, truncation)",
        )
        if not rate_hz > 0:
            raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
        config = WorldConfig.from_dict(
            dict(
                preset=world, min_objects=min_objects, max_objects=max_objects, num_cameras=cameras,
                image_width=width, image_height=height,
            )
        )
        self.scene = generate_scene(seed, config)
        self.frames = scene_frames(self.scene)
        self.topics = [CameraTopics.for_camera(k, cameras) for k in range(cameras)]
        # Reliable publishers: they match both reliable and sensor-data (best-effort) subscribers.
        qos = QoSProfile(depth=5)
        # Per camera, in publishing order: CameraInfo first, the consumer needs it before the depth.
        self._camera_pubs = [
            (
                self.create_publisher(CameraInfo, t.camera_info, qos),
                self.create_publisher(Image, t.image, qos),
                self.create_publisher(Image, t.depth, qos),
                self.create_publisher(Image, t.mask, qos),
            )
            for t in self.topics
        ]
        self.ticks = 0
        self._timer = self.create_timer(1.0 / rate_hz, self.publish_once)
        self.get_logger().info(
            f"scene seed {seed}: {len(self.scene.objects)} objects "
            f"({', '.join(o.label for o in self.scene.objects)}), {cameras} camera(s) {width}x{height} at {rate_hz} Hz"
        )

    def publish_once(self) -> None:
        """Publish every camera's messages with the current time as the shared stamp."""
        stamp = self.get_clock().now().to_msg()
        for frame, publishers in zip(self.frames, self._camera_pubs):
            for msg, publisher in zip((frame.camera_info, frame.image, frame.depth, frame.mask), publishers):
                msg.header.stamp = stamp
                publisher.publish(msg)
        self.ticks += 1


def main(args: list[str] | None = None) -> None:
    """Console script `synthetic_camera`."""
    run_node(SyntheticCameraNode, SingleThreadedExecutor, args)


if __name__ == "__main__":
    main()
