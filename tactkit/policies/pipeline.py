"""Training entry points: build data and model for a policy kind, run :func:`fit`, save.

``train("dp" | "at" | "ldp", data, overrides, out)`` trains one stage; ``train("rdp", ...)``
runs the asymmetric tokenizer into ``<out>/at`` and then the latent diffusion policy into
``<out>/ldp``, the second loading the first. Overrides prefixed ``at.`` / ``ldp.`` apply to
one stage only (``at.num_steps=500``); others apply to both.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tactkit.config import merge, parse_overrides
from tactkit.policies.checkpoint import load_checkpoint, save_checkpoint
from tactkit.policies.config import PolicyConfig, load_policy_config
from tactkit.policies.data import (
    TrainingData,
    WindowDataset,
    available_keys,
    load_training_data,
    resolve_keys,
)
from tactkit.policies.factory import get_kind
from tactkit.policies.features import FeatureCodec
from tactkit.policies.training import FitResult, fit

log = logging.getLogger(__name__)

STAGE_KINDS = ("at", "ldp", "dp")


def _stage_config(config: str, overrides: list[str], out_dir: Path, resume: bool) -> PolicyConfig:
    saved = out_dir / "run_config.json"
    if resume and saved.is_file():
        # a resumed run keeps its config; overrides (e.g. a larger num_steps) still apply
        return PolicyConfig.from_dict(merge(json.loads(saved.read_text()), parse_overrides(overrides)))
    return load_policy_config(config, overrides)


def _split_overrides(overrides: list[str], stage: str) -> list[str]:
    out = []
    for o in overrides:
        head, _, rest = o.partition(".")
        if head in ("at", "ldp") and "=" in rest:
            if head == stage:
                out.append(rest)
        else:
            out.append(o)
    return out


def train_stage(
    kind: str,
    data_path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    out_dir: str | Path = "runs/policy",
    resume: bool = False,
    progress: bool = True,
    accelerator: Any = None,
    config: str | None = None,
    stop_at: int | None = None,
) -> FitResult:
    """Train one policy kind on the store (or replay buffer) at ``data_path``; ``config`` is a
    ``configs/policy`` name or YAML path (default: the kind's own)."""
    out_dir = Path(out_dir)
    cfg = _stage_config(config or kind, list(overrides), out_dir, resume)
    if cfg.policy != kind:
        raise ValueError(f"config is for policy {cfg.policy!r}, not {kind!r}")
    policy_kind = get_kind(kind)
    if cfg.threads > 0:  # on a shared CPU, fewer threads avoid spinning against other jobs
        torch.set_num_threads(cfg.threads)
    cfg = resolve_keys(cfg, available_keys(data_path, cfg.keys))
    if policy_kind.prepare_config is not None:
        cfg = policy_kind.prepare_config(cfg, data_path)
    extra: dict[str, Any] = {}
    tokenizer_state = None
    normalizer = pcas = None
    if kind == "ldp":
        if not cfg.at_checkpoint:
            raise ValueError("ldp needs at_checkpoint=<trained tokenizer checkpoint> (or train 'rdp')")
        at = load_checkpoint(cfg.at_checkpoint)
        if at.cfg.policy != "at":
            raise ValueError(f"at_checkpoint {cfg.at_checkpoint} holds a {at.cfg.policy!r} policy, not a tokenizer")
        if list(cfg.action_keys) != list(at.cfg.action_keys):
            raise ValueError(f"action_keys {cfg.action_keys} differ from the tokenizer's {at.cfg.action_keys}")
        cfg = dataclasses.replace(
            cfg, horizon=at.cfg.horizon, downsample=at.cfg.downsample, latent_dim=at.cfg.latent_dim,
            fast_keys=list(at.cfg.fast_keys), fps=at.cfg.fps, relative_actions=at.cfg.relative_actions,
        )  # fmt: skip
        extra["tokenizer_config"] = at.cfg
        tokenizer_state = at.model.state_dict()
        normalizer, pcas = at.codec.normalizer, at.pcas
    data: TrainingData = load_training_data(data_path, cfg, normalizer=normalizer, pcas=pcas)
    codec = FeatureCodec(data.specs, data.normalizer)
    torch.manual_seed(cfg.seed)  # identical initial weights on every process
    model: nn.Module = get_kind(kind).build_model(cfg, codec, extra)
    if tokenizer_state is not None:
        model.tokenizer.load_state_dict(tokenizer_state)
    train_set = WindowDataset(data, cfg, data.train_mask)
    val_set = WindowDataset(data, cfg, data.val_mask) if data.val_mask.any() else None
    if hasattr(model, "fit_latent_stats"):
        n = min(len(train_set), cfg.latent_stat_samples)
        g = torch.Generator().manual_seed(cfg.seed)
        idx = torch.randperm(len(train_set), generator=g)[:n].tolist()
        loader = torch.utils.data.DataLoader(torch.utils.data.Subset(train_set, idx), batch_size=256)
        model.fit_latent_stats(list(loader))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "run_config.json").write_text(json.dumps(cfg.to_dict(), indent=2))

    def save(path: Path, module: nn.Module, step: int) -> None:
        save_checkpoint(path, cfg, module, codec, data.pcas, extra, step)

    log.info("training %s: %d parameters, %d train windows", kind, sum(p.numel() for p in model.parameters() if p.requires_grad), len(train_set))
    return fit(
        model, train_set, val_set, cfg, out_dir, save, resume=resume, progress=progress,
        accelerator=accelerator, stop_at=stop_at,
    )  # fmt: skip


def train(
    kind: str,
    data_path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    out_dir: str | Path = "runs/policy",
    resume: bool = False,
    progress: bool = True,
    config: str | None = None,
) -> dict[str, FitResult]:
    """Train ``kind`` (``at``, ``ldp``, ``dp``, or ``rdp`` = ``at`` then ``ldp``)."""
    out_dir = Path(out_dir)
    overrides = list(overrides)
    if kind == "rdp":
        if config is not None:
            raise ValueError("rdp uses the at and ldp configs; pass per-stage overrides (at.KEY=V, ldp.KEY=V)")
        at_dir, ldp_dir = out_dir / "at", out_dir / "ldp"
        at_over = _split_overrides(overrides, "at")
        res_at = train_stage("at", data_path, at_over, at_dir, resume and (at_dir / "train_state").exists(), progress)
        ldp_over = [*_split_overrides(overrides, "ldp"), f"at_checkpoint={at_dir / 'checkpoint'}"]
        res_ldp = train_stage("ldp", data_path, ldp_over, ldp_dir, resume and (ldp_dir / "train_state").exists(), progress)
        return {"at": res_at, "ldp": res_ldp}
    if kind not in STAGE_KINDS:
        try:
            get_kind(kind)
        except KeyError:
            raise ValueError(f"unknown policy {kind!r}; choose one of at, ldp, rdp, dp") from None
    return {kind: train_stage(kind, data_path, overrides, out_dir, resume, progress, config=config)}
