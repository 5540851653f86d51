"""The SS flow benchmark: report structure and the analytic FLOP formula (no timing assertions)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from scenegen_core.benchmark import benchmark_size, flow_forward_flops, run_benchmark
from scenegen_core.models.ss_flow import SSFlowConfig, SSFlowModel
from scenegen_core.sampler import SamplerConfig

REPO_ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("n_objects,context", [(1, 1400), (2, 1400), (3, 1380)])
def test_flop_formula_matches_torch_counter(n_objects, context):
    cfg = SSFlowConfig.tiny(patch_size=2, num_iteration=3)  # p = 2 exercises the patch-size terms
    model = SSFlowModel(cfg).eval().requires_grad_(False)
    x = torch.randn(n_objects, 8, 8, 8, 8)
    t = torch.full((n_objects,), 500.0)
    cond = torch.randn(n_objects, context, 64)
    # The fused CPU SDPA kernel is invisible to FlopCounterMode; the math backend exposes its matmuls.
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(x, t, cond)
    assert flow_forward_flops(cfg, n_objects, context) == counter.get_total_flops()


def test_tiny_report_in_process():
    report = run_benchmark("tiny", [1, 2], steps=1, device="cpu", dtype="fp32", repeats=1, isolate=False)
    spec = benchmark_size("tiny")
    assert report.context_tokens == spec.context_tokens == 5 * 1374
    assert [r.objects for r in report.results] == [1, 2]
    passes = SamplerConfig(steps=1).model_passes()
    assert passes == 2  # the single step at t = 1 is inside the CFG interval
    for r in report.results:
        forward = flow_forward_flops(spec.flow, r.objects, spec.context_tokens)
        assert r.step_flops == 2 * forward and r.sampling_flops == passes * forward
        assert r.step_seconds > 0 and r.sampling_seconds > 0 and r.step_cpu_seconds > 0 and r.sampling_cpu_seconds > 0
        assert r.baseline_bytes > 0  # RSS after building the model
        assert 0 <= r.step_peak_bytes <= r.sampling_peak_bytes
    assert report.results[1].step_flops > 2 * report.results[0].step_flops  # global attention is superlinear in N
    assert json.loads(json.dumps(report.to_json()))["results"][0]["objects"] == 1


def test_cli_isolated_json(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "scenegen_core.benchmark", "--size", "tiny", "--objects", "1", "--steps", "1",
         "--repeats", "1", "--json", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "step TFLOP" in proc.stdout
    report = json.loads(out.read_text())
    assert report["size"] == "tiny" and report["dtype"] == "fp32" and report["steps"] == 1
    assert "fresh process per N" in report["memory_method"]
    assert report["config"]["model_channels"] == 64
    (result,) = report["results"]
    assert result["objects"] == 1 and result["step_flops"] == 2 * flow_forward_flops(SSFlowConfig.tiny(), 1, 5 * 1374)


def test_bad_arguments():
    with pytest.raises(ValueError, match="size"):
        benchmark_size("huge")
    with pytest.raises(ValueError, match="dtype"):
        benchmark_size("tiny", "fp8")
    with pytest.raises(ValueError, match="object counts"):
        run_benchmark("tiny", [0], steps=1, isolate=False)
