"""Train SceneGen (and the sparse-structure VAE it needs) from one YAML config.

    python -m scenegen_core.training.train --config training/configs/scratch.yaml
    torchrun --nproc_per_node 2 -m scenegen_core.training.train --config ...   (DDP; gloo on CPU)

Stages run in order and each resumes from its newest checkpoint when restarted (kill it any
time; the next start continues with the identical next step):

* ``vae``  - SS VAE (encoder + decoder, TRELLIS conv3d layout) on the canonical occupancies of the
             world's objects; reports occupancy IoU on held-out (val-split) objects.
* ``flow`` - the conditioned flow model (DINOv2 + VGGT encoders + SS flow with position head) with
             SceneGen's objective (`training.losses`) on latents of the trained VAE encoder.
             Recipes: ``scratch`` trains everything; ``finetune`` starts from official weights
             (``init_weights``: a weights directory, see `scenegen_core.checkpoints`) and trains only
             the parameters matching ``optim.trainable`` (the paper's: global attention, position /
             register tokens, position head).
* ``export`` - the EMA weights as a model bundle (`scenegen_core.bundle`) in ``export.dir``.

Every stage writes under ``out_dir/<stage>/``: checkpoints/, log.csv, loss_curves.png,
final.safetensors (EMA weights) and a metrics json. Config schema: `TrainConfig.from_dict`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import yaml
from safetensors.torch import load_file, save_file

from scenegen_core.bundle import SamplerSettings, build_models, save_bundle
from scenegen_core.checkpoints import load_scenegen_models, load_strict
from scenegen_core.models.dinov2 import DinoEncoderConfig
from scenegen_core.models.ss_decoder import SSDecoder, SSDecoderConfig
from scenegen_core.models.ss_encoder import SSEncoder, SSEncoderConfig
from scenegen_core.models.vggt.aggregator import VGGTAggregatorConfig
from scenegen_core.training.data import (
    SceneCache,
    SceneDataConfig,
    draw_batch,
    instance_table,
    load_or_build_cache,
    make_flow_batch,
)
from scenegen_core.training.losses import (
    FlowLossConfig,
    PositionWeight,
    VaeLossConfig,
    flow_losses,
    occupancy_iou,
    sample_t,
    vae_losses,
)
from scenegen_core.training.modules import ConditionedFlow, ConditionInputs, SSVae
from scenegen_core.training.trainer import DistInfo, OptimConfig, RunConfig, Trainer, init_distributed, step_generator, step_rng

STAGES = ("vae", "flow", "export")
FINAL_WEIGHTS = "final.safetensors"


def _build(cls, data: dict | None, **extra):
    data = dict(data or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
    return cls(**{**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}, **extra})


@dataclass(frozen=True)
class DataSection:
    """train / val: SceneDataConfig fields (seeds, world, sizes); workers: processes for building."""

    train: SceneDataConfig
    val: SceneDataConfig
    workers: int = 1
    cache_dir: str = ""


@dataclass(frozen=True)
class VaeSection:
    encoder: SSEncoderConfig
    decoder: SSDecoderConfig
    loss: VaeLossConfig
    optim: OptimConfig
    run: RunConfig


@dataclass(frozen=True)
class FlowSection:
    """recipe "scratch" | "finetune"; p_uncond: per-object classifier-free dropout; max_objects:
    objects per scene (query + at most max_objects - 1 others); init_weights: official weights
    directory for finetune. dino / vggt / ss_flow: model configs (vggt as `VGGTAggregatorConfig.sized`
    arguments)."""

    dino: DinoEncoderConfig
    vggt: dict
    ss_flow: dict
    loss: FlowLossConfig
    optim: OptimConfig
    run: RunConfig
    recipe: str = "scratch"
    p_uncond: float = 0.1
    max_objects: int = 7
    init_weights: str = ""


@dataclass(frozen=True)
class ExportSection:
    """dir: bundle directory; storage_dtype: "float32" or "float16" (half the size, used for the
    committed default); sampler: the settings the model is meant to run with."""

    dir: str
    description: str
    sampler: SamplerSettings
    storage_dtype: str = "float32"


@dataclass(frozen=True)
class TrainConfig:
    name: str
    out_dir: pathlib.Path
    stages: tuple[str, ...]
    data: DataSection
    vae: VaeSection | None
    flow: FlowSection | None
    export: ExportSection | None
    device: str = "cpu"

    @classmethod
    def from_dict(cls, raw: dict[str, Any], base_dir: pathlib.Path) -> "TrainConfig":
        """Parse the YAML mapping; relative paths are relative to `base_dir` (the working directory)."""
        raw = dict(raw)
        stages = tuple(raw.get("stages", STAGES))
        if set(stages) - set(STAGES):
            raise ValueError(f"stages must be a subset of {STAGES}, got {stages}")
        d = raw["data"]
        shared = {k: v for k, v in d.items() if k not in ("train", "val", "workers", "cache_dir")}
        data = DataSection(
            train=_build(SceneDataConfig, {**shared, **d["train"]}),
            val=_build(SceneDataConfig, {**shared, **d["val"]}),
            workers=int(d.get("workers", 1)),
            cache_dir=str(d.get("cache_dir", "")),
        )
        vae = None
        if "vae" in raw:
            v = raw["vae"]
            vae = VaeSection(
                encoder=_build(SSEncoderConfig, v["encoder"]),
                decoder=_build(SSDecoderConfig, v["decoder"]),
                loss=_build(VaeLossConfig, v.get("loss")),
                optim=_build(OptimConfig, v.get("optim")),
                run=_build(RunConfig, v.get("run")),
            )
        flow = None
        if "flow" in raw:
            f = raw["flow"]
            flow = FlowSection(
                dino=_build(DinoEncoderConfig, f["dino"]),
                vggt=dict(f["vggt"]),
                ss_flow=dict(f["ss_flow"]),
                loss=_build(FlowLossConfig, f.get("loss")),
                optim=_build(OptimConfig, f.get("optim")),
                run=_build(RunConfig, f.get("run")),
                **{k: f[k] for k in ("recipe", "p_uncond", "max_objects", "init_weights") if k in f},
            )
            if flow.recipe not in ("scratch", "finetune"):
                raise ValueError(f"flow.recipe must be scratch or finetune, got {flow.recipe!r}")
        export = None
        if "export" in raw:
            e = raw["export"]
            export = ExportSection(
                dir=str(e["dir"]),
                description=str(e["description"]),
                sampler=_build(SamplerSettings, e["sampler"]),
                storage_dtype=str(e.get("storage_dtype", "float32")),
            )
            if export.storage_dtype not in ("float32", "float16"):
                raise ValueError(f"export.storage_dtype must be float32 or float16, got {export.storage_dtype!r}")
        for stage, section in (("vae", vae), ("flow", flow), ("export", export)):
            if stage in stages and section is None:
                raise ValueError(f"stage {stage!r} is listed but the config has no {stage!r} section")
        out_dir = pathlib.Path(raw["out_dir"])
        return cls(
            name=str(raw["name"]),
            out_dir=out_dir if out_dir.is_absolute() else base_dir / out_dir,
            stages=stages,
            data=data,
            vae=vae,
            flow=flow,
            export=export,
            device=str(raw.get("device", "cpu")),
        )

    @classmethod
    def from_yaml(cls, path: pathlib.Path, base_dir: pathlib.Path | None = None) -> "TrainConfig":
        return cls.from_dict(yaml.safe_load(path.read_text()), base_dir or pathlib.Path.cwd())

    @property
    def cache_dir(self) -> pathlib.Path:
        return pathlib.Path(self.data.cache_dir) if self.data.cache_dir else self.out_dir / "data"


# ------------------------------------------------------------------------------------------------
# VAE stage
# ------------------------------------------------------------------------------------------------


def build_vae(section: VaeSection) -> SSVae:
    if section.encoder.latent_channels != section.decoder.latent_channels:
        raise ValueError("encoder and decoder latent_channels differ")
    if section.encoder.downsampling != section.decoder.upsampling:
        raise ValueError("encoder downsampling and decoder upsampling differ")
    return SSVae(SSEncoder(section.encoder), SSDecoder(section.decoder))


def _latent_shape(vae_section: VaeSection, resolution: int) -> tuple[int, int, int, int]:
    g = resolution // vae_section.encoder.downsampling
    return (vae_section.encoder.latent_channels, g, g, g)


def vae_loss_fn(cache: SceneCache, section: VaeSection, seed: int, dist_info: DistInfo):
    occupancy = torch.from_numpy(cache.occupancy)
    latent_shape = _latent_shape(section, occupancy.shape[-1])

    def loss_fn(step: int, model: torch.nn.Module):
        picks = step_rng(seed, step).choice(len(occupancy), size=section.run.batch_size, replace=False)
        noise = torch.randn((section.run.batch_size, *latent_shape), generator=step_generator(seed, step, 1))
        rows = dist_info.shard(range(section.run.batch_size))
        batch = occupancy[picks[rows]][:, None].float()
        return vae_losses(model, batch, noise[rows], section.loss)

    return loss_fn


@torch.no_grad()
def evaluate_vae(vae: SSVae, occupancy: np.ndarray, batch: int = 64) -> dict[str, float]:
    """Occupancy IoU of mean-latent reconstructions of held-out objects."""
    vae.eval()
    ious = []
    for start in range(0, len(occupancy), batch):
        occ = torch.from_numpy(occupancy[start : start + batch])[:, None].float()
        ious.append(occupancy_iou(vae.decoder(vae.encoder(occ).mean), occ))
    iou = torch.cat(ious)
    return {"objects": len(iou), "iou_mean": float(iou.mean()), "iou_median": float(iou.median()), "iou_p05": float(torch.quantile(iou, 0.05))}


def run_vae(config: TrainConfig, train: SceneCache, val: SceneCache, dist_info: DistInfo) -> None:
    section = config.vae
    out = config.out_dir / "vae"
    if (out / FINAL_WEIGHTS).is_file():
        _say(dist_info, f"vae: {out / FINAL_WEIGHTS} exists, stage done")
        return
    torch.manual_seed(section.run.seed)
    vae = build_vae(section)
    trainer = Trainer(vae, out, section.optim, section.run, dist_info)
    if trainer.resume():
        _say(dist_info, f"vae: resumed at step {trainer.step}")
    start = time.time()
    trainer.run(vae_loss_fn(train, section, section.run.seed, dist_info), desc="vae")
    if dist_info.is_main:
        load_strict(vae, trainer.ema_state_dict())
        metrics = {"val": evaluate_vae(vae, val.occupancy), "train_sample": evaluate_vae(vae, train.occupancy[:2000]),
                   "seconds_this_run": time.time() - start, "steps": trainer.step}
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        save_file({k: v.contiguous() for k, v in vae.state_dict().items()}, str(out / FINAL_WEIGHTS))
        _say(dist_info, f"vae: held-out occupancy IoU {metrics['val']['iou_mean']:.4f} on {metrics['val']['objects']} objects")


def load_trained_vae(config: TrainConfig) -> SSVae:
    vae = build_vae(config.vae)
    load_strict(vae, load_file(str(config.out_dir / "vae" / FINAL_WEIGHTS)))
    return vae.eval().requires_grad_(False)


@torch.no_grad()
def encode_latents(encoder: SSEncoder, occupancy: np.ndarray, batch: int = 128) -> torch.Tensor:
    """[M, C, G, G, G] posterior means of canonical occupancies (TRELLIS encodes its data set so)."""
    return torch.cat(
        [encoder(torch.from_numpy(occupancy[s : s + batch])[:, None].float()).mean for s in range(0, len(occupancy), batch)]
    )


# ------------------------------------------------------------------------------------------------
# Flow stage
# ------------------------------------------------------------------------------------------------


def flow_model_configs(section: FlowSection, decoder: SSDecoderConfig) -> dict[str, dict]:
    """bundle.json ``configs`` of the flow stage's networks."""
    vggt = VGGTAggregatorConfig.sized(**section.vggt)
    ss_flow = {**section.ss_flow, "object_context_tokens": section.dino.num_tokens, "use_fp16": False}
    as_dict = lambda c: json.loads(json.dumps(dataclasses.asdict(c)))  # noqa: E731 - tuples -> lists
    return {"dino": as_dict(section.dino), "vggt": as_dict(vggt), "ss_flow": ss_flow, "ss_decoder": as_dict(decoder)}


def build_conditioned_flow(config: TrainConfig) -> ConditionedFlow:
    section = config.flow
    if section.recipe == "finetune":
        if not section.init_weights:
            raise ValueError("the finetune recipe needs flow.init_weights (an official weights directory)")
        vggt_config = VGGTAggregatorConfig.sized(**section.vggt)
        models = load_scenegen_models(section.init_weights, vggt_config=vggt_config, dino_config=section.dino, half_dtype=None)
        return ConditionedFlow(models.dino, models.vggt, models.ss_flow)
    models = build_models(flow_model_configs(section, config.vae.decoder if config.vae else SSDecoderConfig()))
    return ConditionedFlow(models["dino"], models["vggt"], models["ss_flow"])


def flow_loss_fn(cache: SceneCache, latents: torch.Tensor, section: FlowSection, decoder, weight: PositionWeight, dist_info: DistInfo):
    table = instance_table(cache, section.max_objects)
    seed, batch_size = section.run.seed, section.run.batch_size

    def loss_fn(step: int, model: torch.nn.Module):
        # Everything random is drawn for the GLOBAL batch from (seed, step), then this rank's
        # scenes are sliced out: one process and P ranks see exactly the same numbers.
        instances = draw_batch(table, batch_size, step_rng(seed, step), cache)
        per_scene = len(instances[0].objects)
        total = batch_size * per_scene
        t = sample_t(total, section.loss.t_mean, section.loss.t_std, step_generator(seed, step, 1))
        noise = torch.randn((total, *latents.shape[1:]), generator=step_generator(seed, step, 2))
        drop = torch.rand(total, generator=step_generator(seed, step, 3)) < section.p_uncond
        scenes = dist_info.shard(range(batch_size))
        rows = slice(scenes[0] * per_scene, (scenes[-1] + 1) * per_scene)
        batch = make_flow_batch(cache, latents, [instances[i] for i in scenes])
        inputs = ConditionInputs(batch.images, drop[rows])
        return flow_losses(
            model, batch.x0, inputs, batch.positions, t[rows], noise[rows], weight, section.loss,
            num_scenes=len(scenes), decoder=decoder, reduce_ratio=dist_info.mean,
        )

    return loss_fn


def run_flow(config: TrainConfig, train: SceneCache, dist_info: DistInfo) -> None:
    section = config.flow
    out = config.out_dir / "flow"
    if (out / FINAL_WEIGHTS).is_file():
        _say(dist_info, f"flow: {out / FINAL_WEIGHTS} exists, stage done")
        return
    vae = load_trained_vae(config)
    latents = encode_latents(vae.encoder, train.occupancy)
    _say(dist_info, f"flow: {len(latents)} object latents, std {float(latents.std()):.3f}")
    torch.manual_seed(section.run.seed)
    model = build_conditioned_flow(config)
    weight = PositionWeight(section.loss)
    trainer = Trainer(model, out, section.optim, section.run, dist_info, extra=weight)
    if trainer.resume():
        _say(dist_info, f"flow: resumed at step {trainer.step}")
    decoder = vae.decoder if section.loss.collision != "none" else None
    start = time.time()
    trainer.run(flow_loss_fn(train, latents, section, decoder, weight, dist_info), desc="flow")
    if dist_info.is_main:
        state = trainer.ema_state_dict()
        save_file({k: v.contiguous() for k, v in state.items()}, str(out / FINAL_WEIGHTS))
        (out / "metrics.json").write_text(json.dumps({"steps": trainer.step, "seconds_this_run": time.time() - start}, indent=2) + "\n")


def run_export(config: TrainConfig) -> pathlib.Path:
    """Bundle of the flow stage's EMA weights + the VAE decoder (EMA)."""
    vae = load_trained_vae(config)
    model = build_conditioned_flow(config)
    load_strict(model, load_file(str(config.out_dir / "flow" / FINAL_WEIGHTS)))
    models = {"ss_flow": model.flow, "ss_decoder": vae.decoder, "dino": model.dino, "vggt": model.vggt}
    target = pathlib.Path(config.export.dir)
    dtype = getattr(torch, config.export.storage_dtype)
    return save_bundle(target, models, config.export.sampler, config.export.description, storage_dtype=dtype)


def _say(dist_info: DistInfo, message: str) -> None:
    if dist_info.is_main:
        print(message, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scenegen_core.training.train", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True, type=pathlib.Path, help="training YAML (training/configs/)")
    parser.add_argument("--stages", nargs="+", choices=STAGES, help="run only these stages (default: the config's)")
    args = parser.parse_args(argv)
    config = TrainConfig.from_yaml(args.config)
    device = torch.device(config.device)
    dist_info = init_distributed(device)
    stages = tuple(args.stages or config.stages)
    threads = max((s.run.threads for s in (config.vae, config.flow) if s is not None), default=0)
    if threads:
        torch.set_num_threads(threads)
    config.out_dir.mkdir(parents=True, exist_ok=True)
    (config.out_dir / "config.yaml").write_text(args.config.read_text())
    train = val = None
    if "vae" in stages or "flow" in stages:
        workers = config.data.workers if dist_info.is_main else 1
        if dist_info.world_size > 1 and not dist_info.is_main:
            torch.distributed.barrier()  # rank 0 builds the caches first
        train = load_or_build_cache(config.data.train, config.cache_dir, workers)
        val = load_or_build_cache(config.data.val, config.cache_dir, workers)
        if dist_info.world_size > 1 and dist_info.is_main:
            torch.distributed.barrier()
        _say(dist_info, f"data: {train.num_scenes} train scenes ({len(train.labels)} objects), {val.num_scenes} val scenes")
    if "vae" in stages:
        run_vae(config, train, val, dist_info)
    if "flow" in stages:
        run_flow(config, train, dist_info)
    if "export" in stages and dist_info.is_main:
        print(f"export: {run_export(config)}")
    if dist_info.world_size > 1:
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
