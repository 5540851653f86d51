"""`scenegen_node`: camera images in, posed shape-completed meshes out.

Threading: subscriptions, timers and the service run on a MultiThreadedExecutor (subscriptions and
timers share the node's default mutually exclusive group; the service has a reentrant group, so a
call waiting for its result blocks neither the cameras nor a second call, which must be able to
answer "busy"). Inference runs on ONE worker thread, always on the newest complete synchronized
set (`LatestSlot`), or on a service request, which takes priority.

Service `~/generate_scene` while the worker is busy: if another service request is pending or
running, the call answers at once with success=false, message "busy". If the worker is only busy
with a streaming set, the request is queued (it runs next) and the call waits for its result up to
its `timeout_s` (<= 0: the `service_timeout_s` parameter), then answers "timeout".

Every bad input (undecodable image, size mismatch, missing CameraInfo, depth without a valid
reading, a view that stopped publishing, a busy service) is logged as a warning, counted and shown
on /diagnostics; the frame is skipped and the node keeps running. A view stream counts as stopped
from the arrival times its subscription records (`scenegen_ros.sync.ArrivalMonitor`): silent for
longer than `stale_set_timeout_s` and `stale_periods` of its observed periods, not counting the
time the diagnostics timer itself ran late (the executor could not take messages then).

Shutdown (SIGINT, SIGTERM, context shutdown): the worker publishes nothing once the node stops or
its context is shutting down; a run still inside the pipeline is not waited for (see `run_node`).
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.duration import Duration
from rclpy.exceptions import InvalidHandle
from rclpy.executors import Executor, ExternalShutdownException, MultiThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from scenegen_core.pipeline import PipelineError, ScenePipeline
from scenegen_core.types import SceneResult, StageTiming, View
from scenegen_ros.conversions import (
    camera_info_to_intrinsics,
    collision_object_remove,
    scene_result_to_msg,
    collision_shapes,
    scene_to_collision_objects,
    scene_to_markers,
    stamp_to_ns,
)
from scenegen_ros.image_conversion import (
    ImageConversionError,
    compressed_image_to_array,
    depth_msg_to_metres,
    image_msg_to_array,
)
from scenegen_ros.msg import Scene
from scenegen_ros.parameters import NODE_NAME, NodeConfig, ViewTopics, declare_parameters
from scenegen_ros.srv import GenerateScene
from scenegen_ros.sync import (
    ApproximateTimeSynchronizer,
    ArrivalMonitor,
    LatestSlot,
    StreamKey,
    StreamKind,
    SyncedSet,
    TimerLateness,
)
from scenegen_ros.tracking import ObjectTracker

DIAGNOSTIC_NAME = "scenegen_node: pipeline"
BUSY_MESSAGE = "busy"
SHUTTING_DOWN_MESSAGE = "node shutting down"
INFERENCE_STARTED = "inference started"  # debug log line, the moment a run enters the pipeline
_LOG_EVERY_S = 1.0  # per warning category, so a broken 30 Hz stream does not flood the log
# An idle worker wakes and ends within milliseconds; a run inside the pipeline cannot be
# interrupted (torch, open3d), so waiting longer for it at shutdown would only delay the exit.
_STOP_GRACE_S = 0.5


class _ShuttingDown(Exception):
    """Raised in the worker when its results can no longer be published (node stopping, context down)."""


class InputError(ValueError):
    """One synchronized set (or service request) cannot be turned into pipeline views.

    category: short key counted on /diagnostics as ``warnings.<category>``.
    """

    def __init__(self, category: str, text: str) -> None:
        super().__init__(text)
        self.category = category


@dataclass(frozen=True)
class _Frame:
    """A decoded image message: array plus the header it came with."""

    array: np.ndarray
    header: Header


@dataclass(frozen=True)
class _ViewInput:
    """Everything known about one view of one set, before validation.

    rgb: [H, W, 3] uint8. depth: [H, W] float32 metres (0 = invalid) or None. mask_ids: [H, W]
    integer instance ids (0 = background, i + 1 = object i) or None. camera_info: given with a
    service request, else None and the view's latest CameraInfo from `camera_info_topic` ("" = no
    topic) is used when the set is processed.
    """

    rgb: np.ndarray
    header: Header
    depth: np.ndarray | None
    mask_ids: np.ndarray | None
    camera_info: CameraInfo | None
    camera_info_topic: str


@dataclass
class _ServiceJob:
    inputs: tuple[_ViewInput, ...]
    done: threading.Event = field(default_factory=threading.Event)
    scene: Scene | None = None
    error: str = ""


@dataclass
class _Stats:
    """Counters and last values shown on /diagnostics (guarded by SceneGenNode._stats_lock)."""

    frames_processed: int = 0
    sets_received: int = 0
    service_calls: int = 0
    warning_counts: dict[str, int] = field(default_factory=dict)  # by category
    warnings_since_publish: list[str] = field(default_factory=list)
    errors_since_publish: list[str] = field(default_factory=list)
    last_warning: str = ""
    last_error: str = ""
    last_latency_s: float = float("nan")
    last_inference_s: float = float("nan")
    last_timings: tuple[StageTiming, ...] = ()
    last_log_s: dict[str, float] = field(default_factory=dict)
    stale: tuple[str, ...] = ()


class SceneGenNode(Node):
    """Subscribes the configured views, runs the pipeline off the executor, publishes the scene."""

    def __init__(self, pipeline: ScenePipeline | None = None, **node_kwargs) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        self.config: NodeConfig = declare_parameters(self)
        if pipeline is None:
            from scenegen_core.pipeline import SceneGenPipeline

            pipeline = SceneGenPipeline(self.config.pipeline_config())
        self.pipeline = pipeline
        self.get_logger().info(f"model: {pipeline.description}")

        self._stats = _Stats()
        self._stats_lock = threading.Lock()
        self._tracker = ObjectTracker(self.config.tracker_config())
        self._tracker_lock = threading.Lock()  # worker updates, diagnostics timer expires
        # Held by the worker from a track update until that result's messages are out: the timer
        # skips expiry meanwhile, so a REMOVE can never overtake the ADD it removes.
        self._publishing = threading.Lock()
        self._last_header = Header(frame_id=self.config.frame_id_override)
        self._stale: set[StreamKey] = set()  # touched only by the diagnostics timer
        self._collision_cls = self._collision_object_class()
        self._collision_geometry = self.config.collision_geometry_config()

        # Sync state: touched by subscription callbacks (one group), the diagnostics timer (same
        # group) and the service and worker (under _cv).
        self._cv = threading.Condition()
        self._stream_topics_by_key = self._stream_topics(self.config.views)
        streams = list(self._stream_topics_by_key)
        self._sync = ApproximateTimeSynchronizer(streams, self.config.sync_config())
        self._arrivals = ArrivalMonitor(streams, self.config.staleness_config(), start_s=time.monotonic())
        self._slot: LatestSlot[tuple[_ViewInput, ...]] = LatestSlot()
        self._latest_inputs: tuple[_ViewInput, ...] | None = None
        self._camera_infos: dict[int, CameraInfo] = {}
        self._service_job: _ServiceJob | None = None
        self._running_job: _ServiceJob | None = None
        self._worker_busy = False
        self._stopping = False

        self._scene_pub = self.create_publisher(Scene, "~/scene", 10)
        self._marker_pub = self.create_publisher(MarkerArray, "~/markers", 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._collision_pub = (
            self.create_publisher(self._collision_cls, self.config.collision_topic, QoSProfile(depth=100))
            if self._collision_cls is not None
            else None
        )
        self._subscriptions_keepalive = self._subscribe_views()
        self._service = self.create_service(
            GenerateScene, "~/generate_scene", self._on_generate_scene,
            callback_group=ReentrantCallbackGroup(),
        )
        self._diag_timer = self.create_timer(self.config.diagnostics_period_s, self._on_diagnostics_timer)
        self._diag_lateness = TimerLateness(self.config.diagnostics_period_s, start_s=time.monotonic())
        self._worker = threading.Thread(target=self._worker_loop, name="scenegen_worker", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"{len(self.config.views)} view(s), mode={self.config.mode}, collision objects "
            f"{'on ' + self.config.collision_topic if self._collision_pub else 'off'}"
        )

    # ------------------------------------------------------------------ set-up helpers

    def _collision_object_class(self):
        mode = self.config.publish_collision_objects
        if mode == "false":
            return None
        try:
            return importlib.import_module("moveit_msgs.msg").CollisionObject
        except ImportError:
            if mode == "true":
                raise ValueError("publish_collision_objects is 'true' but moveit_msgs is not importable")
            return None

    @staticmethod
    def _stream_topics(views: Sequence[ViewTopics]) -> dict[StreamKey, str]:
        """Every synchronised stream and its topic, view by view (view 0's image first)."""
        topics = {}
        for index, view in enumerate(views):
            for kind, topic in ((StreamKind.IMAGE, view.image), (StreamKind.DEPTH, view.depth), (StreamKind.MASK, view.mask)):
                if topic:
                    topics[StreamKey(index, kind)] = topic
        return topics

    def _subscribe_views(self) -> list:
        # Sensor-data QoS (best effort, volatile) with the configured per-stream depth.
        qos = QoSProfile(
            depth=self.config.queue_size, reliability=qos_profile_sensor_data.reliability,
            history=qos_profile_sensor_data.history, durability=qos_profile_sensor_data.durability,
        )
        subscriptions = []
        for key, topic in self._stream_topics_by_key.items():
            compressed = key.kind is StreamKind.IMAGE and self.config.views[key.view].compressed
            callback = self._make_stream_callback(key, topic)
            subscriptions.append(
                self.create_subscription(CompressedImage if compressed else Image, topic, callback, qos)
            )
        for index, view in enumerate(self.config.views):
            if view.camera_info:
                subscriptions.append(
                    self.create_subscription(
                        CameraInfo, view.camera_info, self._make_camera_info_callback(index), qos
                    )
                )
        return subscriptions

    # ------------------------------------------------------------------ input callbacks

    def _make_stream_callback(self, key: StreamKey, topic: str):
        def callback(msg) -> None:
            # Read before the lock and the decoding, which a busy node can delay: the stamp says
            # when the executor took the message, the nearest this node gets to its arrival.
            arrival_s = time.monotonic()
            with self._cv:
                self._arrivals.arrived(key, arrival_s)
            try:
                array = _decode(key.kind, msg)
            except ImageConversionError as error:
                self._warn("bad_image", f"{key} on '{topic}': {error}; frame skipped")
                return
            stamp_ns = stamp_to_ns(msg.header.stamp)
            with self._cv:
                synced = self._sync.add(key, stamp_ns, _Frame(array, msg.header))
                if synced is not None:
                    self._on_synced_set(synced)

        return callback

    def _make_camera_info_callback(self, index: int):
        def callback(msg: CameraInfo) -> None:
            with self._cv:
                self._camera_infos[index] = msg

        return callback

    def _on_synced_set(self, synced: SyncedSet) -> None:
        """Called under _cv with a complete set: keep it for the service and hand it to the worker."""
        def array(index: int, kind: StreamKind) -> np.ndarray | None:
            key = StreamKey(index, kind)
            return synced.payload(key).array if key in synced.items else None

        inputs = []
        for index, view in enumerate(self.config.views):
            image: _Frame = synced.payload(StreamKey(index, StreamKind.IMAGE))
            # CameraInfo is looked up when the set is processed (it may arrive after the images).
            inputs.append(
                _ViewInput(
                    image.array, image.header, array(index, StreamKind.DEPTH), array(index, StreamKind.MASK), None,
                    view.camera_info,
                )
            )
        inputs = tuple(inputs)
        self._latest_inputs = inputs
        with self._stats_lock:
            self._stats.sets_received += 1
        if self.config.mode == "continuous":
            self._slot.put(inputs)
            self._cv.notify_all()

    # ------------------------------------------------------------------ service

    def _on_generate_scene(self, request: GenerateScene.Request, response: GenerateScene.Response):
        with self._stats_lock:
            self._stats.service_calls += 1
        timeout_s = request.timeout_s if request.timeout_s > 0 else self.config.service_timeout_s
        try:
            inputs = self._inputs_from_request(request) if request.images else None
        except InputError as error:
            self._warn("bad_request", f"generate_scene request: {error}")
            response.success, response.message = False, str(error)
            return response
        with self._cv:
            if inputs is None:
                inputs = self._latest_inputs
            if inputs is None:
                message = "no synchronized images yet"
                self._warn("no_input", f"generate_scene: {message}")
                response.success, response.message = False, message
                return response
            if self._stopping:
                response.success, response.message = False, SHUTTING_DOWN_MESSAGE
                return response
            if self._service_job is not None or self._running_job is not None:
                self._warn("busy", "generate_scene called while another request is running: answered 'busy'")
                response.success, response.message = False, BUSY_MESSAGE
                return response
            job = _ServiceJob(inputs)
            self._service_job = job
            self._cv.notify_all()
        if not job.done.wait(timeout_s):
            with self._cv:
                if self._service_job is job:  # not started yet: withdraw it so later calls are not "busy"
                    self._service_job = None
            self._warn("service_timeout", f"generate_scene: no result within {timeout_s:.1f} s")
            response.success, response.message = False, f"timeout after {timeout_s:.1f} s"
            return response
        if job.scene is None:
            response.success, response.message = False, job.error
            return response
        response.success, response.message, response.scene = True, "", job.scene
        return response

    def _inputs_from_request(self, request: GenerateScene.Request) -> tuple[_ViewInput, ...]:
        count = len(request.images)
        for name in ("depths", "camera_infos", "masks"):
            given = len(getattr(request, name))
            if given not in (0, count):
                raise InputError("bad_request", f"{given} {name} for {count} images (give one per image or none)")
        if request.depths and not request.camera_infos:
            raise InputError("bad_request", "depths need camera_infos (one per image) to be used in metres")
        inputs = []
        for index, image in enumerate(request.images):
            try:
                rgb = _decode(StreamKind.IMAGE, image)
                depth = _decode(StreamKind.DEPTH, request.depths[index]) if request.depths else None
                mask = _decode(StreamKind.MASK, request.masks[index]) if request.masks else None
            except ImageConversionError as error:
                raise InputError("bad_request", f"view {index}: {error}") from error
            info = request.camera_infos[index] if request.camera_infos else None
            inputs.append(_ViewInput(rgb, image.header, depth, mask, info, ""))
        return tuple(inputs)

    # ------------------------------------------------------------------ worker

    def _worker_loop(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._stopping or self._service_job is not None or self._slot.pending)
                if self._stopping:
                    return
                job, self._service_job = self._service_job, None
                inputs = job.inputs if job is not None else self._slot.take()
                self._running_job = job
                self._worker_busy = True
            try:
                scene = self._process(inputs, job is not None)
                if job is not None:
                    job.scene = scene
            except _ShuttingDown:
                return  # nothing to publish or report, and no context left to log through
            except InputError as error:
                self._warn(error.category, f"{error}; set skipped")
                if job is not None:
                    job.error = str(error)
            except PipelineError as error:
                self._warn("pipeline_rejected", f"pipeline rejected the set: {error}")
                if job is not None:
                    job.error = f"pipeline rejected the set: {error}"
            except Exception as error:  # noqa: BLE001 - the worker must survive any failure
                text = f"{type(error).__name__}: {error}"
                self._error(text, traceback.format_exc())
                if job is not None:
                    job.error = text
            finally:
                with self._cv:
                    self._running_job = None
                    self._worker_busy = False
                if job is not None:
                    job.done.set()

    def _process(self, inputs: tuple[_ViewInput, ...], requested: bool) -> Scene:
        """Validate, run the pipeline, track ids and publish (raises InputError / PipelineError,
        _ShuttingDown when the node stopped during the run)."""
        views = self._views(inputs)
        self.get_logger().debug(
            f"{INFERENCE_STARTED}: {len(views)} view(s) from {'a service request' if requested else 'the newest set'}"
        )
        started = time.monotonic()
        result = self.pipeline.run(views)
        inference_s = time.monotonic() - started
        self._check_not_shutting_down()
        scene = self._publish(result, inputs[0].header)
        latency_s = (self.get_clock().now().nanoseconds - stamp_to_ns(inputs[0].header.stamp)) * 1e-9
        with self._stats_lock:
            self._stats.frames_processed += 1
            self._stats.last_inference_s = inference_s
            self._stats.last_latency_s = latency_s
            self._stats.last_timings = result.timings
        for warning in result.warnings:
            self._warn("pipeline_warning", warning)
        return scene

    def _views(self, inputs: Sequence[_ViewInput]) -> list[View]:
        """Checks every view of a set and builds the pipeline's Views (raises InputError)."""
        object_ids = _object_ids([view.mask_ids for view in inputs if view.mask_ids is not None])
        views = []
        for index, view in enumerate(inputs):
            height, width = view.rgb.shape[:2]
            intrinsics = None
            camera_info = view.camera_info
            if camera_info is None and view.camera_info_topic:
                with self._cv:
                    camera_info = self._camera_infos.get(index)
            if camera_info is not None:
                try:
                    intrinsics = camera_info_to_intrinsics(camera_info)
                except ValueError as error:
                    raise InputError("bad_camera_info", f"view {index}: bad CameraInfo: {error}") from error
                if (intrinsics.width, intrinsics.height) != (width, height):
                    raise InputError(
                        "bad_camera_info",
                        f"view {index}: CameraInfo is for {intrinsics.width}x{intrinsics.height}, image is {width}x{height}",
                    )
            elif view.camera_info_topic:
                text = f"view {index}: no CameraInfo received yet on '{view.camera_info_topic}'"
                if self.config.require_camera_info:
                    raise InputError("missing_camera_info", text)
                self._warn("missing_camera_info", f"{text}; running without depth/metric placement")
            depth = view.depth
            if depth is not None:
                if depth.shape != (height, width):
                    raise InputError(
                        "depth_size", f"view {index}: depth is {depth.shape[1]}x{depth.shape[0]}, RGB is {width}x{height}"
                    )
                if not np.any(np.isfinite(depth) & (depth > 0)):
                    raise InputError("invalid_depth", f"view {index}: depth has no valid (finite, > 0) pixel")
                if intrinsics is None:
                    depth = None  # depth without intrinsics cannot be back-projected
            masks = None
            if view.mask_ids is not None:
                if view.mask_ids.shape != (height, width):
                    raise InputError(
                        "mask_size",
                        f"view {index}: mask is {view.mask_ids.shape[1]}x{view.mask_ids.shape[0]}, RGB is {width}x{height}",
                    )
                masks = view.mask_ids[None] == object_ids[:, None, None]
            views.append(
                View(
                    rgb=view.rgb, depth=depth, intrinsics=intrinsics, masks=masks,
                    frame_id=view.header.frame_id, stamp_ns=stamp_to_ns(view.header.stamp),
                )
            )
        if any(view.mask_ids is not None for view in inputs) and not len(object_ids):
            raise InputError("no_objects", "no object in the instance masks")
        return views

    def _publish(self, result: SceneResult, header: Header) -> Scene:
        out_header = Header(stamp=header.stamp, frame_id=self.config.frame_id_override or header.frame_id)
        if not result.metric:
            # Unitless poses in the query object's frame: geometry in the camera frame would be
            # wrong, so no markers, no collision objects and no id tracking; the Scene says metric=false.
            self._warn("not_metric", "no usable depth + CameraInfo: scene published with metric=false only")
            scene = scene_result_to_msg(result, out_header, list(range(len(result.objects))))
            self._send(self._scene_pub, scene)
            return scene
        # Collision geometry first (seconds for a convex decomposition): a track must not reach
        # object_timeout_s, and be REMOVEd by the diagnostics timer, before its ADD goes out.
        shapes = collision_shapes(result, self._collision_geometry) if self._collision_pub is not None else None
        with self._publishing:
            now_s = self.get_clock().now().nanoseconds * 1e-9
            centroids = np.array([obj.pose.translation for obj in result.objects]).reshape(-1, 3)
            sizes = np.array([obj.size for obj in result.objects]).reshape(-1, 3)
            with self._tracker_lock:
                update = self._tracker.update(centroids, sizes, now_s)
                self._last_header = out_header
            scene = scene_result_to_msg(result, out_header, list(update.ids))
            self._send(self._scene_pub, scene)
            self._send(
                self._marker_pub,
                scene_to_markers(scene, max_faces=self.config.marker_max_faces,
                                 lifetime=Duration(seconds=self.config.object_timeout_s).to_msg()),
            )
            if self._collision_pub is not None:
                self._publish_removals(update.removed_ids, out_header)
                for line in shapes.skipped:
                    self._warn("collision_geometry", line)
                for collision in scene_to_collision_objects(scene, shapes, self._collision_cls, db=self.config.collision_object_db):
                    self._send(self._collision_pub, collision)
        return scene

    def _publish_removals(self, ids: Sequence[int], header: Header) -> None:
        if self._collision_pub is None:
            return
        for object_id in ids:
            self._send(self._collision_pub, collision_object_remove(object_id, header, self._collision_cls))

    def _shutting_down(self) -> bool:
        return self._stopping or not self.context.ok()

    def _check_not_shutting_down(self) -> None:
        if self._shutting_down():
            raise _ShuttingDown

    def _send(self, publisher, msg) -> None:
        """Publish, or raise _ShuttingDown when the node stops or its context is going away.

        The context can shut down (SIGINT) between the check and the publish: the RCLError
        ("publisher's context is invalid") or InvalidHandle (publisher destroyed) that follows
        means the same, and is not an error. Any other failure propagates.
        """
        self._check_not_shutting_down()
        try:
            publisher.publish(msg)
        except (_rclpy.RCLError, InvalidHandle):
            self._check_not_shutting_down()
            raise

    # ------------------------------------------------------------------ diagnostics

    def _warn(self, category: str, text: str) -> None:
        now = time.monotonic()
        with self._stats_lock:
            stats = self._stats
            stats.warning_counts[category] = stats.warning_counts.get(category, 0) + 1
            stats.warnings_since_publish.append(text)
            stats.last_warning = text
            log = now - stats.last_log_s.get(category, -np.inf) >= _LOG_EVERY_S
            if log:
                stats.last_log_s[category] = now
        if log:
            self.get_logger().warning(text)

    def _error(self, text: str, details: str) -> None:
        now = time.monotonic()
        with self._stats_lock:
            self._stats.errors_since_publish.append(text)
            self._stats.last_error = text
            log = now - self._stats.last_log_s.get("error", -np.inf) >= _LOG_EVERY_S
            if log:
                self._stats.last_log_s["error"] = now
        if log:
            self.get_logger().error(f"{text}\n{details}")

    def _on_diagnostics_timer(self) -> None:
        now = time.monotonic()
        # This timer shares the subscriptions' callback group: its lateness is time in which they
        # could not take messages either.
        lateness = self._diag_lateness.run(now)
        with self._cv:
            stale = self._arrivals.stale(now, executor_lag_s=lateness)
            periods = {key: self._arrivals.period_s(key) for key in self._stream_topics_by_key}
            sync_dropped, slot_dropped = self._sync.messages_dropped, self._slot.dropped
            busy = self._worker_busy
        stale_text = [
            f"{s.stream} ('{self._stream_topics_by_key[s.stream]}') silent for {s.silent_s:.1f} s "
            f"(limit {s.limit_s:.1f} s)"
            for s in stale
        ]
        for silence, text in zip(stale, stale_text):
            if silence.stream not in self._stale:  # log once per episode; the status stays WARN meanwhile
                self._warn("stale_view", f"{text}: no complete set can form")
        with self._stats_lock:
            self._stats.stale = tuple(stale_text)
            if stale_text:
                self._stats.warnings_since_publish.extend(stale_text)
        now_stale = {s.stream for s in stale}
        for key in sorted(self._stale - now_stale):
            self.get_logger().info(f"{key} ('{self._stream_topics_by_key[key]}') publishes again")
        self._stale = now_stale
        expired = ()
        if self._publishing.acquire(blocking=False):  # else a result is going out: expire next tick
            try:
                with self._tracker_lock:
                    expired = self._tracker.expire(self.get_clock().now().nanoseconds * 1e-9)
            finally:
                self._publishing.release()
        with self._tracker_lock:
            tracked = len(self._tracker.active_ids)
            header = self._last_header
        try:
            self._publish_removals(expired, header)
            self._send(
                self._diag_pub,
                self._diagnostic_array(
                    {"sets_dropped": slot_dropped, "messages_dropped": sync_dropped, "worker_busy": busy,
                     "tracked_objects": tracked, "expired_objects": " ".join(map(str, expired)),
                     "stream_periods_s": " | ".join(
                         f"{key} {'-' if period is None else f'{period:.2f}'}" for key, period in periods.items()
                     ),
                     "timer_lateness_s": f"{lateness:.3f}"}
                ),
            )
        except _ShuttingDown:
            pass

    def _diagnostic_array(self, live_values: dict) -> DiagnosticArray:
        """One DiagnosticStatus: level/message from the warnings and errors since the last one."""
        with self._stats_lock:
            stats = self._stats
            warnings, stats.warnings_since_publish = stats.warnings_since_publish, []
            errors, stats.errors_since_publish = stats.errors_since_publish, []
            if errors:
                level, message = DiagnosticStatus.ERROR, errors[-1]
            elif warnings:
                level, message = DiagnosticStatus.WARN, warnings[-1]
            else:
                level, message = DiagnosticStatus.OK, "ok"
            values = {
                "mode": self.config.mode,
                "model": self.pipeline.description,
                "frames_processed": stats.frames_processed,
                "sets_received": stats.sets_received,
                "service_calls": stats.service_calls,
                **live_values,
                "latency_s": f"{stats.last_latency_s:.3f}",
                "inference_s": f"{stats.last_inference_s:.3f}",
                "last_warning": stats.last_warning,
                "last_error": stats.last_error,
                "recent_warnings": " | ".join(warnings),
                "stale_views": " | ".join(stats.stale),
            }
            values.update({f"warnings.{name}": count for name, count in sorted(stats.warning_counts.items())})
            values.update({f"stage.{t.name}_s": f"{t.seconds:.3f}" for t in stats.last_timings})
        status = DiagnosticStatus(
            level=level, name=DIAGNOSTIC_NAME, message=message, hardware_id=self.get_fully_qualified_name(),
            values=[KeyValue(key=key, value=str(value)) for key, value in values.items()],
        )
        return DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()), status=[status])

    # ------------------------------------------------------------------ shutdown

    def stop_background_work(self, timeout_s: float | None = None) -> bool:
        """Stop the worker: it takes no new set and publishes nothing more. Every service call
        waiting for it is answered "node shutting down" at once. Waits up to `timeout_s` seconds
        (None: without limit) for the run in progress, and returns whether the worker has ended.
        Idempotent."""
        with self._cv:
            self._stopping = True
            waiting = [job for job in (self._service_job, self._running_job) if job is not None]
            self._service_job = None
            self._cv.notify_all()
        for job in waiting:
            job.error = SHUTTING_DOWN_MESSAGE
            job.done.set()
        if self._worker.is_alive() and threading.current_thread() is not self._worker:
            self._worker.join(timeout_s)
        return not self._worker.is_alive()

    def destroy_node(self) -> None:
        """Stop the worker, waiting for its current run to end (it publishes nothing), then destroy."""
        self.stop_background_work(None)
        super().destroy_node()


# ---------------------------------------------------------------------- helpers


def _decode(kind: StreamKind, msg) -> np.ndarray:
    """Decode one message of a stream: RGB [H, W, 3] uint8, depth [H, W] float32 metres, mask ids
    [H, W] integer. Raises ImageConversionError."""
    if kind is StreamKind.DEPTH:
        return depth_msg_to_metres(msg)
    if isinstance(msg, CompressedImage):
        array = compressed_image_to_array(msg)
    else:
        array = image_msg_to_array(msg)
    if kind is StreamKind.MASK:
        if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer):
            raise ImageConversionError(f"instance mask must be a one-channel integer image, got {msg.encoding}")
        return array
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.dtype != np.uint8 or array.shape[2] != 3:
        raise ImageConversionError(f"colour image must decode to 8-bit RGB, got {array.dtype} {array.shape}")
    return array


def _object_ids(masks: Sequence[np.ndarray]) -> np.ndarray:
    """Sorted instance ids (> 0) present in any view: one object per id, same order in every view."""
    if not masks:
        return np.zeros(0, dtype=np.int64)
    ids = np.unique(np.concatenate([np.unique(m) for m in masks]))
    return ids[ids > 0].astype(np.int64)


class SpinThread(threading.Thread):
    """Daemon thread spinning one executor until it (or its context) shuts down.

    `error` keeps whatever ended the spin early, so owners can report it: rclpy's executor raises
    InvalidHandle out of spin() when a node is destroyed while the executor still waits on it
    (shut the executor down first, then destroy its nodes).
    """

    def __init__(self, executor: Executor) -> None:
        super().__init__(name="ros_executor", daemon=True)
        self.executor = executor
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.executor.spin()
        except ExternalShutdownException:
            pass
        except BaseException as error:  # noqa: BLE001 - kept for the owner, then re-raised for the log
            self.error = error
            raise


def spin_in_thread(executor: Executor) -> SpinThread:
    """Start a SpinThread for `executor`; returns it."""
    thread = SpinThread(executor)
    thread.start()
    return thread


@runtime_checkable
class BackgroundWork(Protocol):
    """A node with a thread of its own besides the executor's (SceneGenNode's worker)."""

    def stop_background_work(self, timeout_s: float | None = None) -> bool:
        """Stop it, release callbacks that wait on it, wait up to timeout_s; True once it ended."""


def run_node(make_node: Callable[[], Node], make_executor: Callable[[], Executor], args: list[str] | None = None) -> None:
    """Console-script body: init, spin until SIGINT/SIGTERM or shutdown, then stop quickly and
    quietly (exit status 0, no traceback, no ERROR).

    rclpy's signal handlers shut the context down on SIGINT and SIGTERM; spin then raises
    KeyboardInterrupt or ExternalShutdownException, both of which end the program normally, or
    (when the shutdown lands between spin's context check and its wait set) an RCLError about the
    invalid context, which then means the same.

    A node's background work (`BackgroundWork`) gets `_STOP_GRACE_S` seconds to end. Work still
    running after that (an inference cannot be interrupted) is not waited for: the process flushes
    its logs and leaves with os._exit(0). Interpreter finalization is no option then: it would end
    that daemon thread inside torch's C++ code and abort the process ("terminate called without an
    active exception", exit status 134).
    """
    rclpy.init(args=args)
    node = None
    executor = make_executor()
    try:
        node = make_node()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except _rclpy.RCLError:
        if rclpy.ok():
            raise
    finally:
        ended = _stop(node, executor)
    if not ended:
        _finish_logging()
        os._exit(0)


def _finish_logging() -> None:
    """Flush what os._exit would lose: Python's streams, and rcl's log file (~/.ros/log), which
    spdlog writes out only every few seconds and when rclpy finalizes logging (as
    Context.shutdown() does, under the context's lock, after destroying the nodes)."""
    sys.stdout.flush()
    sys.stderr.flush()
    context = rclpy.utilities.get_default_context()
    with context._lock:
        context._logging_fini()


def _stop(node: Node | None, executor: Executor) -> bool:
    """Stop background work (bounded), the executor, the node and rclpy; False when the background
    work is still running, and then the node is left alone: destroying it would wait for it."""
    if threading.current_thread() is threading.main_thread():
        # A second Ctrl-C would only turn this bounded clean-up into a KeyboardInterrupt traceback.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Before the executor's shutdown, which waits for running callbacks: a service call may be
    # waiting for the worker.
    ended = node.stop_background_work(_STOP_GRACE_S) if isinstance(node, BackgroundWork) else True
    executor.shutdown()
    if ended:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return ended


def main(args: list[str] | None = None) -> None:
    """Console script `scenegen_node`."""
    run_node(SceneGenNode, lambda: MultiThreadedExecutor(num_threads=3), args)


if __name__ == "__main__":
    main()
