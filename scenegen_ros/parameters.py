"""Every parameter of the SceneGen node, declared in one place.

Names, types and descriptions live in `PARAMETERS` below; the default VALUES live only in
`config/scenegen.yaml` (the params file shipped with the package), which `load_defaults()` reads
and checks against `PARAMETERS` (same names, matching types). `declare_parameters(node)` declares
them all (read-only: the node does not reconfigure at run time) and returns a validated
`NodeConfig`.
"""

from __future__ import annotations

import pathlib
import sys
from dataclasses import dataclass
from typing import Any, Mapping

import yaml
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter

from scenegen_core.collision_geometry import CollisionGeometryConfig
from scenegen_core.pipeline import PipelineConfig
from scenegen_core.registration import REGISTRATION_MODES
from scenegen_ros.sync import StalenessConfig, SyncConfig
from scenegen_ros.tracking import TrackerConfig

NODE_NAME = "scenegen_node"
PACKAGE = "scenegen_ros"
VIEW_PLACEHOLDER = "{view}"
MODES = ("continuous", "on_demand")
COLLISION_MODES = ("auto", "true", "false")


_T = Parameter.Type


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    type: Parameter.Type
    description: str


PARAMETERS: tuple[ParameterSpec, ...] = (
    ParameterSpec("views", _T.INTEGER, "Number of camera views (>= 1); view 0 is the reference camera."),
    ParameterSpec(
        "image_topics", _T.STRING_ARRAY,
        "RGB topic per view (sensor_msgs/Image rgb8/bgr8/rgba8/bgra8/mono8, or CompressedImage), or one "
        "entry with '{view}' expanded per view.",
    ),
    ParameterSpec(
        "compressed", _T.BOOL_ARRAY,
        "Per view: subscribe sensor_msgs/CompressedImage instead of Image; one entry applies to all views.",
    ),
    ParameterSpec(
        "depth_topics", _T.STRING_ARRAY,
        "Depth topic per view aligned to the RGB image (16UC1/mono16 millimetres or 32FC1 metres); '' = none.",
    ),
    ParameterSpec(
        "camera_info_topics", _T.STRING_ARRAY,
        "sensor_msgs/CameraInfo topic per view; must arrive before depth can be used; '' = none.",
    ),
    ParameterSpec(
        "mask_topics", _T.STRING_ARRAY,
        "Instance-id image per view (mono8/mono16/16UC1/32SC1): 0 = background, i+1 = object i in the same "
        "order in every view; '' = none.",
    ),
    ParameterSpec("sync_slop_s", _T.DOUBLE, "Max header-stamp spread inside one synchronized set, seconds."),
    ParameterSpec(
        "queue_size", _T.INTEGER,
        "Messages buffered per input stream while matching stamps, and its subscription QoS depth (>= 1).",
    ),
    ParameterSpec(
        "stale_set_timeout_s", _T.DOUBLE,
        "A view stream with no message for this long (and for stale_periods of its observed periods) is reported "
        "(warning + diagnostic), seconds; time the node itself could not run callbacks does not count.",
    ),
    ParameterSpec(
        "stale_periods", _T.DOUBLE,
        "A view stream is reported only when silent for more than this many of its observed inter-arrival periods "
        "(median of the recent ones) as well, so a slow or lossy camera is not reported between frames (> 0).",
    ),
    ParameterSpec(
        "require_camera_info", _T.BOOL,
        "true: skip sets whose views lack CameraInfo; false: run them without metric placement.",
    ),
    ParameterSpec("mode", _T.STRING, "'continuous' (process the newest set) or 'on_demand' (service only)."),
    ParameterSpec(
        "service_timeout_s", _T.DOUBLE,
        "Wait for a ~/generate_scene result when the request's timeout_s <= 0, seconds.",
    ),
    ParameterSpec("max_objects", _T.INTEGER, "Objects beyond this are dropped by the pipeline (>= 1)."),
    ParameterSpec("device", _T.STRING, "Torch device: cpu, cuda, cuda:N."),
    ParameterSpec("dtype", _T.STRING, "auto, fp32, fp16 or bf16."),
    ParameterSpec("model_path", _T.STRING, "Weights directory in the official layout; '' = embedded default."),
    ParameterSpec("steps", _T.INTEGER, "Flow sampler steps (>= 1)."),
    ParameterSpec(
        "registration", _T.STRING,
        "Fit of the generated meshes to depth (scenegen_core.registration): 'similarity' (per-object metric scale "
        "and pose; for weak predicted layouts such as the embedded default's), 'rigid' (one scene scale, per-object "
        "rigid correction; for the released weights), 'scene' (one similarity for the scene) or 'off' (centre fit).",
    ),
    ParameterSpec("cfg_strength", _T.DOUBLE, "Classifier-free guidance strength."),
    ParameterSpec("seed", _T.INTEGER, "Sampler noise seed (same seed and input give the same scene)."),
    ParameterSpec("frame_id_override", _T.STRING, "Output frame id; '' = the frame of view 0's image header."),
    ParameterSpec("marker_max_faces", _T.INTEGER, "Per-object triangle budget of the RViz markers (>= 4)."),
    ParameterSpec("collision_max_faces", _T.INTEGER, "Per-object (per convex part) triangle budget of MoveIt collision meshes (>= 4)."),
    ParameterSpec(
        "collision_geometry", _T.STRING,
        "Collision geometry per object: 'mesh' (the generated surface, closed), 'convex_hull', 'convex_decomposition' "
        "(CoACD convex parts; seconds per object) or 'box' (an oriented box primitive). Each contains the object's "
        "depth points.",
    ),
    ParameterSpec(
        "collision_padding_m", _T.DOUBLE,
        "Collision geometry grows by this margin and holds every depth point at least this deep, metres (>= 0).",
    ),
    ParameterSpec("collision_max_parts", _T.INTEGER, "Most convex parts per object for 'convex_decomposition' (>= 1)."),
    ParameterSpec(
        "publish_collision_objects", _T.STRING,
        "'auto' (when moveit_msgs is importable), 'true' (moveit_msgs required) or 'false'.",
    ),
    ParameterSpec("collision_topic", _T.STRING, "Topic of the moveit_msgs/CollisionObject messages."),
    ParameterSpec(
        "collision_object_db", _T.STRING,
        "object_recognition_msgs/ObjectType.db of every collision object (the object database its key, the "
        "label, refers to, as a JSON/YAML string); '' = none.",
    ),
    ParameterSpec("object_timeout_s", _T.DOUBLE, "Tracked objects not seen for this long are removed, seconds."),
    ParameterSpec(
        "track_max_match_cost_m", _T.DOUBLE,
        "Id matching gate: centroid distance + 0.5 * size difference above this starts a new id, metres.",
    ),
    ParameterSpec("diagnostics_period_s", _T.DOUBLE, "Period of the /diagnostics status, seconds."),
)

_PYTHON_TYPES = {
    _T.INTEGER: int,
    _T.DOUBLE: float,
    _T.STRING: str,
    _T.BOOL: bool,
}
_ARRAY_ITEM_TYPES = {_T.STRING_ARRAY: str, _T.BOOL_ARRAY: bool}


@dataclass(frozen=True)
class ViewTopics:
    """Topics of one view; "" = not subscribed."""

    image: str
    compressed: bool
    depth: str
    camera_info: str
    mask: str


@dataclass(frozen=True)
class NodeConfig:
    """Validated node settings (see config/scenegen.yaml for meanings and units)."""

    views: tuple[ViewTopics, ...]
    sync_slop_s: float
    queue_size: int
    stale_set_timeout_s: float
    stale_periods: float
    require_camera_info: bool
    mode: str
    service_timeout_s: float
    max_objects: int
    device: str
    dtype: str
    model_path: str
    steps: int
    registration: str
    cfg_strength: float
    seed: int
    frame_id_override: str
    marker_max_faces: int
    collision_max_faces: int
    collision_geometry: str
    collision_padding_m: float
    collision_max_parts: int
    publish_collision_objects: str
    collision_topic: str
    collision_object_db: str
    object_timeout_s: float
    track_max_match_cost_m: float
    diagnostics_period_s: float

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.publish_collision_objects not in COLLISION_MODES:
            raise ValueError(
                f"publish_collision_objects must be one of {COLLISION_MODES}, got {self.publish_collision_objects!r}"
            )
        for name in ("max_objects", "steps", "queue_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("marker_max_faces", "collision_max_faces"):
            if getattr(self, name) < 4:
                raise ValueError(f"{name} must be >= 4, got {getattr(self, name)}")
        for name in ("service_timeout_s", "diagnostics_period_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not self.collision_topic:
            raise ValueError("collision_topic must not be empty")
        if self.registration not in REGISTRATION_MODES:
            raise ValueError(f"registration must be one of {tuple(REGISTRATION_MODES)}, got {self.registration!r}")
        for index, view in enumerate(self.views):
            if not view.image:
                raise ValueError(f"view {index} has no image topic")
            if view.depth and not view.camera_info:
                raise ValueError(f"view {index} has a depth topic but no camera_info topic (depth needs intrinsics)")
        # The sync, staleness, tracker and collision-geometry configs validate their own ranges.
        self.collision_geometry_config()
        self.sync_config()
        self.staleness_config()
        self.tracker_config()

    def pipeline_config(self) -> PipelineConfig:
        return PipelineConfig(
            model_path=self.model_path,
            device=self.device,
            dtype=self.dtype,
            steps=self.steps,
            cfg_strength=self.cfg_strength,
            max_objects=self.max_objects,
            seed=self.seed,
            registration=REGISTRATION_MODES[self.registration],
        )

    def collision_geometry_config(self) -> CollisionGeometryConfig:
        return CollisionGeometryConfig(
            kind=self.collision_geometry,
            max_faces=self.collision_max_faces,
            padding_m=self.collision_padding_m,
            max_parts=self.collision_max_parts,
        )

    def sync_config(self) -> SyncConfig:
        return SyncConfig(self.sync_slop_s, self.queue_size)

    def staleness_config(self) -> StalenessConfig:
        return StalenessConfig(timeout_s=self.stale_set_timeout_s, periods=self.stale_periods)

    def tracker_config(self) -> TrackerConfig:
        return TrackerConfig(max_match_cost_m=self.track_max_match_cost_m, object_timeout_s=self.object_timeout_s)


def default_parameters_file() -> pathlib.Path:
    """config/scenegen.yaml beside the package (source/editable install), under this environment's
    prefix (where scripts/build_interfaces.sh installs share/scenegen_ros, so a plain pip install
    into that venv finds it) or in the ament share dir (colcon)."""
    candidates = [
        pathlib.Path(__file__).resolve().parents[1] / "config" / "scenegen.yaml",
        pathlib.Path(sys.prefix) / "share" / PACKAGE / "config" / "scenegen.yaml",
    ]
    if not any(path.is_file() for path in candidates):
        try:
            from ament_index_python.packages import get_package_share_directory

            candidates.append(pathlib.Path(get_package_share_directory(PACKAGE)) / "config" / "scenegen.yaml")
        except (ImportError, LookupError, OSError):
            pass  # not installed through ament (or no AMENT_PREFIX_PATH): only the source layout counts
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"scenegen.yaml (the parameter defaults) not found; looked in {[str(p) for p in candidates]}")


def load_defaults(path: pathlib.Path | None = None) -> dict[str, Any]:
    """Read `<node>: ros__parameters:` from the params file and check it against PARAMETERS.

    Raises ValueError on a missing or unknown name or a value of the wrong type.
    """
    path = default_parameters_file() if path is None else pathlib.Path(path)
    document = yaml.safe_load(path.read_text())
    try:
        values = document[NODE_NAME]["ros__parameters"]
    except (KeyError, TypeError) as error:
        raise ValueError(f"{path}: expected '{NODE_NAME}: ros__parameters:' at the top level") from error
    names = {spec.name for spec in PARAMETERS}
    missing, unknown = sorted(names - set(values)), sorted(set(values) - names)
    if missing or unknown:
        raise ValueError(f"{path}: missing parameters {missing}, unknown parameters {unknown}")
    for spec in PARAMETERS:
        _check_type(spec, values[spec.name], str(path))
    return dict(values)


def declare_parameters(node: Node, defaults: Mapping[str, Any] | None = None) -> NodeConfig:
    """Declare every parameter on `node` (overrides from --params-file / launch win) and return
    the validated NodeConfig. Raises ValueError naming the bad parameter."""
    defaults = load_defaults() if defaults is None else defaults
    values = {}
    for spec in PARAMETERS:
        descriptor = ParameterDescriptor(description=spec.description, read_only=True)
        default = defaults[spec.name]
        # rcl reads an empty YAML list as "not set", and an empty Python list has no type: declare
        # those by type and read "not set" back as the empty list.
        declared = node.declare_parameter(spec.name, default if default != [] else spec.type, descriptor)
        values[spec.name] = [] if declared.type_ == _T.NOT_SET and spec.type in _ARRAY_ITEM_TYPES else declared.value
    return config_from_values(values)


def config_from_values(values: Mapping[str, Any]) -> NodeConfig:
    """Build a NodeConfig from plain parameter values (lists may be tuples or arrays)."""
    count = int(values["views"])
    if count < 1:
        raise ValueError(f"views must be >= 1, got {count}")
    images = _per_view(values["image_topics"], count, "image_topics", "")
    compressed = _per_view(list(values["compressed"]), count, "compressed", False)
    depths = _per_view(values["depth_topics"], count, "depth_topics", "")
    infos = _per_view(values["camera_info_topics"], count, "camera_info_topics", "")
    masks = _per_view(values["mask_topics"], count, "mask_topics", "")
    views = tuple(
        ViewTopics(images[k], bool(compressed[k]), depths[k], infos[k], masks[k]) for k in range(count)
    )
    scalars = {spec.name: values[spec.name] for spec in PARAMETERS if spec.type in _PYTHON_TYPES}
    del scalars["views"]
    return NodeConfig(views=views, **scalars)


def _per_view(entries, count: int, name: str, empty) -> list:
    entries = list(entries)
    if not entries:
        return [empty] * count
    if len(entries) == 1 and count > 1:
        entry = entries[0]
        if isinstance(entry, str) and VIEW_PLACEHOLDER in entry:
            return [entry.replace(VIEW_PLACEHOLDER, str(k)) for k in range(count)]
        if isinstance(entry, bool):
            return [entry] * count
        raise ValueError(f"{name} has 1 entry for {count} views; give one per view or use '{VIEW_PLACEHOLDER}'")
    if len(entries) != count:
        raise ValueError(f"{name} has {len(entries)} entries for {count} views")
    return [entry.replace(VIEW_PLACEHOLDER, str(k)) if isinstance(entry, str) else entry for k, entry in enumerate(entries)]


def _check_type(spec: ParameterSpec, value: Any, where: str) -> None:
    if spec.type in _PYTHON_TYPES:
        expected = _PYTHON_TYPES[spec.type]
        # bool is an int subclass; an int where a double is declared would make rcl infer INTEGER.
        ok = type(value) is expected
    else:
        item = _ARRAY_ITEM_TYPES[spec.type]
        ok = isinstance(value, list) and all(type(v) is item for v in value)
    if not ok:
        raise ValueError(f"{where}: parameter {spec.name} must be {spec.type.name}, got {value!r}")
