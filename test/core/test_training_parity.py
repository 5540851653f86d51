"""The training objective vs the official FlowMatchingTrainer.training_losses (golden train_loss_tiny):
every loss term of three consecutive calls (the EMA position weight carries over) and d loss / d
parameter for every parameter, with the official ss_flow_tiny_fp32 / ss_decoder_tiny_fp32 weights."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from scenegen_core.models.ss_decoder import SSDecoder, SSDecoderConfig
from scenegen_core.models.ss_flow import SSFlowConfig, SSFlowModel
from scenegen_core.training.losses import FlowLossConfig, PositionWeight, flow_losses

pytestmark = pytest.mark.parity

TERM_NAMES = {"mse": "mse", "pos_loss": "pos_loss", "collision_ratio": "collision_ratio", "trans_loss": "trans_l1", "rot_loss": "rot_l1", "scale_loss": "scale_l1"}


def _load(reference_dir, name, build):
    tensors = load_file(reference_dir / f"{name}.safetensors")
    meta = json.loads((reference_dir / f"{name}.json").read_text())
    module = build(meta["config"])
    module.load_state_dict({k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
    return module


@pytest.fixture(scope="module")
def golden(reference_dir):
    flow = _load(reference_dir, "ss_flow_tiny_fp32", lambda c: SSFlowModel(SSFlowConfig.from_official_json(c)))
    decoder = _load(reference_dir, "ss_decoder_tiny_fp32", lambda c: SSDecoder(SSDecoderConfig.from_official_json(c)))
    return flow.train(), decoder.eval(), load_file(reference_dir / "train_loss_tiny.safetensors")


def _run_three_calls(flow, decoder, data, config):
    weight = PositionWeight(config)
    results = []
    for k in range(3):
        flow.zero_grad(set_to_none=True)
        terms = flow_losses(
            flow, data["input.x0"], data["input.cond"], data["input.positions"], data[f"step{k}.t"],
            data[f"step{k}.noise"], weight, config, decoder=decoder,
        )
        terms.loss.backward()
        grads = {name: p.grad.clone() for name, p in flow.named_parameters() if p.grad is not None}
        results.append((terms, grads))
    return results


def test_every_term_and_gradient_matches_the_official_objective(golden):
    flow, decoder, data = golden
    results = _run_three_calls(flow, decoder, data, FlowLossConfig(collision="official", collision_resolution=64))
    for k, (terms, grads) in enumerate(results):
        for official, ours in TERM_NAMES.items():
            expected = float(data[f"step{k}.terms.{official}"])
            assert float(getattr(terms, ours)) == pytest.approx(expected, rel=1e-5, abs=1e-7), (k, official)
        assert terms.pos_weight == pytest.approx(float(data[f"step{k}.terms.pos_weight"]), rel=1e-5)
        assert float(terms.loss.detach()) == pytest.approx(float(data[f"step{k}.terms.loss"]), rel=1e-5)
        expected_grads = {key.removeprefix(f"step{k}.grad."): v for key, v in data.items() if key.startswith(f"step{k}.grad.")}
        assert set(grads) == set(expected_grads)
        for name, grad in grads.items():
            torch.testing.assert_close(grad, expected_grads[name], atol=1e-4, rtol=0, msg=f"step {k} grad {name}")


def test_the_official_collision_term_adds_no_gradient(golden):
    flow, decoder, data = golden
    results = {}
    for mode in ("official", "none"):
        # decay 1 freezes the EMA at 0.5, so both runs weight the position loss identically.
        config = FlowLossConfig(collision=mode, position_weight_decay=1.0)
        weight = PositionWeight(config)
        weight.load_state_dict({"ema": 0.5})
        flow.zero_grad(set_to_none=True)
        terms = flow_losses(flow, data["input.x0"], data["input.cond"], data["input.positions"], data["step0.t"],
                            data["step0.noise"], weight, config, decoder=decoder)
        terms.loss.backward()
        results[mode] = (terms, {n: p.grad.clone() for n, p in flow.named_parameters()})
    assert float(results["official"][0].collision_ratio) > 0.1
    assert float(results["official"][0].pos_loss) > float(results["none"][0].pos_loss) + 0.1
    for name, grad in results["official"][1].items():
        torch.testing.assert_close(grad, results["none"][1][name], atol=0, rtol=0)
