"""The SceneGen benchmark: analytic FLOP formulas against torch's counter, report structure, the
CLI's JSON and plot (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from scenegen_core.benchmark import (
    BenchmarkSettings,
    BenchmarkSize,
    decoder_forward_flops,
    dino_forward_flops,
    flow_forward_flops,
    load_benchmark_models,
    main,
    peak_tflops_for,
    run_benchmark,
    stage_flops,
    vggt_forward_flops,
)
from scenegen_core.models.dinov2 import DinoEncoder, DinoEncoderConfig
from scenegen_core.models.ss_decoder import SSDecoder, SSDecoderConfig
from scenegen_core.models.ss_flow import SSFlowConfig, SSFlowModel
from scenegen_core.models.vggt.aggregator import VGGTAggregator, VGGTAggregatorConfig
from scenegen_core.sampler import SamplerConfig

REPO_ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
STAGES = ["prepare", "encode", "sample", "decode", "mesh", "place"]


def _counted(module: torch.nn.Module, *inputs) -> int:
    """FLOPs of one forward as torch counts them. The fused CPU SDPA kernel is invisible to
    FlopCounterMode; the math backend exposes its matmuls."""
    module.requires_grad_(False)  # FlopCounterMode's module tracker trips over leaf parameters under no_grad
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        module(*inputs)
    return counter.get_total_flops()


@pytest.mark.parametrize("n_objects,context", [(1, 1400), (2, 1400), (3, 1380)])
def test_flow_flop_formula_matches_torch_counter(n_objects, context):
    cfg = SSFlowConfig.tiny(patch_size=2, num_iteration=3)  # p = 2 exercises the patch-size terms
    model = SSFlowModel(cfg).eval()
    x = torch.randn(n_objects, 8, 8, 8, 8)
    t = torch.full((n_objects,), 500.0)
    cond = torch.randn(n_objects, context, 64)
    assert flow_forward_flops(cfg, n_objects, context) == _counted(model, x, t, cond)


@pytest.mark.parametrize("images", [1, 5])
def test_dino_flop_formula_matches_torch_counter(images):
    config = DinoEncoderConfig(hidden_size=64, num_layers=2, num_heads=4, mlp_ratio=3, image_size=56)
    encoder = DinoEncoder(config).eval()
    assert dino_forward_flops(config, images) == _counted(encoder, torch.randn(images, 3, 56, 56))


@pytest.mark.parametrize("frames", [1, 3])
def test_vggt_flop_formula_matches_torch_counter(frames):
    config = VGGTAggregatorConfig.sized(img_size=56, embed_dim=64, depth=2, num_heads=4)
    aggregator = VGGTAggregator(config).eval()
    assert vggt_forward_flops(config, frames) == _counted(aggregator, torch.rand(1, frames, 3, 56, 56))


@pytest.mark.parametrize("n_objects", [1, 2])
def test_decoder_flop_formula_matches_torch_counter(n_objects):
    config = SSDecoderConfig.tiny(num_res_blocks_middle=1)
    decoder = SSDecoder(config).eval()
    assert decoder_forward_flops(config, n_objects, 4) == _counted(decoder, torch.randn(n_objects, 8, 4, 4, 4))


def test_full_size_flops_match_the_issue():
    """Issue 11's figure: 66 TFLOP per flow forward for 4 objects at full size; the full model's
    context is 5 x 1374 tokens per object."""
    size = BenchmarkSize("full", SSFlowConfig.full(), SSDecoderConfig.full(), DinoEncoderConfig.full(), VGGTAggregatorConfig.full())
    assert size.context_tokens == 5 * 1374
    flops = stage_flops(size, SamplerConfig(), 4, 1)
    assert flops.sample == SamplerConfig().model_passes() * flow_forward_flops(size.flow, 4, 5 * 1374)
    assert 60e12 < flow_forward_flops(size.flow, 4, 5 * 1374) < 70e12
    assert flops.of("sample") == flops.sample and flops.of("mesh") is None


def _settings(**overrides) -> BenchmarkSettings:
    base = dict(size="tiny", device="cpu", dtype="fp32", encoder_dtype="fp32", steps=1, rescale_t=3.0, cache_interval=1,
                compile=False, attention="auto", grad_mode="inference", batch_passes=True, repeats=1, image_size=96, threads=None)
    return BenchmarkSettings(**{**base, **overrides})


def test_tiny_report_in_process():
    report = run_benchmark(_settings(), objects=[1, 2], views=[1, 2], isolate=False)
    size = BenchmarkSize.of("tiny", load_benchmark_models("tiny"))
    assert size.context_tokens == 3 * 69 + 2 * 69  # tiny encoders: 112 px, 69 tokens per image
    assert [(c.objects, c.views) for c in report.cells] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert "UNTRAINED" in report.description and report.peak_tflops is None
    for cell in report.cells:
        assert [s.name for s in cell.stages] == STAGES
        flops = stage_flops(size, SamplerConfig(steps=1), cell.objects, cell.views)
        for stage in cell.stages:
            assert stage.seconds > 0
            assert stage.flops == flops.of(stage.name)
            if stage.flops is None:
                assert stage.tflops_per_s is None
            else:
                assert stage.tflops_per_s == pytest.approx(stage.flops / stage.seconds / 1e12)
        # Stages are timed inside the run, so together they take at most its wall time.
        assert 0 < sum(s.seconds for s in cell.stages) <= cell.total_seconds
        assert cell.total_cpu_seconds > 0 and cell.baseline_bytes > 0 and cell.peak_bytes >= 0
        # The flow step is measured once per object count, with the first view count.
        assert (cell.flow_step is not None) == (cell.views == 1)
    one, two = report.cells[0].flow_step, report.cells[2].flow_step
    assert one.flops == 2 * flow_forward_flops(size.flow, 1, size.context_tokens) and one.seconds > 0
    assert two.flops > 2 * one.flops  # global attention is superlinear in N
    # Two views: one more conditional pass on the last step and a second VGGT frame.
    assert report.cells[1].stage("sample").flops - report.cells[0].stage("sample").flops == flow_forward_flops(
        size.flow, 1, size.context_tokens
    )
    assert json.loads(json.dumps(report.to_json()))["cells"][3]["stages"][2]["name"] == "sample"


def test_cli_isolated_json_and_plot(tmp_path):
    out, png = tmp_path / "bench.json", tmp_path / "bench.png"
    proc = subprocess.run(
        [sys.executable, "-m", "scenegen_core.benchmark", "--size", "tiny", "--objects", "2", "--views", "1", "2",
         "--steps", "2", "--repeats", "1", "--image-size", "96", "--json", str(out), "--plot", str(png)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "smp TF/s" in proc.stdout and "flow guided step" in proc.stdout
    report = json.loads(out.read_text())
    assert report["settings"]["size"] == "tiny" and report["settings"]["steps"] == 2
    assert "fresh process per cell" in report["memory_method"]
    assert report["configs"]["flow"]["model_channels"] == 64
    assert [(c["objects"], c["views"]) for c in report["cells"]] == [(2, 1), (2, 2)]
    assert report["cells"][0]["flow_step"]["objects"] == 2 and report["cells"][1]["flow_step"] is None
    image = __import__("matplotlib.image").image.imread(png)
    assert image.shape[0] > 200 and image.shape[1] > 600  # three panels side by side


def test_cache_interval_and_views_change_the_counted_sample_flops():
    size = BenchmarkSize.of("tiny", load_benchmark_models("tiny"))
    full, cached = SamplerConfig(), SamplerConfig(cache_interval=2)
    forward = flow_forward_flops(size.flow, 4, size.context_tokens)
    assert stage_flops(size, full, 4, 1).sample == full.model_passes() * forward
    assert stage_flops(size, cached, 4, 1).sample == cached.model_passes() * forward < full.model_passes() * forward
    assert stage_flops(size, full, 4, 4).sample == (full.model_passes() + 3) * forward


def test_random_sizes_decode_solid_grids_and_default_keeps_its_weights():
    tiny = load_benchmark_models("tiny")
    with torch.inference_mode():
        logits = tiny.ss_decoder(torch.randn(2, 8, 8, 8, 8))
    assert logits.shape == (2, 1, 32, 32, 32) and torch.all(logits == 1.0)
    default = load_benchmark_models("default")
    assert default.files and default.ss_decoder.out_layer[-1].weight.abs().sum() > 0


def test_peak_lookup():
    assert peak_tflops_for(torch.device("cpu")) is None
    assert peak_tflops_for(torch.device("cpu"), 123.0) == 123.0


def test_bad_arguments(capsys):
    with pytest.raises(ValueError, match="size"):
        load_benchmark_models("huge")
    with pytest.raises(ValueError, match="dtype"):
        load_benchmark_models("tiny", "fp8")
    with pytest.raises(ValueError, match="object and view counts"):
        run_benchmark(_settings(), objects=[0], isolate=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["--views", "0"])
    assert exit_info.value.code == 2 and "must be >= 1" in capsys.readouterr().err
