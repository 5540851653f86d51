"""The node-overhead benchmark: synthetic meshes, report structure, CLI (no timing assertions)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("scenegen_ros.msg", reason="scenegen_ros interfaces not built (scripts/build_interfaces.sh)")
from scenegen_core.collision_geometry import CollisionGeometryConfig  # noqa: E402
from scenegen_core.mesh_ops import is_closed_manifold, mesh_volume  # noqa: E402
from scenegen_ros.benchmark import (  # noqa: E402
    STAGES,
    NodeBenchmarkConfig,
    main,
    run_node_benchmark,
    synthetic_result,
    uv_sphere,
)


@pytest.mark.parametrize("faces,expected", [(50_000, 50_000), (5_000, 5_000), (999, 990), (12, 12)])
def test_uv_sphere_is_closed_outward_and_has_the_asked_face_count(faces, expected):
    mesh = uv_sphere(faces, (0.5, 0.4, 0.3))
    assert len(mesh.faces) == expected and is_closed_manifold(mesh)
    assert np.all(np.abs(mesh.vertices) <= 0.5 + 1e-6)
    ellipsoid = 4 / 3 * np.pi * 0.5 * 0.4 * 0.3
    assert 0 < mesh_volume(mesh) <= ellipsoid  # outward winding; inscribed polyhedron
    if faces >= 5000:
        assert mesh_volume(mesh) > 0.99 * ellipsoid


def test_synthetic_result_is_metric_with_distinct_objects():
    result = synthetic_result(4, 2000)
    assert result.metric and len(result.objects) == 4
    assert {len(obj.mesh.faces) for obj in result.objects} == {2000}
    depths = [obj.pose.translation[2] for obj in result.objects]
    assert all(0.8 <= z <= 1.0 for z in depths)
    sizes = np.array([obj.size for obj in result.objects])
    assert np.all((sizes > 0.02) & (sizes < 0.21))


def test_benchmark_reports_every_stage_and_message():
    config = NodeBenchmarkConfig(objects=2, faces=3000, marker_max_faces=1000, collision_geometry=CollisionGeometryConfig(max_faces=200),
                                 object_timeout_s=10.0, collision_object_db="", repeats=1)
    result = run_node_benchmark(config)
    assert [s.name for s in result.stages] == list(STAGES)
    assert all(s.seconds >= 0 for s in result.stages)
    assert sum(s.seconds for s in result.stages) <= result.total_seconds
    assert result.faces_per_object == 3000 and result.vertices_per_object == 3000 // 2 + 2
    scene, markers, collisions = result.messages
    # Scene: every vertex as three float64 (24 bytes) and every triangle as three uint32 at least.
    assert scene.count == 1 and scene.bytes > 2 * (result.vertices_per_object * 24 + 3000 * 12)
    # Markers: at most marker_max_faces triangles per object, three points each.
    assert markers.count == 1 and 0 < markers.bytes < 2 * 1000 * 3 * 24 * 2 + 4096
    if result.collision_available:
        assert collisions.count == 2 and collisions.bytes > 0
    assert result.meets_target == (result.total_seconds <= 0.05)


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="faces"):
        NodeBenchmarkConfig.from_node_defaults(faces=4)
    with pytest.raises(ValueError, match="objects"):
        NodeBenchmarkConfig.from_node_defaults(objects=0)


def test_cli_writes_json(tmp_path, capsys):
    out = tmp_path / "node.json"
    assert main(["--objects", "1", "--faces", "1000", "--repeats", "1", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["config"]["objects"] == 1 and data["faces_per_object"] == 1000
    assert [s["name"] for s in data["stages"]] == list(STAGES) and isinstance(data["meets_target"], bool)
    assert "target" in capsys.readouterr().out
