"""`python -m scenegen_core.download` without network: fails fast, names every expected file."""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]

HANG_GUARD_S = 120  # only protects the suite from a hung child; not a speed requirement

EXPECTED_FILES = {
    "scenegen": ["scenegen/pipeline.json", "scenegen/ckpts/ss_dec_conv3d_16l8_fp16.json"],
    "vggt": ["VGGT-1B/model.safetensors", "VGGT-1B/model.pt"],
    "dinov2": ["dinov2/dinov2_vitl14_reg4_pretrain.pth", "dinov2/config.json", "dinov2/model.safetensors"],
    "sam2": ["sam2-hiera-large/sam2_hiera_large.pt"],
}


def run_download(dest, *extra, env_overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(env_overrides)
    env["HF_HOME"] = str(dest / "hf_home")  # never touch the user's cache
    return subprocess.run(
        [sys.executable, "-m", "scenegen_core.download", "--dest", str(dest / "weights"), *extra],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )


def closed_local_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_lists_every_file(stderr: str, dest, components):
    weights = dest / "weights"
    for component in components:
        for rel in EXPECTED_FILES[component]:
            assert str(weights / rel) in stderr, f"{rel} not named in:\n{stderr}"
    assert "place these in" in stderr


def test_offline_mode_fails_with_file_list(tmp_path):
    proc = run_download(tmp_path, env_overrides={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 2, proc.stderr
    assert "network unavailable: HF_HUB_OFFLINE" in proc.stdout
    assert_lists_every_file(proc.stderr, tmp_path, EXPECTED_FILES)
    assert "Traceback" not in proc.stderr


def test_unreachable_endpoint_fails_with_file_list(tmp_path):
    endpoint = f"http://127.0.0.1:{closed_local_port()}"
    proc = run_download(tmp_path, "--only", "scenegen,sam2", "--timeout", "5", env_overrides={"HF_ENDPOINT": endpoint})
    assert proc.returncode == 2, proc.stderr
    assert "scenegen  MISSING: network unavailable" in proc.stdout
    # the first connection failure stops further attempts
    assert "sam2      MISSING: skipped, network unavailable" in proc.stdout
    # no retry/back-off loop was entered
    assert "Retrying in" not in proc.stderr
    assert_lists_every_file(proc.stderr, tmp_path, ["scenegen", "sam2"])
    assert "vggt" not in proc.stderr.lower()


def test_complete_layout_needs_no_network(tmp_path):
    weights = tmp_path / "weights"
    pipeline = {"name": "SceneGenImageToScenePipeline", "args": {"models": {
        "sparse_structure_flow_model": "ckpts/ss_flow_scenegen",
        "sparse_structure_decoder": "ckpts/ss_dec_conv3d_16l8_fp16",
    }}}
    (weights / "scenegen" / "ckpts").mkdir(parents=True)
    (weights / "scenegen" / "pipeline.json").write_text(json.dumps(pipeline))
    for stem in ("ss_flow_scenegen", "ss_dec_conv3d_16l8_fp16"):
        for ext in ("json", "safetensors"):
            (weights / "scenegen" / "ckpts" / f"{stem}.{ext}").write_text("{}")
    (weights / "sam2-hiera-large").mkdir()
    (weights / "sam2-hiera-large" / "sam2_hiera_large.pt").write_bytes(b"")
    proc = run_download(tmp_path, "--only", "scenegen,sam2", env_overrides={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "scenegen  ok: already present" in proc.stdout
    assert "all requested weights are in place" in proc.stdout


def test_unknown_component_is_a_usage_error(tmp_path):
    proc = run_download(tmp_path, "--only", "scenegen,clip", env_overrides={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 2
    assert "unknown component(s) ['clip']" in proc.stderr


@pytest.mark.parametrize("text", ["", ","])
def test_empty_component_list_is_rejected(tmp_path, text):
    proc = run_download(tmp_path, "--only", text, env_overrides={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 2
    assert "unknown component" in proc.stderr
