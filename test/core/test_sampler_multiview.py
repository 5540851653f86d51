"""Multi-view sampling (SceneGen's "stochastic" mode): step i uses view i mod V, the last step
averages velocities and poses over every view."""

from __future__ import annotations

import pytest
import torch

from scenegen_core.models.ss_flow import SSFlowConfig, SSFlowModel
from scenegen_core.sampler import FlowEulerSampler, SamplerConfig


@pytest.fixture(scope="module")
def model() -> SSFlowModel:
    torch.manual_seed(0)
    return SSFlowModel(SSFlowConfig.tiny(resolution=4, object_context_tokens=10)).eval()


def _cond(views: int, seed: int) -> torch.Tensor:
    return torch.randn(views, 3, 24, 64, generator=torch.Generator().manual_seed(seed))


def _noise() -> torch.Tensor:
    return torch.randn(3, 8, 4, 4, 4, generator=torch.Generator().manual_seed(1))


def test_one_view_is_exactly_single_view_sampling(model):
    sampler = FlowEulerSampler(SamplerConfig(steps=3))
    cond = _cond(1, 2)
    multi = sampler.sample(model, cond, _noise())
    single = sampler.sample(model, cond[0], _noise())
    torch.testing.assert_close(multi.samples, single.samples, rtol=0, atol=0)
    torch.testing.assert_close(multi.positions, single.positions, rtol=0, atol=0)


def test_identical_views_equal_one_view(model):
    sampler = FlowEulerSampler(SamplerConfig(steps=3))
    cond = _cond(1, 3)
    twice = sampler.sample(model, cond.expand(2, -1, -1, -1), _noise())
    once = sampler.sample(model, cond[0], _noise())
    torch.testing.assert_close(twice.samples, once.samples, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(twice.positions, once.positions, rtol=1e-5, atol=1e-5)


def test_views_alternate_then_average_at_the_last_step(model):
    config = SamplerConfig(steps=3)
    sampler = FlowEulerSampler(config)
    cond = _cond(2, 4)
    result = sampler.sample(model, cond, _noise(), record_trajectory=True)
    # Step 0 depends on view 0 only: changing view 1 leaves it unchanged, but not the end result.
    changed = cond.clone()
    changed[1] += 1.0
    other = sampler.sample(model, changed, _noise(), record_trajectory=True)
    torch.testing.assert_close(other.trajectory[0].x_t, result.trajectory[0].x_t, rtol=0, atol=0)
    assert not torch.allclose(other.trajectory[1].x_t, result.trajectory[1].x_t)
    # Last step: positions are the mean of both views' predictions at that state.
    x, t = result.trajectory[1].x_t, float(result.t_seq[2])
    t_model = torch.full((3,), 1000.0 * t)
    with torch.no_grad():
        expected = (model(x, t_model, cond[0]).positions + model(x, t_model, cond[1]).positions) / 2
    torch.testing.assert_close(result.positions, expected, rtol=1e-6, atol=1e-6)


def test_bad_condition_shapes_are_rejected(model):
    sampler = FlowEulerSampler(SamplerConfig(steps=1))
    with pytest.raises(ValueError, match=r"\[V, N, L, C\]"):
        sampler.sample(model, _cond(1, 0)[0, 0], _noise())
    with pytest.raises(ValueError, match="per view"):
        sampler.sample(model, torch.randn(2, 2, 24, 64), _noise())


@pytest.mark.parametrize("views", [1, 3])
def test_batched_passes_equal_separate_calls(model, views):
    cond = _cond(views, 5)
    batched = FlowEulerSampler(SamplerConfig(steps=4, cfg_interval=(0.0, 1.0))).sample(model, cond, _noise())
    separate = FlowEulerSampler(SamplerConfig(steps=4, cfg_interval=(0.0, 1.0), batch_passes=False)).sample(model, cond, _noise())
    assert not torch.equal(batched.samples, _noise())
    torch.testing.assert_close(batched.samples, separate.samples, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(batched.positions, separate.positions, rtol=1e-5, atol=1e-5)
