"""Device helpers of the inference paths and the benchmarks: timing that includes queued GPU work,
and host -> device copies from pinned memory. Both are plain calls on CPU, so code that uses them
behaves the same everywhere and pays nothing there.
"""

from __future__ import annotations

import torch


def synchronize(device: torch.device | str) -> None:
    """Wait until every kernel queued on `device` has finished when it is a CUDA device; no-op
    otherwise. CUDA launches return before the work is done, so a wall-clock reading taken without
    this measures the launch, and the next stage's clock would absorb the rest."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def host_to_device(tensor: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """`tensor` on `device`. A CPU tensor bound for CUDA is first copied into page-locked memory
    (PyTorch's caching host allocator, so repeated calls reuse the buffer) and sent with
    ``non_blocking=True``: the GPU's DMA engine then reads it directly instead of the driver staging
    a pageable copy synchronously. Ordering stays correct because later kernels on the same stream
    wait for the copy. Elsewhere this is ``tensor.to(device)`` (a no-op when already there)."""
    device = torch.device(device)
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
