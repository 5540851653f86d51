"""The end-to-end pipeline benchmark runs and reports every stage (timings are not asserted)."""

from __future__ import annotations

import json

import pytest

from scenegen_core.pipeline_benchmark import main, scene_with


def test_scene_with_finds_the_requested_object_count():
    seed, (view,) = scene_with(3, size=64)
    assert len(view.masks) == 3 and view.depth is not None and seed >= 1_100_000


def test_scene_with_several_views_shows_every_object_in_each():
    seed, views = scene_with(2, size=64, views=2)
    assert len(views) == 2 and seed >= 1_100_000
    for view in views:
        assert view.masks.shape[0] == 2 and view.masks.reshape(2, -1).any(1).all()


def test_benchmark_reports_each_stage_per_object_count(tmp_path, capsys):
    out = tmp_path / "timings.json"
    argv = ["--objects", "1", "2", "--repeats", "1", "--steps", "3", "--cache-interval", "2", "--untrained", "--json", str(out)]
    assert main(argv) == 0
    report = json.loads(out.read_text())
    assert "UNTRAINED" in report["description"] and "cache interval 2" in report["description"]
    assert [t["objects"] for t in report["timings"]] == [1, 2]
    for timing in report["timings"]:
        assert list(timing["stages"]) == ["prepare", "encode", "sample", "decode", "mesh", "place"]
        # The stages are timed inside the run, so together they take at most the run's wall time.
        assert 0 < sum(timing["stages"].values()) <= timing["total_s"]
        assert timing["views"] == 1 and timing["total_cpu_s"] > 0
    assert "total s" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--objects", "0"], ["--repeats", "0"], ["--views", "0"]])
def test_bad_counts_are_refused_before_any_model_loads(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "must be >= 1" in capsys.readouterr().err
