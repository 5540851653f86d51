"""On-disk format of synthetic scenes, writer, reader and seed splits.

Layout (``<root>/<split>/scene_<seed:07d>/``, written to a temporary folder and renamed, so a
scene folder is either complete or absent)::

    meta.json                 format_version, seed, split, config (WorldConfig), table
                              {size_x, size_y, thickness, color, texture}, room, light,
                              query_index, occupancy_resolution, num_cameras, objects: [{index,
                              label, family, shape {kind, dims in metres}, color, texture, resting,
                              placement, extent_m [3], world_from_object, world_from_canonical,
                              relative_pose}] with poses as {translation [3], rotation_wxyz [4],
                              scale}; textures / room / light as in appearance.py (null if none)
    cam{k}_rgb.png            [H, W, 3] uint8 RGB
    cam{k}_depth.npy          [H, W] float32 exact z-depth in metres, camera optical frame, 0 = no hit
                              (a config's depth_noise is applied when views are produced, not stored)
    cam{k}_instances.png      [H, W] uint16 = instance id + 2 (0 table, 1 background, 2 + i object i)
    cam{k}_camera.json        {width, height, K [3x3], camera_from_world [4x4]} (optical frame, metres)
    objects/obj{i}.ply        closed mesh of object i in its object frame (metres, z up, origin at
                              the bottom centre), binary PLY
    objects/obj{i}_occ{R}.npz canonical R^3 grids, bit-packed (np.packbits, C order, index [x, y, z]):
                              "occupancy" (solid) and "surface"; "resolution" = R

Objects are in pipeline order (object 0 = query, largest mask in camera 0). All floats are
written with full precision: ``load_scene(write_scene(s))`` reproduces images, depth, ids,
meshes and poses bit for bit.

Format versions: 2 (this one) added textures, room, light, family and placement; version 1
folders (the idealised world) still load, with ``WorldConfig.idealised()`` values for the config
fields they lack.

Splits by seed range (disjoint, so scene names never collide across splits):
train [0, 1 000 000), val [1 000 000, 1 100 000), test [1 100 000, 1 200 000).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile
from dataclasses import dataclass

import numpy as np
import trimesh
from PIL import Image

from scenegen_core.types import CameraIntrinsics, Mesh, Pose
from scenegen_core.world.appearance import (
    light_from_dict,
    light_to_dict,
    room_from_dict,
    room_to_dict,
    texture_from_dict,
    texture_to_dict,
)
from scenegen_core.world.ground_truth import SceneGroundTruth, compute_ground_truth
from scenegen_core.world.render import RenderResult
from scenegen_core.world.scene import SceneCamera, SyntheticScene, TableSpec, WorldConfig, WorldObject
from scenegen_core.world.shapes import shape_from_dict, shape_to_dict

FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)
SPLITS: dict[str, tuple[int, int]] = {
    "train": (0, 1_000_000),
    "val": (1_000_000, 1_100_000),
    "test": (1_100_000, 1_200_000),
}
_INSTANCE_OFFSET = 2  # stored = id + 2 so table (-2) and background (-1) fit an unsigned PNG


def split_seeds(split: str, count: int, start: int = 0) -> range:
    """Seeds [lo + start, lo + start + count) of a split; ValueError if they leave its range."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {sorted(SPLITS)}")
    lo, hi = SPLITS[split]
    if count < 0 or start < 0 or lo + start + count > hi:
        raise ValueError(f"split {split!r} holds seeds [{lo}, {hi}); start={start} count={count} does not fit")
    return range(lo + start, lo + start + count)


def split_of_seed(seed: int) -> str:
    for name, (lo, hi) in SPLITS.items():
        if lo <= seed < hi:
            return name
    raise ValueError(f"seed {seed} belongs to no split {SPLITS}")


def scene_dir_name(seed: int) -> str:
    return f"scene_{seed:07d}"


def _pose_to_dict(pose: Pose) -> dict:
    return {"translation": pose.translation.tolist(), "rotation_wxyz": pose.rotation_wxyz.tolist(), "scale": pose.scale}


def _pose_from_dict(data: dict) -> Pose:
    return Pose(np.array(data["translation"]), np.array(data["rotation_wxyz"]), float(data["scale"]))


def _write_mesh(path: pathlib.Path, mesh: Mesh) -> None:
    trimesh.Trimesh(mesh.vertices, mesh.faces, process=False).export(path, file_type="ply", encoding="binary")


def _read_mesh(path: pathlib.Path) -> Mesh:
    loaded = trimesh.load(path, file_type="ply", process=False, force="mesh")
    return Mesh(np.asarray(loaded.vertices), np.asarray(loaded.faces))


def _write_grids(path: pathlib.Path, occupancy: np.ndarray, surface: np.ndarray) -> None:
    np.savez_compressed(
        path,
        occupancy=np.packbits(occupancy.ravel()),
        surface=np.packbits(surface.ravel()),
        resolution=np.int32(occupancy.shape[0]),
    )


@dataclass(frozen=True)
class OccupancyGrids:
    """Stored canonical grids of one object: occupancy (solid) and surface, [R, R, R] bool, index [x, y, z]."""

    occupancy: np.ndarray
    surface: np.ndarray


def load_occupancy(scene_dir: str | os.PathLike, index: int) -> OccupancyGrids:
    """Read objects/obj{index}_occ{R}.npz of a scene folder."""
    scene_dir = pathlib.Path(scene_dir)
    resolution = int(_read_meta(scene_dir)["occupancy_resolution"])
    path = scene_dir / "objects" / f"obj{index}_occ{resolution}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"no occupancy file {path}")
    with np.load(path) as data:
        if int(data["resolution"]) != resolution:
            raise ValueError(f"{path}: resolution {int(data['resolution'])} != meta {resolution}")
        count = resolution**3
        grids = [np.unpackbits(data[key], count=count).astype(bool).reshape((resolution,) * 3) for key in ("occupancy", "surface")]
    return OccupancyGrids(*grids)


def write_scene(
    scene: SyntheticScene,
    out_dir: str | os.PathLike,
    ground_truth: SceneGroundTruth | None = None,
) -> pathlib.Path:
    """Write a scene into out_dir/scene_<seed>/ (replacing an existing one); returns that folder.

    ground_truth: computed with compute_ground_truth(scene) when not given; its query must be
    the scene's query.
    """
    ground_truth = compute_ground_truth(scene) if ground_truth is None else ground_truth
    if ground_truth.query_index != scene.query_index or len(ground_truth.objects) != len(scene.objects):
        raise ValueError("ground truth does not belong to this scene (query or object count differ)")
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / scene_dir_name(scene.seed)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=out_dir))
    try:
        (tmp / "objects").mkdir()
        objects_meta = []
        for obj, gt in zip(scene.objects, ground_truth.objects):
            lo, hi = obj.mesh.bounds()
            objects_meta.append(
                {
                    "index": gt.index,
                    "label": obj.label,
                    "family": obj.family,
                    "shape": shape_to_dict(obj.shape),
                    "color": list(obj.color),
                    "texture": texture_to_dict(obj.texture),
                    "resting": obj.resting,
                    "placement": obj.placement,
                    "extent_m": (hi - lo).tolist(),
                    "world_from_object": _pose_to_dict(obj.world_from_object),
                    "world_from_canonical": _pose_to_dict(gt.world_from_canonical),
                    "relative_pose": _pose_to_dict(gt.relative_pose),
                }
            )
            _write_mesh(tmp / "objects" / f"obj{gt.index}.ply", obj.mesh)
            _write_grids(tmp / "objects" / f"obj{gt.index}_occ{ground_truth.resolution}.npz", gt.occupancy, gt.surface)
        meta = {
            "format_version": FORMAT_VERSION,
            "seed": scene.seed,
            "split": split_of_seed(scene.seed),
            "config": scene.config.to_dict(),
            "table": {
                "size_x": scene.table.size_x,
                "size_y": scene.table.size_y,
                "thickness": scene.table.thickness,
                "color": list(scene.table.color),
                "texture": texture_to_dict(scene.table.texture),
            },
            "room": room_to_dict(scene.room),
            "light": light_to_dict(scene.light),
            "query_index": scene.query_index,
            "occupancy_resolution": ground_truth.resolution,
            "num_cameras": len(scene.cameras),
            "objects": objects_meta,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        for k, (camera, render) in enumerate(zip(scene.cameras, scene.renders)):
            Image.fromarray(render.rgb).save(tmp / f"cam{k}_rgb.png")
            np.save(tmp / f"cam{k}_depth.npy", render.depth)
            Image.fromarray((render.instance_ids + _INSTANCE_OFFSET).astype(np.uint16)).save(tmp / f"cam{k}_instances.png")
            camera_meta = {
                "width": camera.intrinsics.width,
                "height": camera.intrinsics.height,
                "K": camera.intrinsics.matrix.tolist(),
                "camera_from_world": np.asarray(camera.camera_from_world).tolist(),
            }
            (tmp / f"cam{k}_camera.json").write_text(json.dumps(camera_meta, indent=1))
        tmp.chmod(0o755)  # mkdtemp creates it private
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _read_meta(scene_dir: pathlib.Path) -> dict:
    path = scene_dir / "meta.json"
    if not path.is_file():
        raise FileNotFoundError(f"{scene_dir} is not a scene folder (no meta.json)")
    meta = json.loads(path.read_text())
    if meta.get("format_version") not in _READABLE_VERSIONS:
        raise ValueError(f"{path}: format_version {meta.get('format_version')} not among the readable {_READABLE_VERSIONS}")
    return meta


def _config_of(meta: dict) -> WorldConfig:
    # Version 1 wrote every field the idealised world had; the newer ones keep its values.
    config = meta["config"] if meta["format_version"] >= 2 else {"preset": "idealised", **meta["config"]}
    return WorldConfig.from_dict(config)


def load_config(scene_dir: str | os.PathLike) -> WorldConfig:
    """The WorldConfig a scene folder was generated with (from meta.json alone)."""
    return _config_of(_read_meta(pathlib.Path(scene_dir)))


def load_scene(scene_dir: str | os.PathLike) -> SyntheticScene:
    """Read a scene folder written by write_scene (images, cameras, geometry; not the grids)."""
    scene_dir = pathlib.Path(scene_dir)
    meta = _read_meta(scene_dir)
    objects = tuple(
        WorldObject(
            shape=shape_from_dict(item["shape"]),
            color=tuple(float(c) for c in item["color"]),
            world_from_object=_pose_from_dict(item["world_from_object"]),
            resting=item["resting"],
            mesh=_read_mesh(scene_dir / "objects" / f"obj{item['index']}.ply"),
            texture=texture_from_dict(item.get("texture")),
            placement=item.get("placement", "table"),
        )
        for item in sorted(meta["objects"], key=lambda item: item["index"])
    )
    cameras, renders = [], []
    for k in range(int(meta["num_cameras"])):
        camera_meta = json.loads((scene_dir / f"cam{k}_camera.json").read_text())
        intrinsics = CameraIntrinsics.from_matrix(np.array(camera_meta["K"]), camera_meta["width"], camera_meta["height"])
        cameras.append(SceneCamera(intrinsics, np.array(camera_meta["camera_from_world"], dtype=np.float64)))
        ids = np.asarray(Image.open(scene_dir / f"cam{k}_instances.png")).astype(np.int32) - _INSTANCE_OFFSET
        renders.append(
            RenderResult(
                rgb=np.asarray(Image.open(scene_dir / f"cam{k}_rgb.png").convert("RGB")),
                depth=np.load(scene_dir / f"cam{k}_depth.npy"),
                instance_ids=ids,
            )
        )
    table = meta["table"]
    return SyntheticScene(
        seed=int(meta["seed"]),
        config=_config_of(meta),
        table=TableSpec(
            table["size_x"], table["size_y"], table["thickness"], tuple(table["color"]), texture_from_dict(table.get("texture"))
        ),
        objects=objects,
        cameras=tuple(cameras),
        renders=tuple(renders),
        query_index=int(meta["query_index"]),
        room=room_from_dict(meta.get("room")),
        light=light_from_dict(meta.get("light")),
    )


def load_relative_poses(scene_dir: str | os.PathLike) -> list[Pose]:
    """SceneGen targets [t, q, s] relative to the query, in object order (from meta.json)."""
    meta = _read_meta(pathlib.Path(scene_dir))
    return [_pose_from_dict(item["relative_pose"]) for item in sorted(meta["objects"], key=lambda item: item["index"])]


def list_scenes(split_dir: str | os.PathLike) -> list[pathlib.Path]:
    """Complete scene folders (with meta.json) directly under split_dir, sorted by seed."""
    return sorted(p.parent for p in pathlib.Path(split_dir).glob("scene_*/meta.json"))


__all__ = [
    "FORMAT_VERSION",
    "SPLITS",
    "split_seeds",
    "split_of_seed",
    "scene_dir_name",
    "write_scene",
    "load_scene",
    "load_config",
    "load_occupancy",
    "load_relative_poses",
    "list_scenes",
    "OccupancyGrids",
]
