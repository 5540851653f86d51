"""Synthetic tabletop world with exact ground truth (shapes, scenes, renders, SceneGen targets, dataset).

Import the submodules directly (``scenegen_core.world.scene``, ``.render``, ``.ground_truth``,
``.dataset``, ``.shapes``, ``.appearance``); the names below are the stable entry points.
``WorldConfig()`` is the realistic world, ``WorldConfig.idealised()`` the first one (scene.py).
"""

from scenegen_core.world.dataset import SPLITS, list_scenes, load_config, load_occupancy, load_scene, split_seeds, write_scene
from scenegen_core.world.ground_truth import SceneGroundTruth, compute_ground_truth
from scenegen_core.world.render import RenderResult, render_meshes
from scenegen_core.world.scene import BACKGROUND_ID, TABLE_ID, SyntheticScene, WorldConfig, generate_scene
from scenegen_core.world.shapes import SHAPE_FAMILIES, SHAPE_KINDS

__all__ = [
    "SPLITS",
    "list_scenes",
    "load_config",
    "load_occupancy",
    "load_scene",
    "split_seeds",
    "write_scene",
    "SceneGroundTruth",
    "compute_ground_truth",
    "RenderResult",
    "render_meshes",
    "BACKGROUND_ID",
    "TABLE_ID",
    "SyntheticScene",
    "WorldConfig",
    "generate_scene",
    "SHAPE_FAMILIES",
    "SHAPE_KINDS",
]
