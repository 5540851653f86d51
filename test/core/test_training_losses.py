"""Loss terms of the training objective with pinned t / noise against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from scenegen_core.types import Pose
from scenegen_core.training.losses import (
    FlowLossConfig,
    PositionWeight,
    diffuse,
    position_terms,
    predicted_x0,
    quaternion_to_matrix,
    scene_scale,
    soft_collision_ratio,
    velocity_target,
)

SIGMA = 1e-5


def test_diffuse_velocity_and_x0_by_hand():
    x0 = torch.tensor([[2.0, -1.0]], dtype=torch.float64)
    noise = torch.tensor([[0.5, 3.0]], dtype=torch.float64)
    t = torch.tensor([0.25], dtype=torch.float64)
    # x_t = 0.75 x0 + (1e-5 + 0.99999 * 0.25) noise
    sigma_t = SIGMA + (1 - SIGMA) * 0.25
    expected = [0.75 * 2.0 + sigma_t * 0.5, 0.75 * -1.0 + sigma_t * 3.0]
    x_t = diffuse(x0, t, noise, SIGMA)
    np.testing.assert_allclose(x_t.numpy()[0], expected, rtol=1e-12)
    v = velocity_target(x0, noise, SIGMA)
    np.testing.assert_allclose(v.numpy()[0], [(1 - SIGMA) * 0.5 - 2.0, (1 - SIGMA) * 3.0 + 1.0], rtol=1e-6)
    # With the true velocity the official x0 algebra recovers x0 exactly (up to float error).
    np.testing.assert_allclose(predicted_x0(x_t, v, t, SIGMA).numpy(), x0.numpy(), atol=1e-12)


def test_position_terms_by_hand():
    config = FlowLossConfig()
    target = torch.tensor([[0, 0, 0, 1, 0, 0, 0, 1.0], [1.0, 0.0, 0.0, 1, 0, 0, 0, 0.5]])
    pred = torch.tensor([[9, 9, 9, 9, 9, 9, 9, 9.0], [1.01, 0.0, 0.1, 0.99, 0, 0, 0, 0.5]])
    # scene scale per axis: x: max(0 + .5, 1 + .25) - min(0 - .5, 1 - .25) = 1.75; y, z: 1.0
    np.testing.assert_allclose(scene_scale(target).numpy(), [1.75, 1.0, 1.0])
    terms = position_terms(pred, target, config)

    def smooth(d: float) -> float:  # smooth_l1(d / 0.02) * 0.02, beta 1
        a = abs(d) / 0.02
        return (0.5 * a * a if a < 1 else a - 0.5) * 0.02

    trans = (smooth(0.01 / 1.75) + smooth(0.0) + smooth(0.1)) / 3
    rot = (smooth(0.01) + 0 + 0 + 0) / 4
    assert float(terms.trans) == pytest.approx(trans, rel=1e-5)
    assert float(terms.rot) == pytest.approx(rot, rel=1e-5)
    assert float(terms.scale) == pytest.approx(0.0, abs=1e-9)
    assert float(terms.weighted(config)) == pytest.approx(7 * trans + 5 * rot, rel=1e-5)
    assert float(terms.trans_l1) == pytest.approx(0.11 / 3, rel=1e-5)  # row 0 ignored


def test_position_weight_is_the_official_clamped_ema():
    weight = PositionWeight(FlowLossConfig())
    with pytest.raises(ValueError):
        weight.value
    assert weight.update(0.5) == pytest.approx(0.5)
    assert weight.update(2.0) == pytest.approx(0.99 * 0.5 + 0.01 * 2.0)
    for _ in range(2000):
        weight.update(5.0)
    assert weight.value == 1.0
    state = weight.state_dict()
    other = PositionWeight(FlowLossConfig())
    other.load_state_dict(state)
    assert other.value == weight.value
    low = PositionWeight(FlowLossConfig())
    assert low.update(0.01) == 0.2


def test_quaternion_matrix_agrees_with_pose():
    rng = np.random.default_rng(0)
    for _ in range(5):
        q = rng.normal(size=4) * 3
        np.testing.assert_allclose(quaternion_to_matrix(torch.tensor(q)).numpy(), Pose(rotation_wxyz=q).rotation_matrix, atol=1e-12)


def _cube_logits(r: int = 16) -> torch.Tensor:
    """A solid cube filling the middle half of the canonical box, as decoder logits."""
    logits = torch.full((1, r, r, r), -20.0)
    logits[:, r // 4 : 3 * r // 4, r // 4 : 3 * r // 4, r // 4 : 3 * r // 4] = 20.0
    return logits


def test_soft_collision_counts_overlap_and_pushes_objects_apart():
    logits = torch.stack([_cube_logits(), _cube_logits()])
    identity = [0, 0, 0, 1, 0, 0, 0, 1.0]
    # The cube spans [-0.25, 0.25]: shifting the second one by 0.25 overlaps half of each.
    half = torch.tensor([identity, [0.25, 0, 0, 1, 0, 0, 0, 1.0]], requires_grad=True)
    ratio = soft_collision_ratio(logits, half, points=16)
    assert float(ratio.detach()) == pytest.approx(0.5, abs=0.05)
    ratio.backward()
    assert half.grad[1, 0] < 0  # moving the second cube further along +x reduces the overlap
    apart = torch.tensor([identity, [0.6, 0, 0, 1, 0, 0, 0, 1.0]])
    assert float(soft_collision_ratio(logits, apart, points=16)) == pytest.approx(0.0, abs=1e-6)
    same = torch.tensor([identity, identity])
    assert float(soft_collision_ratio(logits, same, points=16)) == pytest.approx(1.0, abs=0.05)


def test_config_rejects_unknown_collision_mode():
    with pytest.raises(ValueError, match="collision"):
        FlowLossConfig(collision="maybe")
    assert math.isfinite(FlowLossConfig().sigma_min)
