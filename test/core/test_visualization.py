"""Overlay pictures: exact pixel values of a box rendered in front of the camera."""

from __future__ import annotations

import numpy as np
import open3d as o3d
import pytest

from scenegen_core.evaluation.visualization import mask_overlay, orbit_camera, overlay, palette_color
from scenegen_core.types import CameraIntrinsics, Mesh

INTRINSICS = CameraIntrinsics(fx=100.0, fy=100.0, cx=31.5, cy=23.5, width=64, height=48)


def front_box() -> Mesh:
    """Box x, y in [-0.1, 0.1], z in [1.0, 1.2] m: its front face z = 1 faces the camera."""
    box = o3d.geometry.TriangleMesh.create_box(0.2, 0.2, 0.2)
    return Mesh(np.asarray(box.vertices) + [-0.1, -0.1, 1.0], np.asarray(box.triangles))


def test_overlay_blends_the_shaded_mesh_and_outlines_it():
    rgb = np.full((48, 64, 3), 100, np.uint8)
    out = overlay(rgb, [front_box()], [[1.0, 0.0, 0.0]], INTRINSICS, alpha=0.55)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    # Face-on Lambert shading gives the full albedo (255, 0, 0); blended 55 % over grey 100.
    assert out[24, 32].tolist() == [round(0.45 * 100 + 0.55 * 255), 45, 45]
    # The box projects to u = 100 * x + 31.5 in [21.5, 41.5]: pixel columns 22..41, rows 14..33.
    covered = np.any(out != 100, axis=2)
    rows, cols = np.nonzero(covered)
    assert (cols.min(), cols.max(), rows.min(), rows.max()) == (22, 41, 14, 33)
    assert out[24, 22].tolist() == [255, 0, 0] and out[14, 30].tolist() == [255, 0, 0]  # outline
    assert np.array_equal(out[0, 0], rgb[0, 0])
    assert np.array_equal(overlay(rgb, [], [], INTRINSICS), rgb)
    with pytest.raises(ValueError, match="colors"):
        overlay(rgb, [front_box()], [[2.0, 0.0, 0.0]], INTRINSICS)
    with pytest.raises(ValueError, match="rgb"):
        overlay(rgb[:10], [front_box()], [[1.0, 0.0, 0.0]], INTRINSICS)


def test_mask_overlay_and_orbit():
    rgb = np.zeros((8, 8, 3), np.uint8)
    masks = np.zeros((1, 8, 8), bool)
    masks[0, 2:6, 2:6] = True
    out = mask_overlay(rgb, masks, np.array([palette_color(0)]), alpha=0.5)
    inner = np.round(0.5 * 255 * np.array(palette_color(0)))
    assert np.allclose(out[3, 3], inner) and np.allclose(out[2, 3], np.round(255 * np.array(palette_color(0))))
    assert out[0, 0].tolist() == [0, 0, 0]
    # Orbiting by 0 degrees is the identity; by 180 degrees it looks back through the box centre.
    assert np.allclose(orbit_camera([front_box()], 0.0), np.eye(4))
    turned = orbit_camera([front_box()], 180.0)
    centre = np.array([0.0, 0.0, 1.1, 1.0])
    assert np.allclose(turned @ centre, centre)
    assert np.allclose((turned @ [0.0, 0.0, 0.0, 1.0])[:3], [0.0, 0.0, 2.2])
