"""Inference hygiene (issue 11 item 2): inference_mode, encoder precision, SDPA everywhere, views in
one encoder batch, CUDA-only synchronisation and pinned copies, torch.compile with a warm-up."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from scenegen_core.conditioning import build_multiview_conditioning
from scenegen_core.models.dinov2 import DinoEncoder, DinoEncoderConfig
from scenegen_core.models.layers.attention import MultiHeadAttention
from scenegen_core.models.ss_flow import SSFlowConfig, SSFlowModel
from scenegen_core.models.vggt.aggregator import VGGTAggregator, VGGTAggregatorConfig
from scenegen_core.models.vggt.layers.block import Attention as VGGTAttention
from scenegen_core.pipeline import PipelineConfig, SceneGenPipeline, WarmUp, _StageClock, resolve_encoder_dtype
from scenegen_core.runtime import host_to_device, synchronize
from scenegen_core.world import WorldConfig, generate_scene

CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module")
def scene():
    return generate_scene(11, WorldConfig.idealised(min_objects=3, max_objects=3, num_cameras=2, image_width=128, image_height=96))


def _view_inputs(scene, views: int):
    chosen = scene.views()[:views]
    return [v.rgb for v in chosen], [v.masks for v in chosen]


# ----------------------------------------------------------------------------- precision


def test_encoder_dtype_resolution():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_encoder_dtype("auto", cpu) == torch.float32
    assert resolve_encoder_dtype("auto", cuda, bf16_supported=True) == torch.bfloat16
    assert resolve_encoder_dtype("auto", cuda, bf16_supported=False) == torch.float16
    assert resolve_encoder_dtype("fp16", cpu) == torch.float16
    assert resolve_encoder_dtype("bf16", cuda, bf16_supported=False) == torch.bfloat16  # explicit wins
    assert resolve_encoder_dtype("fp32", cuda) == torch.float32
    with pytest.raises(ValueError, match="encoder dtype"):
        resolve_encoder_dtype("fp8", cpu)
    with pytest.raises(ValueError, match="encoder_dtype"):
        PipelineConfig(encoder_dtype="half")


@pytest.mark.parametrize("dtype,torch_dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_half_precision_encoders_run_and_stay_close_to_fp32(scene, dtype, torch_dtype):
    reference = SceneGenPipeline(PipelineConfig(untrained=True, steps=1))
    half = SceneGenPipeline(PipelineConfig(untrained=True, steps=1, encoder_dtype=dtype))
    assert reference.encoder_dtype == torch.float32 and half.encoder_dtype == torch_dtype
    for encoder in (half.models.dino, half.models.vggt):
        assert {p.dtype for p in encoder.parameters()} == {torch_dtype}
    rgbs, masks = _view_inputs(scene, 2)
    expected = reference._encode(rgbs, masks)
    tokens = half._encode(rgbs, masks)
    assert tokens.dtype == torch.float32 and tokens.shape == expected.shape
    error = float((tokens - expected).abs().max() / expected.abs().max())
    assert 0 < error < 0.05  # really computed in half precision, and still the same features
    result = half.run(scene.views()[:1])
    assert len(result.objects) == 3


# ----------------------------------------------------------------------------- autograd, batching, attention


def test_conditioning_tokens_are_inference_tensors(scene):
    pipeline = SceneGenPipeline(PipelineConfig(untrained=True, steps=1))
    tokens = build_multiview_conditioning(pipeline.models.dino, pipeline.models.vggt, *_view_inputs(scene, 1)).tokens
    assert tokens.is_inference()


def test_all_views_go_through_each_encoder_in_one_batch(scene):
    pipeline = SceneGenPipeline(PipelineConfig(untrained=True, steps=1))
    calls = {"dino": [], "vggt": []}
    hooks = [
        pipeline.models.dino.register_forward_hook(lambda m, args, out: calls["dino"].append(tuple(args[0].shape))),
        pipeline.models.vggt.register_forward_hook(lambda m, args, out: calls["vggt"].append(tuple(args[0].shape))),
    ]
    try:
        pipeline._encode(*_view_inputs(scene, 2))
    finally:
        for hook in hooks:
            hook.remove()
    assert calls["dino"] == [(2 * (2 * 3 + 1), 3, 112, 112)]  # V x (N crops + N masks + scene)
    assert calls["vggt"] == [(1, 2, 3, 112, 112)]  # one scene of V frames


class _AttentionCalls(TorchFunctionMode):
    """Counts F.scaled_dot_product_attention and softmax calls (a hand-written attention would
    show up as softmax)."""

    def __init__(self):
        super().__init__()
        self.sdpa = 0
        self.softmax = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is F.scaled_dot_product_attention:
            self.sdpa += 1
        elif func in (F.softmax, torch.softmax, torch.Tensor.softmax):
            self.softmax += 1
        return func(*args, **(kwargs or {}))


def _attention_calls(module, *inputs) -> _AttentionCalls:
    with torch.inference_mode(), _AttentionCalls() as calls:
        module(*inputs)
    return calls


def test_every_attention_runs_through_sdpa():
    """SDPA is what lets torch pick the flash / memory-efficient kernels on a GPU (fused on CPU)."""
    torch.manual_seed(0)
    flow = SSFlowModel(SSFlowConfig.tiny(object_context_tokens=10)).eval()
    calls = _attention_calls(flow, torch.randn(3, 8, 8, 8, 8), torch.full((3,), 500.0), torch.randn(3, 30, 64))
    cfg = flow.config
    assert sum(isinstance(m, MultiHeadAttention) for m in flow.modules()) == 4 * cfg.num_blocks + cfg.trunk_depth
    # 4 attentions per block; the position head's trunk runs once per refinement iteration.
    assert (calls.sdpa, calls.softmax) == (4 * cfg.num_blocks + cfg.trunk_depth * cfg.num_iteration, 0)

    dino = DinoEncoder(DinoEncoderConfig.tiny(image_size=56)).eval()
    calls = _attention_calls(dino, torch.randn(2, 3, 56, 56))
    assert (calls.sdpa, calls.softmax) == (dino.config.num_layers, 0)

    vggt = VGGTAggregator(VGGTAggregatorConfig.tiny(img_size=56)).eval()
    calls = _attention_calls(vggt, torch.rand(1, 2, 3, 56, 56))
    layers = sum(isinstance(m, VGGTAttention) for m in vggt.modules())
    assert layers == 2 + 2 * 2 and (calls.sdpa, calls.softmax) == (layers, 0)  # backbone + frame/global blocks


# ----------------------------------------------------------------------------- device helpers


def test_synchronize_touches_cuda_only_for_cuda_devices():
    synchronize("cpu")
    synchronize(torch.device("cpu"))
    if not CUDA:  # proves the CUDA branch really synchronises: without a GPU torch refuses
        with pytest.raises((RuntimeError, AssertionError)):
            synchronize("cuda")
        with pytest.raises((RuntimeError, AssertionError)):
            with _StageClock(torch.device("cuda")).stage("encode"):
                pass
    clock = _StageClock(torch.device("cpu"))
    with clock.stage("encode"):
        pass
    assert [t.name for t in clock.timings] == ["encode"] and clock.timings[0].seconds >= 0


def test_host_to_device_on_cpu_is_the_same_tensor():
    tensor = torch.arange(6, dtype=torch.uint8)
    assert host_to_device(tensor, "cpu") is tensor
    assert not host_to_device(tensor, "cpu").is_pinned()


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_host_to_device_on_cuda_copies_exactly():
    tensor = torch.arange(1000, dtype=torch.uint8)
    moved = host_to_device(tensor, "cuda")
    assert moved.device.type == "cuda" and torch.equal(moved.cpu(), tensor)


# ----------------------------------------------------------------------------- warm-up, compile


def test_warm_up_runs_each_object_count(scene):
    pipeline = SceneGenPipeline(PipelineConfig(untrained=True, steps=2))
    warm = pipeline.warm_up((1, 3), num_views=2)
    assert isinstance(warm, WarmUp) and warm.object_counts == (1, 3) and warm.num_views == 2
    assert len(warm.seconds) == 2 and all(s > 0 for s in warm.seconds)
    assert pipeline.flow_model is pipeline.models.ss_flow  # compile_flow is off by default
    with pytest.raises(ValueError, match="object counts"):
        pipeline.warm_up((0,))


@pytest.mark.slow
def test_compiled_flow_equals_eager_and_one_graph_serves_larger_scenes(scene):
    """torch.compile (inductor, C++ codegen on CPU) gives the eager result; after warming up with 3
    objects a 4-object scene reuses the compiled graph. All steps guided, so one graph
    (num_scenes = 2) is compiled: ~1-2 min on 2 shared cores."""
    from torch._dynamo.eval_frame import OptimizedModule
    from torch._dynamo.utils import counters

    config = PipelineConfig(untrained=True, steps=2, cfg_interval=(0.0, 1.0), compile_flow=True)
    compiled = SceneGenPipeline(config)
    eager = SceneGenPipeline(PipelineConfig(untrained=True, steps=2, cfg_interval=(0.0, 1.0)))
    assert isinstance(compiled.flow_model, OptimizedModule) and compiled.flow_model._orig_mod is compiled.models.ss_flow
    compiled.warm_up((3,))
    graphs = counters["stats"]["unique_graphs"]
    assert graphs >= 1
    four = generate_scene(5, WorldConfig.idealised(min_objects=4, max_objects=4, image_width=128, image_height=96))
    tokens = eager._encode(*_view_inputs(four, 1))
    assert tokens.shape[1] == 4
    got, want = compiled._sample(tokens), eager._sample(tokens)
    assert counters["stats"]["unique_graphs"] == graphs  # no recompilation for 4 objects
    torch.testing.assert_close(got.samples, want.samples, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got.positions, want.positions, rtol=1e-4, atol=1e-4)
    assert np.isfinite(got.samples.numpy()).all()
