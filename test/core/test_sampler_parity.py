"""FlowEulerSampler vs the official FlowEulerGuidanceIntervalSamplerVGGT (fixtures sampler_tiny*)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from scenegen_core.models.ss_flow import SSFlowConfig, SSFlowModel
from scenegen_core.sampler import FlowEulerSampler, SamplerConfig

pytestmark = pytest.mark.parity

# fixture -> (flow weights file, atol for latents, atol for poses)
CASES = {
    "sampler_tiny_fp32": ("ss_flow_tiny_fp32", 1e-4, 1e-4),
    "sampler_tiny": ("ss_flow_tiny", 5e-2, 1e-2),
}
RUNS = {"": 4, "steps6.": 6}  # fixture key prefix -> steps


def _eval_model(reference_dir, weights: str, model_config: dict) -> SSFlowModel:
    tensors = load_file(reference_dir / f"{weights}.safetensors")
    model = SSFlowModel(SSFlowConfig.from_official_json(model_config))
    model.load_state_dict({k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
    return model.eval().requires_grad_(False)


@pytest.fixture(scope="module", params=[(case, prefix) for case in CASES for prefix in RUNS], ids=lambda p: p[0] + ":" + (p[1] or "main"))
def sampler_run(request, reference_dir):
    case, prefix = request.param
    meta = json.loads((reference_dir / f"{case}.json").read_text())
    tensors = load_file(reference_dir / f"{case}.safetensors")
    model = _eval_model(reference_dir, CASES[case][0], meta["model_config"])
    args = meta["runs"]["main" if prefix == "" else prefix]["sampler_args"]
    config = SamplerConfig(steps=args["steps"], cfg_strength=args["cfg_strength"],
                           cfg_interval=tuple(args["cfg_interval"]), rescale_t=args["rescale_t"],
                           batch_passes=False)  # the official call structure; batching: test_sampler_multiview
    model_t: list[torch.Tensor] = []
    hook = model.t_embedder.register_forward_pre_hook(lambda m, inputs: model_t.append(inputs[0].clone()))
    progress: list[tuple[int, int]] = []
    try:
        result = FlowEulerSampler(config).sample(
            model, tensors["input.cond"], generator=torch.Generator().manual_seed(42),
            record_trajectory=True, progress=lambda i, n: progress.append((i, n)),
        )
    finally:
        hook.remove()
    return case, prefix, meta["runs"]["main" if prefix == "" else prefix], tensors, result, model_t, progress


def test_noise_recipe_matches_pipeline(reference_dir):
    tensors = load_file(reference_dir / "sampler_tiny_fp32.safetensors")
    drawn = torch.randn(3, 8, 8, 8, 8, generator=torch.Generator().manual_seed(42))
    assert torch.equal(drawn, tensors["input.noise"])


def test_time_grid_guidance_and_model_inputs(sampler_run):
    _, prefix, run, tensors, result, model_t, progress = sampler_run
    steps = RUNS[prefix]
    np.testing.assert_allclose(result.t_seq, tensors[prefix + "t_seq"].numpy(), rtol=0, atol=1e-15)
    assert [s.guided for s in result.trajectory] == run["cfg_applied_per_step"]
    # one conditional pass per step, plus an unconditional one for guided steps; all get 1000 t
    expected = [t for t, g in zip(run["model_t_input_per_step"], run["cfg_applied_per_step"]) for _ in range(1 + g)]
    assert len(model_t) == len(expected)
    for got, want in zip(model_t, expected):
        assert got.dtype == torch.float32 and got.shape == (3,)
        assert torch.equal(got, torch.full((3,), want, dtype=torch.float32))
    assert progress == [(i + 1, steps) for i in range(steps)]


def test_samples_positions_and_trajectory(sampler_run):
    case, prefix, _, tensors, result, _, _ = sampler_run
    _, atol, pose_atol = CASES[case]
    out = prefix + "output."
    assert (result.samples - tensors[out + "samples"]).abs().max().item() < atol
    assert (result.positions - tensors[out + "positions"]).abs().max().item() < pose_atol
    assert len(result.trajectory) == RUNS[prefix]
    for i, step in enumerate(result.trajectory):
        assert (step.x_t - tensors[f"{out}pred_x_t.{i}"]).abs().max().item() < atol
        assert (step.x_0 - tensors[f"{out}pred_x_0.{i}"]).abs().max().item() < atol
        assert (step.positions - tensors[f"{out}pred_pos_t.{i}"]).abs().max().item() < pose_atol
    assert torch.equal(result.samples, result.trajectory[-1].x_t)
    assert torch.equal(result.positions, result.trajectory[-1].positions)


def test_explicit_noise_equals_generator_and_no_trajectory_by_default(reference_dir):
    meta = json.loads((reference_dir / "sampler_tiny_fp32.json").read_text())
    tensors = load_file(reference_dir / "sampler_tiny_fp32.safetensors")
    model = _eval_model(reference_dir, "ss_flow_tiny_fp32", meta["model_config"])
    sampler = FlowEulerSampler(SamplerConfig(steps=2))
    a = sampler.sample(model, tensors["input.cond"], tensors["input.noise"])
    b = sampler.sample(model, tensors["input.cond"], generator=torch.Generator().manual_seed(42))
    assert a.trajectory is None
    assert torch.equal(a.samples, b.samples) and torch.equal(a.positions, b.positions)
    # a [1, L, C] condition is shared by every object (the official sampler repeats it)
    shared = sampler.sample(model, tensors["input.cond"][:1], tensors["input.noise"])
    repeated = sampler.sample(model, tensors["input.cond"][:1].repeat(3, 1, 1), tensors["input.noise"])
    assert torch.equal(shared.samples, repeated.samples)


def test_sampler_argument_errors(reference_dir):
    model = SSFlowModel(SSFlowConfig.tiny(object_context_tokens=4))
    cond, noise = torch.zeros(2, 6, 64), torch.zeros(2, 8, 8, 8, 8)
    sampler = FlowEulerSampler(SamplerConfig(steps=1))
    with pytest.raises(ValueError, match="eval mode"):
        sampler.sample(model.train(), cond, noise)
    model.eval()
    with pytest.raises(ValueError, match="exactly one"):
        sampler.sample(model, cond)
    with pytest.raises(ValueError, match="exactly one"):
        sampler.sample(model, cond, noise, generator=torch.Generator())
    with pytest.raises(ValueError, match="cond must be"):
        sampler.sample(model, torch.zeros(3, 6, 64), noise)
    with pytest.raises(ValueError, match="neg_cond"):
        sampler.sample(model, cond, noise, neg_cond=torch.zeros(2, 5, 64))
    with pytest.raises(ValueError, match="steps"):
        SamplerConfig(steps=0)
    with pytest.raises(ValueError, match="cfg_interval"):
        SamplerConfig(cfg_interval=(1.0, 0.5))


def test_default_schedule_pass_count():
    config = SamplerConfig()
    assert (config.steps, config.cfg_strength, config.cfg_interval, config.rescale_t, config.sigma_min) == (
        25, 5.0, (0.5, 1.0), 3.0, 1e-5)
    t = config.time_grid()
    assert t[0] == 1.0 and t[-1] == 0.0 and np.all(np.diff(t) < 0)
    guided = sum(config.guided(float(x)) for x in t[:-1])
    # t >= 0.5 after rescaling by 3 <=> linear time >= 0.25: steps 0..18 of 25
    assert guided == 19
    assert config.model_passes() == 25 + guided
