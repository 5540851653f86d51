"""The training CLI end to end on a tiny generated set: both stages learn, resume gives the identical
next step, DDP (2 CPU processes, gloo) equals one process on the combined batch, and the export is a
strictly loadable bundle that the pipeline runs."""

from __future__ import annotations

import csv
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from scenegen_core.bundle import load_bundle
from scenegen_core.pipeline import PipelineConfig, SceneGenPipeline
from scenegen_core.training.train import TrainConfig, build_conditioned_flow, main
from scenegen_core.world.scene import WorldConfig, generate_scene

pytestmark = pytest.mark.slow

TINY = {
    "name": "tiny",
    "stages": ["vae", "flow", "export"],
    "data": {
        "train": {"seed_start": 0, "seed_count": 6},
        "val": {"seed_start": 1000000, "seed_count": 2},
        "world": {"preset": "idealised", "max_objects": 3, "image_width": 64, "image_height": 64},
        "occupancy_resolution": 16, "dino_size": 28, "vggt_size": 28, "workers": 1,
    },
    "vae": {
        "encoder": {"latent_channels": 4, "channels": [8, 16], "num_res_blocks": 0, "num_res_blocks_middle": 1, "use_fp16": False},
        "decoder": {"latent_channels": 4, "channels": [16, 8], "num_res_blocks": 0, "num_res_blocks_middle": 1, "use_fp16": False},
        "loss": {"loss_type": "dice", "lambda_kl": 0.001},
        "optim": {"lr": 0.003, "ema_rate": 0.5},
        "run": {"max_steps": 40, "batch_size": 8, "checkpoint_every": 40, "log_every": 5, "seed": 0},
    },
    "flow": {
        "dino": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "image_size": 28},
        "vggt": {"img_size": 28, "embed_dim": 16, "depth": 1, "num_heads": 2},
        "ss_flow": {"resolution": 8, "in_channels": 4, "out_channels": 4, "model_channels": 16, "cond_channels": 16,
                    "num_blocks": 1, "num_heads": 2, "patch_size": 2, "trunk_depth": 1, "num_iteration": 1},
        "loss": {"collision": "official", "collision_resolution": 16},
        "optim": {"lr": 0.003, "ema_rate": 0.5},
        "run": {"max_steps": 40, "batch_size": 2, "checkpoint_every": 2, "log_every": 2, "keep_checkpoints": 100, "seed": 0},
        "max_objects": 3,
    },
    "export": {"description": "tiny test bundle", "sampler": {"steps": 2, "cfg_strength": 3.0, "cfg_interval": [0.5, 1.0], "rescale_t": 3.0}},
}


def _write_config(directory: pathlib.Path, **changes) -> pathlib.Path:
    config = {**TINY, "out_dir": str(directory / "run"), "export": {**TINY["export"], "dir": str(directory / "bundle")}}
    for section, values in changes.items():
        config[section] = {**config[section], **values}
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _log(path: pathlib.Path) -> list[dict[str, float]]:
    with path.open() as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def _checkpoint(run: pathlib.Path, stage: str, step: int) -> dict[str, torch.Tensor]:
    return torch.load(run / stage / "checkpoints" / f"step_{step:07d}.pt", weights_only=True)["module"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> pathlib.Path:
    directory = tmp_path_factory.mktemp("train")
    assert main(["--config", str(_write_config(directory))]) == 0
    return directory


def test_both_stages_learn_and_export_a_loadable_bundle(trained):
    run = trained / "run"
    vae_log, flow_log = _log(run / "vae" / "log.csv"), _log(run / "flow" / "log.csv")
    assert vae_log[-1]["loss"] < 0.8 * vae_log[0]["loss"]
    assert np.mean([r["mse"] for r in flow_log[-5:]]) < 0.9 * flow_log[0]["mse"]
    assert (run / "vae" / "loss_curves.png").stat().st_size > 1000
    assert (run / "flow" / "loss_curves.png").stat().st_size > 1000
    models = load_bundle(trained / "bundle")
    assert models.description == "tiny test bundle"
    scene = generate_scene(1_100_000, WorldConfig.idealised(max_objects=3, image_width=64, image_height=64))
    pipeline = SceneGenPipeline(PipelineConfig(model_path=str(trained / "bundle"), steps=2), models=models)
    result = pipeline.run(scene.views()[:1])
    assert len(result.objects) >= 1 and result.metric


def test_resume_gives_the_identical_next_step(trained, tmp_path):
    shutil.copytree(trained / "run", tmp_path / "run")
    for path in (tmp_path / "run" / "flow").glob("*"):
        if path.is_file() and path.name != "log.csv":
            path.unlink()
    for path in (tmp_path / "run" / "flow" / "checkpoints").glob("step_*.pt"):
        if int(path.stem.split("_")[1]) > 10:
            path.unlink()
    config = _write_config(tmp_path, flow={**TINY["flow"], "run": {**TINY["flow"]["run"], "max_steps": 12}})
    assert main(["--config", str(config), "--stages", "flow"]) == 0
    resumed = _checkpoint(tmp_path / "run", "flow", 12)
    original = _checkpoint(trained / "run", "flow", 12)
    before = _checkpoint(trained / "run", "flow", 10)
    assert any(not torch.equal(before[k], original[k]) for k in original)
    for key, value in original.items():
        assert torch.equal(resumed[key], value), key
    rows = _log(tmp_path / "run" / "flow" / "log.csv")
    assert [r["step"] for r in rows] == [float(s) for s in range(2, 13, 2)]


def test_ddp_step_equals_one_process_on_the_combined_batch(trained, tmp_path):
    one_step = {**TINY["flow"], "run": {**TINY["flow"]["run"], "max_steps": 1, "checkpoint_every": 1}}
    results = {}
    for name, launcher in (("single", [sys.executable, "-m"]), ("ddp", [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517", "-m"])):
        directory = tmp_path / name
        directory.mkdir()
        shutil.copytree(trained / "run" / "vae", directory / "run" / "vae")
        shutil.copytree(trained / "run" / "data", directory / "run" / "data")
        config = _write_config(directory, flow=one_step)
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        subprocess.run([*launcher, "scenegen_core.training.train", "--config", str(config), "--stages", "flow"], check=True, env=env, timeout=600)
        results[name] = torch.load(directory / "run" / "flow" / "checkpoints" / "step_0000001.pt", weights_only=True)
    torch.manual_seed(TINY["flow"]["run"]["seed"])  # the stage seeds the same way before building
    model = build_conditioned_flow(TrainConfig.from_yaml(config))
    initial, names = model.state_dict(), [name for name, _ in model.named_parameters()]
    # The synchronised gradient: AdamW's first moment after one step is (1 - beta1) * clipped grad.
    single_state, ddp_state = results["single"]["optimizer"]["state"], results["ddp"]["optimizer"]["state"]
    # Parameters the forward pass never reaches (e.g. DINOv2's mask token) have no state.
    assert sorted(single_state) == sorted(ddp_state) and len(single_state) > 0.9 * len(names)
    changed = 0
    for index in sorted(single_state):
        name = names[index]
        grad = single_state[index]["exp_avg"]
        torch.testing.assert_close(ddp_state[index]["exp_avg"], grad, atol=1e-7, rtol=1e-4, msg=name)
        # Adam's first step moves each element by ~lr * sign(grad): elements whose gradient is
        # float noise may go either way; every element with a real gradient must agree.
        real = grad.abs() > 1e-6
        single, ddp = results["single"]["module"][name], results["ddp"]["module"][name]
        torch.testing.assert_close(ddp[real], single[real], atol=2e-6, rtol=1e-5, msg=name)
        changed += bool(real.any()) and not torch.equal(single, initial[name])
    assert changed > 10


def test_cache_fingerprint_follows_the_resolved_world():
    from scenegen_core.training.data import SceneDataConfig

    realistic = SceneDataConfig(world={})
    # Spelling out the defaults is the same data; another preset or one changed field is not.
    assert realistic.fingerprint() == SceneDataConfig(world=WorldConfig().to_dict()).fingerprint()
    assert realistic.fingerprint() != SceneDataConfig(world={"preset": "idealised"}).fingerprint()
    assert realistic.fingerprint() != SceneDataConfig(world={"max_objects": 5}).fingerprint()
