"""Training data from the synthetic tabletop world: a cache of per-scene encoder inputs, canonical
occupancies and poses, and SceneGen's sampling of training instances from it.

Each scene (a world seed) is rendered from camera 0 and reduced to what training needs, once:
the official encoder inputs as uint8 (`conditioning.prepare_conditioning_images`: object crops,
mask images, scene image at the DINOv2 size; the VGGT image), every object's canonical occupancy
at the VAE resolution (`world.ground_truth.canonical_occupancy`) and its similarity
world_from_canonical (metres). The cache is one .npz (no pickle), rebuilt only when its recipe
(seeds, world config, sizes) changes.

Instances follow the official ``StandardDatasetBaseVGGT``: every object of a scene is a query in
turn (the query-permutation augmentation); the other objects follow in random order, at most
``max_objects - 1`` of them; poses are the SceneGen targets relative to that query
(`world.ground_truth.relative_pose`). A step's batch holds scenes with equal object counts, so they
run as one scene-batched forward pass.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import pathlib
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from scenegen_core.conditioning import ConditioningImages, prepare_conditioning_images
from scenegen_core.types import Pose
from scenegen_core.world.ground_truth import canonical_from_object, canonical_occupancy, relative_pose, world_from_canonical
from scenegen_core.world.scene import WorldConfig, generate_scene

CACHE_FORMAT = 1


@dataclass(frozen=True)
class SceneDataConfig:
    """What the cache holds. seeds: world seeds [start, start + count); world: WorldConfig fields
    that differ from the defaults; occupancy_resolution: VAE grid edge R; dino_size / vggt_size:
    encoder input sizes (px); vggt_patch: VGGT patch size; min_mask_pixels: objects with smaller
    masks in camera 0 are dropped (their crop is meaningless)."""

    seed_start: int = 0
    seed_count: int = 1000
    world: dict = dataclasses.field(default_factory=dict)
    occupancy_resolution: int = 32
    dino_size: int = 112
    vggt_size: int = 112
    vggt_patch: int = 14
    min_mask_pixels: int = 16

    def __post_init__(self) -> None:
        if self.seed_count < 1:
            raise ValueError("seed_count must be >= 1")
        WorldConfig.from_dict(self.world)  # validates field names and values

    @property
    def world_config(self) -> WorldConfig:
        return WorldConfig.from_dict(self.world)

    def fingerprint(self) -> str:
        # The resolved world, not the given overrides: a change of WorldConfig's defaults is a new cache.
        fields = {**dataclasses.asdict(self), "world": self.world_config.to_dict()}
        text = json.dumps({"format": CACHE_FORMAT, **fields}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SceneCache:
    """Every scene of a SceneDataConfig, objects concatenated (M objects, K scenes).

    scene_offsets: [K + 1] int64, scene k owns objects [offsets[k], offsets[k+1]) in view-0
    mask-area order; seeds [K]; crops [M, S, S, 3] uint8; mask_images [M, S, S] uint8 (one channel
    of the white-on-black mask image); scene_images [K, S, S, 3] uint8; vggt_images [K, T, T, 3]
    uint8; occupancy [M, R, R, R] bool (canonical, index x, y, z); world_from_canonical [M, 4, 4]
    float64 (metres); labels [M] str.
    """

    scene_offsets: np.ndarray
    seeds: np.ndarray
    crops: np.ndarray
    mask_images: np.ndarray
    scene_images: np.ndarray
    vggt_images: np.ndarray
    occupancy: np.ndarray
    world_from_canonical: np.ndarray
    labels: np.ndarray

    @property
    def num_scenes(self) -> int:
        return len(self.seeds)

    def objects_of(self, scene: int) -> range:
        return range(int(self.scene_offsets[scene]), int(self.scene_offsets[scene + 1]))

    def save(self, path: pathlib.Path, fingerprint: str) -> None:
        packed = np.packbits(self.occupancy.reshape(len(self.occupancy), -1), axis=1)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(
            tmp, fingerprint=np.array(fingerprint), resolution=np.int64(self.occupancy.shape[1]), occupancy_packed=packed,
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "occupancy"},
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: pathlib.Path, fingerprint: str | None = None) -> "SceneCache":
        with np.load(path, allow_pickle=False) as data:
            if fingerprint is not None and str(data["fingerprint"]) != fingerprint:
                raise ValueError(f"{path} was built from another data config")
            r = int(data["resolution"])
            occupancy = np.unpackbits(data["occupancy_packed"], axis=1, count=r**3).reshape(-1, r, r, r).astype(bool)
            fields = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name != "occupancy"}
        return cls(occupancy=occupancy, **fields)


def _scene_record(job: tuple[int, SceneDataConfig]) -> dict[str, np.ndarray] | None:
    """One seed -> arrays of its usable objects (None when no object passes min_mask_pixels)."""
    seed, config = job
    scene = generate_scene(seed, config.world_config)
    view = scene.views()[0]
    areas = view.masks.reshape(len(view.masks), -1).sum(1)
    keep = [k for k in np.argsort(-areas, kind="stable") if areas[k] >= config.min_mask_pixels]
    if not keep:
        return None
    masks = view.masks[keep]
    images = prepare_conditioning_images([view.rgb], [masks], config.dino_size, config.vggt_size, config.vggt_patch)
    n = len(keep)
    dino = images.dino[0, 0].numpy()
    objects = [scene.objects[k] for k in keep]
    r = config.occupancy_resolution
    return {
        "crops": dino[:n],
        "mask_images": dino[n : 2 * n, :, :, 0],
        "scene_image": dino[2 * n],
        "vggt_image": images.vggt[0, 0].numpy(),
        "occupancy": np.stack([canonical_occupancy(o.mesh.transformed(canonical_from_object(o.mesh)), r) for o in objects]),
        "world_from_canonical": np.stack([world_from_canonical(o.world_from_object, o.mesh).matrix for o in objects]),
        "labels": np.array([o.label for o in objects]),
    }


def build_scene_cache(config: SceneDataConfig, workers: int = 1, progress: bool = True) -> SceneCache:
    """Render and reduce every seed of `config` (in `workers` processes); scenes keep seed order."""
    jobs = [(seed, config) for seed in range(config.seed_start, config.seed_start + config.seed_count)]
    if workers > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            records = list(tqdm(pool.imap(_scene_record, jobs, chunksize=8), total=len(jobs), disable=not progress, desc="scenes"))
    else:
        records = [_scene_record(job) for job in tqdm(jobs, disable=not progress, desc="scenes")]
    kept = [(seed, rec) for (seed, _), rec in zip(jobs, records) if rec is not None]
    if not kept:
        raise ValueError("no scene has an object with enough mask pixels")
    counts = [len(rec["labels"]) for _, rec in kept]

    def cat(key: str) -> np.ndarray:
        return np.concatenate([rec[key] for _, rec in kept])

    return SceneCache(
        scene_offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        seeds=np.array([seed for seed, _ in kept], dtype=np.int64),
        crops=cat("crops"),
        mask_images=cat("mask_images"),
        scene_images=np.stack([rec["scene_image"] for _, rec in kept]),
        vggt_images=np.stack([rec["vggt_image"] for _, rec in kept]),
        occupancy=cat("occupancy"),
        world_from_canonical=cat("world_from_canonical"),
        labels=cat("labels"),
    )


def load_or_build_cache(config: SceneDataConfig, directory: pathlib.Path, workers: int = 1) -> SceneCache:
    """The cache at directory/scenes_<fingerprint>.npz, built first when missing."""
    directory.mkdir(parents=True, exist_ok=True)
    fingerprint = config.fingerprint()
    path = directory / f"scenes_{fingerprint}.npz"
    if path.is_file():
        return SceneCache.load(path, fingerprint)
    cache = build_scene_cache(config, workers)
    cache.save(path, fingerprint)
    return cache


# ------------------------------------------------------------------------------------------------
# Instances and batches
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    """One training example: a scene and its objects in model order (objects[0] = the query)."""

    scene: int
    objects: tuple[int, ...]


def instance_table(cache: SceneCache, max_objects: int) -> dict[int, list[tuple[int, int]]]:
    """Object count N (after the max_objects cap) -> every (scene, query object) with that N."""
    table: dict[int, list[tuple[int, int]]] = {}
    for scene in range(cache.num_scenes):
        objects = cache.objects_of(scene)
        count = min(len(objects), max_objects)
        table.setdefault(count, []).extend((scene, q) for q in objects)
    return table


def draw_batch(table: dict[int, list[tuple[int, int]]], batch_size: int, rng: np.random.Generator, cache: SceneCache) -> list[Instance]:
    """batch_size instances with one object count, drawn with probability proportional to how many
    instances have that count; each instance's non-query objects in random order, capped."""
    counts = sorted(table)
    weights = np.array([len(table[c]) for c in counts], dtype=np.float64)
    count = counts[rng.choice(len(counts), p=weights / weights.sum())]
    pool = table[count]
    batch = []
    for pick in rng.choice(len(pool), size=batch_size, replace=len(pool) < batch_size):
        scene, query = pool[pick]
        others = [o for o in cache.objects_of(scene) if o != query]
        rng.shuffle(others)
        batch.append(Instance(scene, (query, *others[: count - 1])))
    return batch


def relative_positions(cache: SceneCache, objects: tuple[int, ...]) -> np.ndarray:
    """[N, 8] float32 SceneGen targets (t, q w-first, s) of `objects` relative to objects[0]."""
    canonicals = [Pose.from_matrix(cache.world_from_canonical[o]) for o in objects]
    rows = [np.array([0, 0, 0, 1, 0, 0, 0, 1], dtype=np.float64)]
    for pose in canonicals[1:]:
        rel = relative_pose(pose, canonicals[0])
        rows.append(np.concatenate([rel.translation, rel.rotation_wxyz, [rel.scale]]))
    return np.stack(rows).astype(np.float32)


@dataclass(frozen=True)
class FlowBatch:
    """B scenes x N objects, rows scene-major. images: encoder inputs (V = 1); x0: [B*N, C, G, G, G]
    latents; positions: [B*N, 8] targets; occupancy: [B*N, R, R, R] bool (for checks/metrics)."""

    images: ConditioningImages
    x0: torch.Tensor
    positions: torch.Tensor
    occupancy: torch.Tensor

    @property
    def num_scenes(self) -> int:
        return int(self.images.dino.shape[0])


def make_flow_batch(cache: SceneCache, latents: torch.Tensor, instances: list[Instance]) -> FlowBatch:
    """Gather a batch (latents: [M, C, G, G, G], one per cached object)."""
    dino, vggt, objects = [], [], []
    for inst in instances:
        idx = list(inst.objects)
        masks = np.repeat(cache.mask_images[idx][..., None], 3, axis=-1)
        dino.append(np.concatenate([cache.crops[idx], masks, cache.scene_images[inst.scene][None]]))
        vggt.append(cache.vggt_images[inst.scene])
        objects.extend(idx)
    images = ConditioningImages(dino=torch.from_numpy(np.stack(dino))[:, None], vggt=torch.from_numpy(np.stack(vggt))[:, None])
    positions = np.concatenate([relative_positions(cache, inst.objects) for inst in instances])
    return FlowBatch(images, latents[objects], torch.from_numpy(positions), torch.from_numpy(cache.occupancy[objects]))
