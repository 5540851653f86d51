"""scenegen_node over real DDS: real rclpy, real pipeline (tiny default), private domain on loopback.

A harness node publishes the synthetic tabletop world's scene (RGB, depth, CameraInfo, instance masks) on
the node's default topics and records what the node publishes. Nothing sleeps on luck: every wait
is a condition with a deadline, and publishing starts only once DDS has matched the endpoints.
The console scripts (`scenegen_node`, `synthetic_camera`) run as subprocesses on the same domain.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, Sequence

import numpy as np
import pytest

pytestmark = pytest.mark.ros
rclpy = pytest.importorskip("rclpy")
pytest.importorskip("scenegen_ros.msg", reason="scenegen_ros interfaces not built (scripts/build_interfaces.sh)")

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from rcl_interfaces.msg import Log  # noqa: E402
from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from scenegen_core.pipeline import PipelineConfig, SceneGenPipeline  # noqa: E402
from scenegen_core.world.scene import WorldConfig, generate_scene  # noqa: E402
from scenegen_ros.conversions import collision_object_id, scene_msg_to_meshes  # noqa: E402
from scenegen_ros.image_conversion import array_to_image_msg, image_msg_to_array  # noqa: E402
from scenegen_ros.msg import Scene  # noqa: E402
from scenegen_ros.node import (  # noqa: E402
    BUSY_MESSAGE,
    DIAGNOSTIC_NAME,
    INFERENCE_STARTED,
    SceneGenNode,
    spin_in_thread,
)
from scenegen_ros.srv import GenerateScene  # noqa: E402
from scenegen_ros.synthetic_camera import CameraFrame, CameraTopics, scene_frames  # noqa: E402

try:
    from moveit_msgs.msg import CollisionObject
except ImportError:  # the stand-in is built by scripts/build_interfaces.sh
    CollisionObject = None

WAIT_S = 120.0  # generous upper bound for one condition on 2 shared cores; normally ~1-5 s
FAST_PARAMS = {"diagnostics_period_s": 0.2, "stale_set_timeout_s": 1.0, "service_timeout_s": 120.0}


# ------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def context(make_ros_context):
    return make_ros_context()


@pytest.fixture(scope="module")
def pipeline():
    """The real pipeline with its tiny embedded default model, shared by every node of this module.

    Only the sampler steps are cut (25 -> 2): each step costs ~1-3 s on 2 shared CPU cores, and
    the node's behaviour does not depend on how good the samples are.
    """
    return SceneGenPipeline(PipelineConfig(steps=2))


@pytest.fixture(scope="module")
def world():
    """(frame of camera 0, number of objects the pipeline keeps: masks of >= min_mask_pixels)."""
    scene = generate_scene(3, WorldConfig(min_objects=2, max_objects=3, image_width=96, image_height=96))
    areas = np.bincount(scene.renders[0].instance_ids[scene.renders[0].instance_ids >= 0])
    kept = int(np.sum(areas >= PipelineConfig().min_mask_pixels))
    assert kept >= 2, "the test scene must show at least two objects"
    return scene_frames(scene)[0], kept


class Harness(Node):
    """Publishes camera messages on the default topics; records the node's outputs."""

    def __init__(self, context, view_count: int = 1, compressed: bool = False) -> None:
        super().__init__("scenegen_test_harness", context=context)
        self.cond = threading.Condition()
        self.scenes: list[Scene] = []
        self.markers: list[MarkerArray] = []
        self.diagnostics: list[DiagnosticStatus] = []
        self.collisions: list = []
        self.view_topics = [CameraTopics.for_camera(k, view_count) for k in range(view_count)]
        self.pubs = [
            {
                "camera_info": self.create_publisher(CameraInfo, t.camera_info, 10),
                "image": self.create_publisher(
                    CompressedImage if compressed else Image, t.image + ("/compressed" if compressed else ""), 10
                ),
                "depth": self.create_publisher(Image, t.depth, 10),
                "mask": self.create_publisher(Image, t.mask, 10),
            }
            for t in self.view_topics
        ]
        self.subs = [
            self.create_subscription(Scene, "/scenegen_node/scene", self._store(self.scenes), 10),
            self.create_subscription(MarkerArray, "/scenegen_node/markers", self._store(self.markers), 10),
            self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10),
        ]
        if CollisionObject is not None:
            self.subs.append(self.create_subscription(CollisionObject, "/collision_object", self._store(self.collisions), 100))
        self.client = self.create_client(GenerateScene, "/scenegen_node/generate_scene")
        self.stamp_s = 1000

    def _store(self, target: list):
        def callback(msg) -> None:
            with self.cond:
                target.append(msg)
                self.cond.notify_all()

        return callback

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        with self.cond:
            self.diagnostics.extend(s for s in msg.status if s.name == DIAGNOSTIC_NAME)
            self.cond.notify_all()

    def wait_for(self, predicate: Callable[[], object], what: str, timeout: float = WAIT_S):
        with self.cond:
            result = self.cond.wait_for(predicate, timeout)
        assert result, f"timed out after {timeout:.0f} s waiting for {what}"
        return result

    def wait_connected(self, views=None) -> None:
        """Every publisher matched by the node and every node output matched by us."""
        deadline = time.monotonic() + WAIT_S
        views = range(len(self.pubs)) if views is None else views
        publishers = [p for k in views for p in self.pubs[k].values()]
        while time.monotonic() < deadline:
            if (
                all(p.get_subscription_count() > 0 for p in publishers)
                and all(s.get_publisher_count() > 0 for s in self.subs)
                and self.client.service_is_ready()
            ):
                # A second scene publisher means another test run shares this random domain.
                assert self.subs[0].get_publisher_count() == 1, "another ROS graph shares this domain"
                return
            with self.cond:
                self.cond.wait(0.05)  # graph changes arrive without callbacks; re-check
        raise AssertionError("DDS endpoints did not match in time")

    def next_stamp(self):
        self.stamp_s += 1
        return rclpy.time.Time(seconds=self.stamp_s).to_msg()

    def publish(self, frame: CameraFrame, view: int = 0, stamp=None, skip: tuple[str, ...] = ()) -> object:
        """Publish one set (CameraInfo first) with one stamp; returns the stamp."""
        stamp = self.next_stamp() if stamp is None else stamp
        for name in ("camera_info", "image", "depth", "mask"):
            if name in skip:
                continue
            msg = copy.deepcopy(getattr(frame, name))
            msg.header.stamp = stamp
            self.pubs[view][name].publish(msg)
        return stamp

    def publish_until(self, frame: CameraFrame, predicate: Callable[[], object], what: str, **kwargs):
        """Re-publish the set (new stamp) each second until `predicate` holds (loss-tolerant)."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            self.publish(frame, **kwargs)
            with self.cond:
                result = self.cond.wait_for(predicate, 1.0)
            if result:
                return result
        raise AssertionError(f"timed out waiting for {what}")

    def diagnostic_with(self, key: str, start: int = 0) -> DiagnosticStatus | None:
        """The first status since index `start` that has `key` among its values (e.g. a rejection)."""
        for status in self.diagnostics[start:]:
            values = {kv.key: kv.value for kv in status.values}
            if key in values:
                return status
        return None

    def latest_value(self, key: str, kind=str):
        """`key` of the newest status (converted with `kind`), or kind() before the first one."""
        return kind(values_of(self.diagnostics[-1])[key]) if self.diagnostics else kind()

    def call(self, request: GenerateScene.Request, timeout: float = WAIT_S) -> GenerateScene.Response:
        future = self.client.call_async(request)
        done = threading.Event()
        future.add_done_callback(lambda _: done.set())
        assert done.wait(timeout), "service did not answer in time"
        return future.result()


@pytest.fixture
def spin(context):
    """`spin(node)` adds a node to an executor of this test's own (spinning in a thread) and returns it.

    Teardown stops the executor before destroying the nodes: rclpy's executor thread dies with
    InvalidHandle when a node it is waiting on is destroyed under it (one test's teardown then
    silenced every later test), so nodes are never destroyed while an executor spins them.
    """
    executor = MultiThreadedExecutor(num_threads=4, context=context)
    spinner = spin_in_thread(executor)
    created: list[Node] = []

    def add(node: Node) -> Node:
        executor.add_node(node)
        created.append(node)
        return node

    yield add
    executor.shutdown()
    spinner.join(timeout=WAIT_S)
    for item in reversed(created):
        item.destroy_node()
    assert spinner.error is None, f"the executor thread failed: {spinner.error!r}"


@pytest.fixture
def make_node(context, pipeline, spin):
    """Start scenegen_node (with test overrides; `node_pipeline` replaces the module's pipeline)
    and a harness, both spun by `spin`."""

    def factory(view_count: int = 1, node_pipeline=None, **params) -> tuple[SceneGenNode, Harness]:
        overrides = [Parameter(k, value=v) for k, v in {**FAST_PARAMS, **params}.items()]
        node = spin(SceneGenNode(pipeline=node_pipeline or pipeline, context=context, parameter_overrides=overrides))
        harness = spin(Harness(context, view_count, compressed=any(params.get("compressed", []))))
        return node, harness

    return factory


class RosProcess:
    """`python -m <module> <args...>` as a subprocess, stdout and stderr read line by line.

    A context manager: the process is killed on leaving if it still runs.
    """

    def __init__(self, module_args: Sequence[str], env: dict[str, str], cwd) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", *module_args], cwd=cwd, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )
        self._cond = threading.Condition()
        self._lines: list[str] = []
        self._ended = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            with self._cond:
                self._lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def wait_for_line(self, text: str, timeout: float = WAIT_S) -> None:
        def seen() -> bool:
            return any(text in line for line in self._lines)

        with self._cond:
            self._cond.wait_for(lambda: self._ended or seen(), timeout)
            found = seen()
        assert found, f"no line with {text!r} within {timeout:.0f} s:\n{self.output()}"

    def output(self) -> str:
        """Everything read so far (all of it once the process has ended and been waited for)."""
        with self._cond:
            return "".join(self._lines)

    def stop(self, signum: int, timeout: float = WAIT_S) -> tuple[int, float]:
        """Send `signum`; returns the exit status and the seconds until the process ended."""
        sent = time.monotonic()
        self.process.send_signal(signum)
        status = self.process.wait(timeout=timeout)
        elapsed = time.monotonic() - sent
        self._reader.join(timeout=timeout)
        return status, elapsed

    def __enter__(self) -> "RosProcess":
        return self

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=WAIT_S)


@pytest.fixture
def same_domain_env(ros_child_env, context) -> dict[str, str]:
    """Environment for a child process on this module's domain, so the harness and it meet."""
    return dict(ros_child_env, ROS_DOMAIN_ID=str(context.get_domain_id()))


def values_of(status: DiagnosticStatus) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def check_scene(scene: Scene, frame_id: str, object_count: int, view_count: int = 1) -> None:
    assert scene.header.frame_id == frame_id
    assert len(scene.objects) == object_count
    assert len({obj.id for obj in scene.objects}) == object_count
    assert scene.model_description
    assert [t.name for t in scene.timings] and all(t.seconds >= 0 for t in scene.timings)
    for obj in scene.objects:
        vertices = np.array([(p.x, p.y, p.z) for p in obj.mesh.vertices]).reshape(-1, 3)
        faces = np.array([t.vertex_indices for t in obj.mesh.triangles]).reshape(-1, 3)
        assert np.all(np.isfinite(vertices))
        assert faces.size == 0 or (faces.min() >= 0 and faces.max() < len(vertices))
        colors = np.array([(c.r, c.g, c.b, c.a) for c in obj.vertex_colors]).reshape(-1, 4)
        assert np.all((colors >= 0) & (colors <= 1))
        assert len(obj.mask_boxes) == view_count
        position = obj.pose.position
        assert np.all(np.isfinite([position.x, position.y, position.z]))
        assert 0.0 <= obj.score <= 1.0


# ------------------------------------------------------------------------------------- tests


def test_continuous_mode_publishes_scene_markers_collisions_and_diagnostics(make_node, world):
    frame, object_count = world
    object_db = "{'type': 'CouchDB', 'root': 'http://localhost:5984'}"
    node, harness = make_node(collision_object_db=object_db)
    harness.wait_connected()
    # A bad set first: it is reported and skipped, and the good ones after it are processed.
    harness.publish_until(
        _corrupt(frame, "depth_size"), lambda: harness.diagnostic_with("warnings.depth_size"), "warnings.depth_size"
    )
    # The first set can beat its CameraInfo (different topics): wait for a metric scene.
    scene = harness.publish_until(
        frame, lambda: next((s for s in harness.scenes if s.metric), None), "a metric scene"
    )
    check_scene(scene, "cam0_optical_frame", object_count)
    # The camera keeps sending the same picture: the next scene keeps every id.
    later = harness.publish_until(
        frame, lambda: next((s for s in harness.scenes if s.metric and s is not scene), None), "a second scene"
    )
    assert sorted(o.id for o in later.objects) == sorted(o.id for o in scene.objects)
    # Metric placement in the camera optical frame: objects lie in front of the camera (z > 0) and
    # their meshes come back from the message in the header frame.
    meshes = scene_msg_to_meshes(scene)
    assert all(np.median(mesh.vertices[:, 2]) > 0 for _, mesh in meshes)

    with_mesh = sum(1 for obj in scene.objects if obj.mesh.triangles)
    markers = harness.wait_for(
        lambda: next((m for m in harness.markers if len(m.markers) == 1 + object_count + with_mesh), None), "markers"
    )
    assert markers.markers[0].action == Marker.DELETEALL
    types = sorted(m.type for m in markers.markers[1:])
    assert types == sorted([Marker.TRIANGLE_LIST] * with_mesh + [Marker.TEXT_VIEW_FACING] * object_count)
    for marker in markers.markers:
        assert marker.header.frame_id == "cam0_optical_frame"
        colors = np.array([(c.r, c.g, c.b, c.a) for c in marker.colors]).reshape(-1, 4)
        assert np.all((colors >= 0) & (colors <= 1))
        if marker.type == Marker.TRIANGLE_LIST:
            assert len(marker.points) % 3 == 0 and len(marker.points) // 3 <= 5000

    status = harness.wait_for(
        lambda: next((s for s in reversed(harness.diagnostics) if int(values_of(s)["frames_processed"]) >= 1), None),
        "a diagnostic counting the processed frame",
    )
    values = values_of(status)
    assert float(values["inference_s"]) > 0
    assert any(key.startswith("stage.") for key in values)

    if CollisionObject is not None:
        ids = {collision_object_id(obj.id) for obj in scene.objects if obj.mesh.triangles}
        harness.wait_for(
            lambda: ids <= {c.id for c in harness.collisions if c.operation == CollisionObject.ADD}, "collision ADDs"
        )
        added = [c for c in harness.collisions if c.operation == CollisionObject.ADD]
        assert all(c.header.frame_id == "cam0_optical_frame" and len(c.meshes) == 1 for c in added)
        assert all(len(c.meshes[0].triangles) <= 500 for c in added)
        # object_recognition_msgs/ObjectType: key = the object's label, db = the configured database.
        labels = {collision_object_id(obj.id): obj.label for obj in scene.objects}
        assert all((c.type.key, c.type.db) == (labels[c.id], object_db) for c in added if c.id in labels)


def test_expired_objects_are_removed_and_ids_never_reused(make_node, world):
    frame, object_count = world
    node, harness = make_node(object_timeout_s=1.0, mode="on_demand")
    harness.wait_connected()
    harness.publish_until(frame, lambda: harness.latest_value("sets_received", int) >= 1, "a synchronized set")
    first = harness.call(GenerateScene.Request())
    assert first.success, first.message
    assert sorted(o.id for o in first.scene.objects) == list(range(1, object_count + 1))
    # Nothing new arrives on_demand: after object_timeout_s the tracks expire (and are REMOVEd). Wait
    # for the statuses naming them expired, not for one that still shows them tracked: that one only
    # exists while the timer runs inside the timeout, which a loaded machine need not grant.
    expected = {str(obj.id) for obj in first.scene.objects}
    harness.wait_for(
        lambda: expected <= {i for s in harness.diagnostics for i in values_of(s)["expired_objects"].split()},
        "expiry of every object",
    )
    assert int(values_of(harness.diagnostics[-1])["tracked_objects"]) == 0
    if CollisionObject is not None:
        ids = {collision_object_id(obj.id) for obj in first.scene.objects}
        harness.wait_for(
            lambda: ids <= {c.id for c in harness.collisions if c.operation == CollisionObject.REMOVE},
            "collision REMOVEs after the timeout",
        )
        # Every ADD went out before its REMOVE (the geometry is built before the tracks start ageing).
        operations = [(c.id, c.operation) for c in harness.collisions]
        for object_id in ids:
            assert operations.index((object_id, CollisionObject.ADD)) < operations.index((object_id, CollisionObject.REMOVE))
    second = harness.call(GenerateScene.Request())
    assert second.success, second.message
    assert sorted(o.id for o in second.scene.objects) == list(range(object_count + 1, 2 * object_count + 1))


def test_service_with_request_images_and_without_input(make_node, world):
    frame, object_count = world
    node, harness = make_node(mode="on_demand")
    harness.wait_connected()
    empty = harness.call(GenerateScene.Request())
    assert not empty.success and empty.message == "no synchronized images yet"

    request = GenerateScene.Request(
        timeout_s=120.0, images=[frame.image], depths=[frame.depth], camera_infos=[frame.camera_info],
        masks=[frame.mask],
    )
    response = harness.call(request)
    assert response.success, response.message
    check_scene(response.scene, "cam0_optical_frame", object_count)
    assert response.scene.metric
    # on_demand: nothing ran from the topics, and the service result is also published.
    harness.wait_for(lambda: len(harness.scenes) >= 1, "the published service scene")

    bad = GenerateScene.Request(images=[frame.image], depths=[frame.depth, frame.depth])
    response = harness.call(bad)
    assert not response.success and "2 depths for 1 images" in response.message
    no_info = GenerateScene.Request(images=[frame.image], depths=[frame.depth], masks=[frame.mask])
    response = harness.call(no_info)
    assert not response.success and "depths need camera_infos" in response.message


def test_a_scene_without_depth_is_published_but_never_as_geometry(make_node, world):
    """Without depth the poses are unitless (query object's frame): the Scene says metric=false,
    and neither markers nor collision objects put them into the camera frame."""
    frame, object_count = world
    node, harness = make_node(mode="on_demand")
    harness.wait_connected()
    response = harness.call(GenerateScene.Request(timeout_s=120.0, images=[frame.image], masks=[frame.mask]))
    assert response.success, response.message
    assert not response.scene.metric and len(response.scene.objects) == object_count
    harness.wait_for(lambda: harness.diagnostic_with("warnings.not_metric"), "warnings.not_metric")
    harness.wait_for(lambda: harness.scenes, "the published scene")
    assert not harness.markers and not harness.collisions


def test_service_call_while_busy_answers_busy(make_node, world):
    frame, object_count = world
    node, harness = make_node(mode="on_demand")
    harness.wait_connected()
    request = GenerateScene.Request(
        images=[frame.image], depths=[frame.depth], camera_infos=[frame.camera_info], masks=[frame.mask]
    )
    # Two calls in flight at once: whichever the node takes first runs, the other finds it busy.
    futures = [harness.client.call_async(request) for _ in range(2)]
    done = threading.Semaphore(0)
    for future in futures:
        future.add_done_callback(lambda _: done.release())
    for _ in futures:
        assert done.acquire(timeout=WAIT_S), "service did not answer in time"
    responses = [f.result() for f in futures]
    assert sorted(r.success for r in responses) == [False, True]
    assert next(r for r in responses if not r.success).message == BUSY_MESSAGE
    status = harness.wait_for(lambda: harness.diagnostic_with("warnings.busy"), "a 'busy' diagnostic")
    assert status.level == DiagnosticStatus.WARN


def _corrupt(frame: CameraFrame, case: str) -> CameraFrame:
    image, depth, mask, info = (copy.deepcopy(m) for m in (frame.image, frame.depth, frame.mask, frame.camera_info))
    if case == "data_length":
        image.data = image.data[:-7]
    elif case == "unknown_encoding":
        image.encoding = "yuv422_yuy2_weird"
    elif case == "zero_size":
        image.height = image.width = image.step = 0
        image.data = b""
    elif case == "depth_size":
        small = np.ones((frame.image.height // 2, frame.image.width // 2), np.float32)
        depth = array_to_image_msg(small, "32FC1", depth.header)
    elif case == "invalid_depth":
        bad = np.full((frame.image.height, frame.image.width), np.nan, np.float32)
        bad[: bad.shape[0] // 2] = 0.0
        depth = array_to_image_msg(bad, "32FC1", depth.header)
    return CameraFrame(image=image, depth=depth, camera_info=info, mask=mask)


@pytest.mark.parametrize(
    "case, category, service_message",
    [
        # Undecodable images never reach a set, so the service has nothing to run on.
        ("data_length", "bad_image", "no synchronized images yet"),
        ("unknown_encoding", "bad_image", "no synchronized images yet"),
        ("zero_size", "bad_image", "no synchronized images yet"),
        # These form a set that the service then rejects with the same reason.
        ("depth_size", "depth_size", "depth is 48x48, RGB is 96x96"),
        ("invalid_depth", "invalid_depth", "depth has no valid"),
        ("missing_camera_info", "missing_camera_info", "no CameraInfo received yet"),
    ],
)
def test_bad_input_is_reported_and_node_keeps_serving(make_node, world, case, category, service_message):
    frame, object_count = world
    # require_camera_info: the missing-CameraInfo set is skipped instead of run without depth.
    node, harness = make_node(mode="continuous", require_camera_info=(case == "missing_camera_info"))
    harness.wait_connected()
    skip = ("camera_info",) if case == "missing_camera_info" else ()
    status = harness.publish_until(
        _corrupt(frame, case), lambda: harness.diagnostic_with(f"warnings.{category}"), f"warnings.{category}",
        skip=skip,
    )
    assert status.level == DiagnosticStatus.WARN
    assert values_of(status)["last_warning"]
    assert not harness.scenes, "a bad set must not produce a scene"
    # Still alive: the service answers at once, with the reason.
    response = harness.call(GenerateScene.Request())
    assert not response.success and service_message in response.message, response.message


def test_view_that_stops_publishing_is_reported(make_node, world):
    frame, object_count = world
    node, harness = make_node(
        view_count=2, views=2, stale_set_timeout_s=3.0,
        image_topics=["camera{view}/color/image_raw"],
        depth_topics=["camera{view}/aligned_depth_to_color/image_raw"],
        camera_info_topics=["camera{view}/color/camera_info"],
        mask_topics=["camera{view}/instances/image_raw"],
    )
    harness.wait_connected()
    # Only view 0 publishes: after stale_set_timeout_s view 1's streams are reported stale. Every
    # stream counts as silent from node start, so on a slow machine view 0 can be stale in the first
    # reports too: wait for a report, made while view 0 is publishing, that names view 1 alone.
    def view_1_alone_stale():
        for status in harness.diagnostics:
            stale = values_of(status).get("stale_views", "")
            if "view 1 image" in stale and "view 0" not in stale:
                return status
        return None

    status = harness.publish_until(frame, view_1_alone_stale, "a report naming view 1 alone as stale")
    values = values_of(status)
    assert status.level == DiagnosticStatus.WARN
    assert "view 1 image" in values["stale_views"] and "camera1/color/image_raw" in values["stale_views"]
    assert "view 0" not in values["stale_views"]
    assert not harness.scenes
    response = harness.call(GenerateScene.Request(), timeout=WAIT_S)
    assert not response.success and response.message == "no synchronized images yet"


def test_compressed_image_topic(make_node, world):
    import io

    from PIL import Image as PILImage

    frame, object_count = world
    node, harness = make_node(image_topics=["camera/color/image_raw/compressed"], compressed=[True])
    harness.wait_connected()
    buffer = io.BytesIO()
    PILImage.fromarray(image_msg_to_array(frame.image)).save(buffer, format="PNG")
    png = CompressedImage(header=frame.image.header, format="png", data=buffer.getvalue())
    scene = harness.publish_until(
        CameraFrame(image=png, depth=frame.depth, camera_info=frame.camera_info, mask=frame.mask),
        lambda: next((s for s in harness.scenes if s.metric), None), "a scene from the PNG stream",
    )
    check_scene(scene, "cam0_optical_frame", object_count)


def test_spin_thread_keeps_what_ended_the_spin(context, monkeypatch):
    """A callback that raises ends spin(): the SpinThread keeps the exception for its owner (and
    still reports it through threading.excepthook); a normal shutdown leaves no error."""
    reported = []
    monkeypatch.setattr(threading, "excepthook", lambda args: reported.append(args.exc_value))
    node = Node("spin_thread_probe", context=context)

    def fail() -> None:
        raise RuntimeError("callback failed")

    node.create_timer(0.01, fail)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = spin_in_thread(executor)
    spinner.join(timeout=WAIT_S)
    assert not spinner.is_alive()
    assert isinstance(spinner.error, RuntimeError) and str(spinner.error) == "callback failed"
    assert reported == [spinner.error]
    executor.shutdown()
    node.destroy_node()

    quiet = SingleThreadedExecutor(context=context)
    spinner = spin_in_thread(quiet)
    quiet.shutdown()
    spinner.join(timeout=WAIT_S)
    assert not spinner.is_alive() and spinner.error is None


def test_console_script_stops_cleanly_on_sigint(ros_child_env, tmp_path):
    with RosProcess(["scenegen_ros.node", "--ros-args", "-p", "mode:=on_demand"], ros_child_env, tmp_path) as node:
        node.wait_for_line("mode=on_demand")
        status, _ = node.stop(signal.SIGINT)
    assert status == 0, node.output()
    assert "Traceback" not in node.output(), node.output()


EXIT_BOUND_S = 10.0  # generous for loaded CI machines; the design target is 2 s
QUIET_SHUTDOWN_FORBIDDEN = ("ERROR", "Traceback", "Failed to publish", "never retrieved")


@pytest.mark.parametrize(
    "signum, trigger",
    [(signal.SIGINT, "topics"), (signal.SIGTERM, "service")],
    ids=["SIGINT-topics", "SIGTERM-service"],
)
def test_signal_during_inference_exits_fast_and_quietly(
    context, spin, world, same_domain_env, tmp_path, signum, trigger
):
    """The console script, busy with an inference (from the topics in continuous mode, or from a
    service request waiting for it), gets SIGINT / SIGTERM: it exits with status 0 within
    EXIT_BOUND_S, logs no error or traceback, and publishes nothing of the interrupted run.

    400 sampler steps make the run take ~30 s or more, so the signal surely lands inside it; the
    node's debug message says when the run entered the pipeline. It is awaited on /rosout, not on
    the console: the console line comes first, and a signal sent then would catch the node still
    publishing that very message to /rosout (rcl then reports that it failed)."""
    frame, _ = world
    mode = "continuous" if trigger == "topics" else "on_demand"
    args = ["scenegen_ros.node", "--ros-args", "-p", f"mode:={mode}", "-p", "steps:=400",
            "--log-level", "scenegen_node:=debug"]
    with RosProcess(args, same_domain_env, tmp_path) as node:
        harness = spin(Harness(context))
        logs: list[Log] = []
        rosout_qos = QoSProfile(depth=1000, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        harness.subs.append(harness.create_subscription(Log, "/rosout", harness._store(logs), rosout_qos))
        harness.wait_connected()

        def started() -> bool:
            return any(log.name == "scenegen_node" and INFERENCE_STARTED in log.msg for log in logs)

        if trigger == "topics":
            harness.publish_until(frame, started, "the inference to start")
        else:
            harness.client.call_async(
                GenerateScene.Request(
                    images=[frame.image], depths=[frame.depth], camera_infos=[frame.camera_info], masks=[frame.mask]
                )
            )
            harness.wait_for(started, "the inference to start")
        status, elapsed = node.stop(signum)
    output = node.output()
    print(f"{signal.Signals(signum).name} during inference: exit status {status} after {elapsed:.2f} s")
    assert status == 0, output
    assert elapsed < EXIT_BOUND_S, f"exit took {elapsed:.1f} s\n{output}"
    for text in QUIET_SHUTDOWN_FORBIDDEN:
        assert text not in output, output
    assert not harness.scenes, "the interrupted run must not publish"


@pytest.mark.slow
def test_no_stale_warning_while_inference_saturates_the_cpu(make_node, pipeline, same_domain_env, tmp_path):
    """A real synthetic camera (its own process, 2 Hz) feeds the node while every inference keeps all
    cores busy (25 sampler steps, torch on every core): no view is ever reported stale.

    The timeout is one second, two camera periods, so the margin left to a starved executor or a
    late diagnostics timer is what the observed period and the timer's lateness add to it. The
    images are small (96 px): at 256 px (~600 kB a tick) Fast DDS delivers few of the colour images
    to a best-effort subscriber in another process, and that loss is real silence."""
    import torch

    busy_pipeline = SceneGenPipeline(PipelineConfig(steps=25), models=pipeline.models)
    threads = torch.get_num_threads()
    camera_args = ["scenegen_ros.synthetic_camera", "--ros-args", "-p", "width:=96", "-p", "height:=96"]
    with RosProcess(camera_args, same_domain_env, tmp_path) as camera:
        node, harness = make_node(node_pipeline=busy_pipeline, stale_set_timeout_s=1.0)
        harness.wait_connected()
        # Streams count as silent from node start until the camera's first message, which the
        # camera's start-up can delay: judge only from the moment sets flow, with a few periods seen.
        harness.wait_for(lambda: harness.latest_value("sets_received", int) >= 4, "the camera's sets")
        start = len(harness.diagnostics)
        torch.set_num_threads(max(os.cpu_count() or 1, 2))
        try:
            harness.wait_for(lambda: harness.latest_value("frames_processed", int) >= 3, "three scenes")
        finally:
            torch.set_num_threads(threads)
        assert camera.process.poll() is None, camera.output()
    statuses = harness.diagnostics[start:]
    assert sum(values_of(s)["worker_busy"] == "True" for s in statuses) > len(statuses) / 2, "inference was not busy"
    assert int(values_of(statuses[-1])["sets_dropped"]) > 0, "the camera must outpace the inference"
    stale = [values_of(s)["stale_views"] for s in statuses if values_of(s)["stale_views"]]
    assert not stale, stale

    def stale_warnings(status: DiagnosticStatus) -> int:
        return int(values_of(status).get("warnings.stale_view", 0))

    assert stale_warnings(statuses[-1]) == stale_warnings(harness.diagnostics[start - 1]), "warned while publishing"
    assert "view 0 image 0." in values_of(statuses[-1])["stream_periods_s"]  # ~0.5 s observed
