"""The training loop shared by every stage: AdamW, EMA, the official adaptive gradient clipper,
checkpoints with exact resume, DDP through torchrun, and logs (tqdm bar, CSV, PNG of the curves).

A stage supplies a module and a ``loss_fn(step, model) -> terms`` that draws everything random
from generators seeded by (seed, step) (`step_generator`), so step k computes the same thing
whether the run started at 0 or resumed at k. Checkpoints hold the module, the EMA copy, the
optimizer, the clipper and the stage's extra state; `Trainer.resume` restores all of them.

DDP: started with ``torchrun --nproc_per_node P``, every rank builds the same global batch and
takes its 1/P slice; DDP averages the gradients, so one step equals one process on the combined
batch (tested). gloo on CPU, nccl on CUDA.
"""

from __future__ import annotations

import csv
import math
import os
import pathlib
import re
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from tqdm import tqdm

CHECKPOINT_PATTERN = re.compile(r"step_(\d{7})\.pt$")


@dataclass(frozen=True)
class OptimConfig:
    """AdamW + EMA + adaptive clipping (official: lr 5e-5, wd 0, EMA 0.9999, clip 1.0 / p95 / 1000).

    warmup_steps: linear lr warm-up from 0 (0 = none, as the official config); trainable: regexes
    on parameter names, a parameter trains when one matches (empty = all), the finetune recipe's
    ``unfreeze_weights``.
    """

    lr: float = 5e-5
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0
    ema_rate: float = 0.9999
    clip_max_norm: float = 1.0
    clip_percentile: float = 95.0
    clip_buffer: int = 1000
    trainable: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(self.betas))
        object.__setattr__(self, "trainable", tuple(self.trainable))
        if self.lr <= 0 or not 0 <= self.ema_rate < 1 or self.clip_buffer < 1:
            raise ValueError("need lr > 0, 0 <= ema_rate < 1, clip_buffer >= 1")


@dataclass(frozen=True)
class RunConfig:
    """max_steps: optimizer steps; batch_size: global batch (scenes or objects, per stage), split
    evenly over DDP ranks; checkpoint_every / log_every in steps; keep_checkpoints: newest kept;
    seed: everything random derives from it and the step; threads: torch CPU threads (0 = leave)."""

    max_steps: int = 1000
    batch_size: int = 8
    checkpoint_every: int = 200
    log_every: int = 10
    keep_checkpoints: int = 2
    seed: int = 0
    threads: int = 0

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.batch_size < 1 or self.checkpoint_every < 1 or self.log_every < 1:
            raise ValueError("max_steps, batch_size, checkpoint_every and log_every must be >= 1")


def step_generator(seed: int, step: int, stream: int = 0) -> torch.Generator:
    """CPU generator for one purpose (stream) of one step, independent of the rank and of resumes."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, step, stream]).generate_state(1)[0]))


def step_rng(seed: int, step: int, stream: int = 0) -> np.random.Generator:
    """numpy counterpart of `step_generator`."""
    return np.random.default_rng([seed, step, stream])


class AdaptiveGradClipper:
    """The official AdaptiveGradClipper: clip the global grad norm at max_norm until `buffer`
    finite norms were seen, then at min(percentile of the last `buffer` norms, max_norm)."""

    def __init__(self, max_norm: float, percentile: float, buffer: int):
        self.max_norm, self.percentile, self.buffer = max_norm, percentile, buffer
        self.norms = np.zeros(buffer, dtype=np.float32)
        self.threshold = max_norm
        self.pointer = 0
        self.length = 0

    def __call__(self, parameters: Sequence[nn.Parameter]) -> float:
        norm = torch.nn.utils.clip_grad_norm_(parameters, max_norm=self.threshold)
        if torch.isfinite(norm):
            self.norms[self.pointer] = float(norm)
            self.pointer = (self.pointer + 1) % self.buffer
            self.length = min(self.length + 1, self.buffer)
            if self.length == self.buffer:
                self.threshold = min(float(np.percentile(self.norms, self.percentile)), self.max_norm)
        return float(norm)

    def state_dict(self) -> dict:
        return {"norms": torch.from_numpy(self.norms.copy()), "threshold": self.threshold, "pointer": self.pointer, "length": self.length}

    def load_state_dict(self, state: dict) -> None:
        self.norms = state["norms"].numpy().copy()
        self.threshold, self.pointer, self.length = float(state["threshold"]), int(state["pointer"]), int(state["length"])


class StepTerms(Protocol):
    loss: torch.Tensor

    def scalars(self) -> dict[str, float]: ...


class StatefulExtra(Protocol):
    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


@dataclass(frozen=True)
class DistInfo:
    """rank / world_size of this process (0 / 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, items: Sequence) -> list:
        """This rank's contiguous slice of a global batch (its length must divide evenly)."""
        if len(items) % self.world_size:
            raise ValueError(f"global batch {len(items)} does not split over {self.world_size} ranks")
        size = len(items) // self.world_size
        return list(items[self.rank * size : (self.rank + 1) * size])

    def mean(self, tensor: torch.Tensor) -> torch.Tensor:
        """All-reduce mean across ranks (identity in one process)."""
        if self.world_size == 1:
            return tensor
        out = tensor.clone()
        dist.all_reduce(out)
        return out / self.world_size


def init_distributed(device: torch.device) -> DistInfo:
    """Join the torchrun process group when WORLD_SIZE > 1 (gloo on CPU, nccl on CUDA)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size())


class Trainer:
    """Owns the optimisation of one module. `run(loss_fn)` trains from the current step to
    max_steps; loss_fn(step, model) returns terms with a ``loss`` tensor (model = the module,
    DDP-wrapped when distributed: call it, not the bare module, so gradients are synchronised)."""

    def __init__(
        self,
        module: nn.Module,
        out_dir: pathlib.Path,
        optim: OptimConfig,
        run: RunConfig,
        dist_info: DistInfo = DistInfo(),
        extra: StatefulExtra | None = None,
    ):
        self.module, self.out_dir, self.optim_config, self.run_config = module, pathlib.Path(out_dir), optim, run
        self.dist, self.extra = dist_info, extra
        self.step = 0
        names = [n for n, _ in module.named_parameters()]
        patterns = [re.compile(p) for p in optim.trainable]
        for name, param in module.named_parameters():
            param.requires_grad_(not patterns or any(p.search(name) for p in patterns))
        self.params = [p for p in module.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError(f"no parameter matches trainable={optim.trainable} among {len(names)} parameters")
        self.optimizer = torch.optim.AdamW(self.params, lr=optim.lr, betas=optim.betas, weight_decay=optim.weight_decay)
        self.ema = [p.detach().clone() for p in self.params]
        self.clipper = AdaptiveGradClipper(optim.clip_max_norm, optim.clip_percentile, optim.clip_buffer)
        if dist_info.world_size > 1:
            # Some parameters never take part in a forward pass (DINOv2's mask token; the query's
            # position token when a batch has one object): without find_unused_parameters their
            # gradient buckets are never all-reduced and neighbouring parameters stay rank-local.
            self.model: nn.Module = nn.parallel.DistributedDataParallel(module, find_unused_parameters=True)
        else:
            self.model = module
        self.history: list[dict[str, float]] = []

    # -- checkpoints ---------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> pathlib.Path:
        return self.out_dir / "checkpoints"

    def checkpoints(self) -> list[pathlib.Path]:
        found = [p for p in self.checkpoint_dir.glob("step_*.pt") if CHECKPOINT_PATTERN.search(p.name)]
        return sorted(found, key=lambda p: int(CHECKPOINT_PATTERN.search(p.name).group(1)))

    def save_checkpoint(self) -> pathlib.Path | None:
        if not self.dist.is_main:
            return None
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "step": self.step,
            "module": self.module.state_dict(),
            "ema": self.ema,
            "optimizer": self.optimizer.state_dict(),
            "clipper": self.clipper.state_dict(),
            "extra": self.extra.state_dict() if self.extra is not None else {},
        }
        path = self.checkpoint_dir / f"step_{self.step:07d}.pt"
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(path)
        for old in self.checkpoints()[: -self.run_config.keep_checkpoints]:
            old.unlink()
        return path

    def resume(self, path: pathlib.Path | None = None) -> bool:
        """Load `path` or the newest checkpoint (weights_only: tensors and plain containers only).
        Returns False when there is none."""
        if path is None:
            found = self.checkpoints()
            if not found:
                return False
            path = found[-1]
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.module.load_state_dict(state["module"], strict=True)
        if len(state["ema"]) != len(self.ema):
            raise ValueError(f"{path}: EMA holds {len(state['ema'])} tensors, the trainable set has {len(self.ema)}")
        for mine, saved in zip(self.ema, state["ema"]):
            mine.copy_(saved)
        self.optimizer.load_state_dict(state["optimizer"])
        self.clipper.load_state_dict(state["clipper"])
        if self.extra is not None:
            self.extra.load_state_dict(state["extra"])
        self.step = int(state["step"])
        self.history = _read_log(self.out_dir / "log.csv", self.step) if self.dist.is_main else []
        return True

    def ema_state_dict(self) -> dict[str, torch.Tensor]:
        """The module's state dict with every trainable parameter replaced by its EMA value."""
        state = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
        ema_by_param = {id(p): e for p, e in zip(self.params, self.ema)}
        for name, param in self.module.named_parameters():
            if id(param) in ema_by_param:
                state[name] = ema_by_param[id(param)].clone()
        return state

    # -- training ------------------------------------------------------------------------------
    def _lr(self, step: int) -> float:
        warmup = self.optim_config.warmup_steps
        return self.optim_config.lr * min(1.0, (step + 1) / warmup) if warmup > 0 else self.optim_config.lr

    def train_step(self, loss_fn: Callable[[int, nn.Module], StepTerms]) -> dict[str, float]:
        """One optimizer step at self.step; returns the logged scalars."""
        self.module.train()
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr(self.step)
        self.optimizer.zero_grad(set_to_none=True)
        terms = loss_fn(self.step, self.model)
        if not torch.isfinite(terms.loss.detach()):
            raise FloatingPointError(f"step {self.step}: loss is {float(terms.loss)}; {terms.scalars()}")
        terms.loss.backward()
        grad_norm = self.clipper(self.params)
        self.optimizer.step()
        rate = self.optim_config.ema_rate
        with torch.no_grad():
            torch._foreach_lerp_(self.ema, [p.detach() for p in self.params], 1 - rate)
        self.step += 1
        return {"step": self.step, **terms.scalars(), "grad_norm": grad_norm, "lr": self._lr(self.step - 1)}

    def run(self, loss_fn: Callable[[int, nn.Module], StepTerms], desc: str = "train") -> None:
        cfg = self.run_config
        bar = tqdm(total=cfg.max_steps, initial=self.step, desc=desc, disable=not self.dist.is_main, dynamic_ncols=True)
        window: list[dict[str, float]] = []
        while self.step < cfg.max_steps:
            scalars = self.train_step(loss_fn)
            window.append(scalars)
            bar.update(1)
            bar.set_postfix({k: f"{v:.4g}" for k, v in scalars.items() if k not in ("step", "lr")}, refresh=False)
            if self.step % cfg.log_every == 0 or self.step == cfg.max_steps:
                self._log(window)
                window = []
            if self.step % cfg.checkpoint_every == 0 or self.step == cfg.max_steps:
                self.save_checkpoint()
                if self.dist.is_main:
                    plot_curves(self.history, self.out_dir / "loss_curves.png")
        bar.close()

    def _log(self, window: list[dict[str, float]]) -> None:
        if not self.dist.is_main or not window:
            return
        row = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
        row["step"] = window[-1]["step"]
        self.history.append(row)
        path = self.out_dir / "log.csv"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        new = not path.is_file()
        with path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)


def _read_log(path: pathlib.Path, up_to_step: int) -> list[dict[str, float]]:
    """Rows of an existing log up to a resumed step; later rows (from after the checkpoint) are
    dropped from the file too, so a resumed run's log has no duplicate steps."""
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]
    kept = [r for r in rows if r["step"] <= up_to_step]
    if len(kept) != len(rows):
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(kept)
    return kept


def plot_curves(history: list[dict[str, float]], path: pathlib.Path) -> None:
    """PNG with one log-scale panel per logged quantity against the step."""
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in history[0] if k != "step"]
    cols = 3
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows), squeeze=False)
    steps = [h["step"] for h in history]
    for ax, key in zip(axes.flat, keys):
        values = [h.get(key, float("nan")) for h in history]
        ax.plot(steps, values, lw=1)
        ax.set_title(key, fontsize=9)
        if all(v > 0 for v in values if not math.isnan(v)):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    tmp.replace(path)
