"""Sampler speed options: step caching (a model run every k-th step, velocity extrapolated between)
and the pass count that the benchmark's FLOPs rely on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scenegen_core.models.ss_flow import SSFlowConfig, SSFlowModel
from scenegen_core.sampler import FlowEulerSampler, SamplerConfig


@pytest.fixture(scope="module")
def model() -> SSFlowModel:
    torch.manual_seed(0)
    return SSFlowModel(SSFlowConfig.tiny(resolution=4, object_context_tokens=10)).eval()


def _cond(views: int) -> torch.Tensor:
    return torch.randn(views, 3, 24, 64, generator=torch.Generator().manual_seed(5))


def _noise() -> torch.Tensor:
    return torch.randn(3, 8, 4, 4, 4, generator=torch.Generator().manual_seed(1))


class _RowCounter:
    """Counts the object rows the model sees (a forward hook on the real model)."""

    def __init__(self, model: SSFlowModel):
        self.rows = 0
        self.calls = 0
        self.handle = model.register_forward_hook(self)

    def __call__(self, module, args, output) -> None:
        self.rows += args[0].shape[0]
        self.calls += 1


def test_default_schedule_runs_every_step():
    assert SamplerConfig().evaluated_steps() == (True,) * 25
    assert SamplerConfig().model_passes() == 25 + sum(SamplerConfig().guided(float(t)) for t in SamplerConfig().time_grid()[:-1])


def test_cache_schedule_keeps_two_runs_per_guidance_phase_and_the_last_step():
    config = SamplerConfig(steps=25, cache_interval=2)
    evaluated = config.evaluated_steps()
    grid = config.time_grid()
    guided = [config.guided(float(t)) for t in grid[:-1]]
    first_unguided = guided.index(False)
    expected = [
        i % 2 == 0 or i == 24 or i in (0, 1) or i in (first_unguided, first_unguided + 1) for i in range(25)
    ]
    assert list(evaluated) == expected
    assert sum(evaluated) < 25 and evaluated[-1]
    # cache_interval larger than the step count: only the required runs remain.
    assert sum(SamplerConfig(steps=25, cache_interval=100).evaluated_steps()) == 5  # 0, 1, first two unguided, last


@pytest.mark.parametrize("views", [1, 3])
@pytest.mark.parametrize("cache_interval", [1, 2, 3])
@pytest.mark.parametrize("batch_passes", [True, False])
def test_model_passes_counts_what_the_sampler_runs(model, views, cache_interval, batch_passes):
    config = SamplerConfig(steps=9, cache_interval=cache_interval, batch_passes=batch_passes)
    counter = _RowCounter(model)
    try:
        FlowEulerSampler(config).sample(model, _cond(views), _noise())
    finally:
        counter.handle.remove()
    assert counter.rows == 3 * config.model_passes(views)
    if batch_passes:
        assert counter.calls == sum(config.evaluated_steps())  # one forward per evaluated step


def test_cached_steps_extrapolate_the_velocity_and_keep_the_poses(model):
    config = SamplerConfig(steps=8, cache_interval=2, cfg_interval=(0.0, 1.0))
    result = FlowEulerSampler(config).sample(model, _cond(1), _noise(), record_trajectory=True)
    steps = result.trajectory
    assert [s.evaluated for s in steps] == list(config.evaluated_steps())
    states = [_noise()] + [s.x_t for s in steps]
    velocity = [(states[i] - states[i + 1]) / (s.t - s.t_prev) for i, s in enumerate(steps)]
    cached = [i for i, s in enumerate(steps) if not s.evaluated]
    assert cached  # the schedule caches something
    for i in cached:
        a, b = [k for k in range(i) if steps[k].evaluated][-1:-3:-1]  # the last two model runs
        expected = velocity[a] + (velocity[a] - velocity[b]) * (steps[i].t - steps[a].t) / (steps[a].t - steps[b].t)
        torch.testing.assert_close(velocity[i], expected, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(steps[i].positions, steps[a].positions, rtol=0, atol=0)


def test_caching_is_off_by_default_and_bit_identical(model):
    plain = FlowEulerSampler(SamplerConfig(steps=6)).sample(model, _cond(1), _noise())
    interval_one = FlowEulerSampler(SamplerConfig(steps=6, cache_interval=1)).sample(model, _cond(1), _noise())
    torch.testing.assert_close(plain.samples, interval_one.samples, rtol=0, atol=0)
    cached = FlowEulerSampler(SamplerConfig(steps=6, cache_interval=2)).sample(model, _cond(1), _noise())
    assert not torch.equal(cached.samples, plain.samples)


def test_sampler_output_is_an_inference_tensor(model):
    """inference_mode, not no_grad: no version counters or autograd metadata on the outputs."""
    result = FlowEulerSampler(SamplerConfig(steps=2)).sample(model, _cond(1), _noise())
    assert result.samples.is_inference() and result.positions.is_inference()


def test_bad_cache_settings_are_rejected():
    with pytest.raises(ValueError, match="cache_interval"):
        SamplerConfig(cache_interval=0)
    with pytest.raises(ValueError, match="num_views"):
        SamplerConfig().model_passes(0)
    assert np.isclose(SamplerConfig(steps=4).time_grid()[0], 1.0)
