"""GLB export of generated scenes (trimesh), and a reader used to verify round trips.

* :func:`write_scene_glb`: our layout. One node per :class:`~scenegen_core.types.SceneObject`,
  named ``object_<index>``, holding the object's canonical mesh (vertex colours) with the
  object's ``pose`` as node matrix. Coordinates are written in the result's frame unchanged (no
  axis change): glTF viewers assume y-up, so a scene in a camera optical frame (y down) shows
  upside down there, but robotics tools reading the file get the exact frame of ``frame_id``.
* :func:`write_official_glb`: the official SceneGen demo/inference layout (path B of
  :mod:`scenegen_core.assembly`): y-up asset vertices, query-forced poses, reference-frame move
  and the 1.96 normalisation, nodes ``geometry_<k>`` in ``resorted_indices`` order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import trimesh

from scenegen_core.assembly import ExportAssembly, official_export_assembly
from scenegen_core.types import Mesh, SceneResult


@dataclass(frozen=True, eq=False)
class GlbMesh:
    """One mesh node read back from a GLB file.

    name: node name. local: the node's mesh in its own frame (float32 vertices, colours in [0, 1]
    or None). transform: [4, 4] float64 node -> scene (world of the file) matrix.
    """

    name: str
    local: Mesh
    transform: np.ndarray

    def in_scene_frame(self) -> Mesh:
        """The mesh with the node transform applied (vertices float32, scene frame)."""
        vertices = self.local.vertices.astype(np.float64) @ self.transform[:3, :3].T + self.transform[:3, 3]
        return Mesh(vertices, self.local.faces, self.local.vertex_colors)


def _to_trimesh(vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray | None) -> trimesh.Trimesh:
    rgba = None
    if colors is not None:
        rgb = np.round(np.clip(colors, 0.0, 1.0) * 255.0).astype(np.uint8)
        rgba = np.concatenate([rgb, np.full((len(rgb), 1), 255, np.uint8)], axis=1)
    # process=False: merging/reordering vertices would break the vertex-for-vertex round trip.
    return trimesh.Trimesh(vertices=vertices, faces=faces, vertex_colors=rgba, process=False)


def _write_scene(scene: trimesh.Scene, path: str | os.PathLike) -> None:
    if not scene.geometry:
        raise ValueError("nothing to export: every mesh is empty")
    data = scene.export(file_type="glb")
    with open(path, "wb") as handle:
        handle.write(data)


def write_scene_glb(result: SceneResult, path: str | os.PathLike) -> tuple[str, ...]:
    """Write ``result`` as a binary glTF; returns the node names written, in object order.

    Node ``object_<index>`` = the object's canonical mesh with matrix ``pose.matrix``, so each
    node's vertices after its transform equal ``SceneObject.mesh_in_output_frame()`` (float32
    precision). Objects whose mesh is empty are left out (a glTF mesh needs triangles); they are
    absent from the returned names. Raises ValueError when no object has a mesh.
    """
    scene = trimesh.Scene()
    names = []
    for obj in result.objects:
        if obj.mesh.is_empty:
            continue
        name = f"object_{obj.index}"
        geometry = _to_trimesh(obj.mesh.vertices, obj.mesh.faces, obj.mesh.vertex_colors)
        scene.add_geometry(geometry, node_name=name, geom_name=f"{name}_mesh", transform=obj.pose.matrix)
        names.append(name)
    _write_scene(scene, path)
    return tuple(names)


def write_official_glb(
    meshes: Sequence[Mesh],
    positions,
    path: str | os.PathLike,
    resorted_indices: Sequence[int] | None = None,
) -> ExportAssembly:
    """Write the scene exactly as the official ``run_scene`` places it (geometry untextured).

    meshes: per object in pipeline order, asset frame (z up, [-0.5, 0.5]^3); positions: [N, 8]
    model output; resorted_indices: as in :func:`scenegen_core.assembly.official_export_assembly`.
    Nodes ``geometry_<k>`` hold the y-up ``to_glb`` vertices with matrix
    ``normalize @ T @ A_i``. Returns the assembly that was written.
    """
    assembly = official_export_assembly([m.vertices for m in meshes], positions, resorted_indices)
    scene = trimesh.Scene()
    for k, i in enumerate(assembly.node_order):
        if meshes[i].is_empty:
            raise ValueError(f"object {i} has an empty mesh: the official layout needs every object")
        geometry = _to_trimesh(assembly.local_vertices[i], meshes[i].faces, meshes[i].vertex_colors)
        scene.add_geometry(geometry, node_name=f"geometry_{k}", geom_name=f"geometry_{k}", transform=assembly.node_transforms[i])
    _write_scene(scene, path)
    return assembly


def read_glb_meshes(path: str | os.PathLike) -> list[GlbMesh]:
    """Every mesh node of a GLB file, sorted by node name; vertices exactly as stored."""
    scene = trimesh.load(path, file_type="glb", force="scene", process=False)
    out = []
    for node in scene.graph.nodes_geometry:
        transform, geometry_name = scene.graph[node]
        geometry = scene.geometry[geometry_name]
        colors = None
        visual = geometry.visual
        if isinstance(visual, trimesh.visual.ColorVisuals) and visual.kind == "vertex":
            colors = visual.vertex_colors[:, :3].astype(np.float32) / 255.0
        local = Mesh(np.asarray(geometry.vertices), np.asarray(geometry.faces), colors)
        out.append(GlbMesh(str(node), local, np.asarray(transform, dtype=np.float64)))
    return sorted(out, key=lambda m: m.name)
