"""Training entry points: build data and model for a policy kind, run :func:`fit`, save.

``train("dp" | "at" | "ldp", data, overrides, out)`` trains one stage; ``train("rdp", ...)``
runs the asymmetric tokenizer into ``<out>/at`` and then the latent diffusion policy into
``<out>/ldp``, the second loading the first. Overrides prefixed ``at.`` / ``ldp.`` apply to
one stage only (``at.num_steps=500``); others apply to both.

Before a stage trains it reports (to ``echo``, the log by default) the data (path, episodes,
steps, the train/validation split, each key with its raw shape and how it is fed), the model's
parameter count and the resolved config; :func:`describe_config` is that config as YAML
(``tactkit train --print-config``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tactkit.config import find_config, load_yaml, merge, parse_overrides
from tactkit.policies.checkpoint import load_checkpoint, save_checkpoint
from tactkit.policies.config import PolicyConfig, load_policy_config
from tactkit.policies.data import (
    TrainingData,
    WindowDataset,
    available_keys,
    load_training_data,
    resolve_keys,
    split_episodes,
)
from tactkit.policies.factory import get_kind
from tactkit.policies.features import FeatureCodec
from tactkit.policies.training import FitResult, fit

log = logging.getLogger(__name__)

STAGE_KINDS = ("at", "ldp", "dp")
#: progress-bar labels of the stages
STAGE_LABELS = {"at": "rdp stage 1/2: tokenizer (at)", "ldp": "rdp stage 2/2: latent diffusion (ldp)",
                "dp": "dp: diffusion policy"}


def resolved_config(kind: str, data_path: str | Path | None, overrides: list[str] | tuple[str, ...] = (),
                    config: str | None = None) -> PolicyConfig:
    """The config a stage would train with: the YAML, its size overlay and the overrides, with
    glob key patterns matched against the data's keys when ``data_path`` is given."""
    cfg = load_policy_config(config or kind, list(overrides))
    return resolve_keys(cfg, available_keys(data_path)) if data_path is not None else cfg


def describe_config(cfg: PolicyConfig) -> str:
    """The config as YAML (what ``run_config.json`` holds)."""
    import yaml

    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=None, width=100).rstrip()


def _val_ratio_given(config: str, overrides: list[str]) -> bool:
    return "val_ratio" in parse_overrides(overrides) or "val_ratio" in load_yaml(find_config("policy", config))


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _describe_start(kind: str, data: TrainingData, cfg: PolicyConfig, n_params: int, n_train: int,
                    n_val: int, out_dir: Path) -> str:
    buf = data.buffer
    val_eps = int(data.val_mask.sum())
    lines = [f"{kind}: data {data.buffer.where}: {_n(buf.n_episodes, 'episode')}, {buf.n_steps} steps at {cfg.fps:g} Hz"
             + (f" (episodes={cfg.episodes})" if cfg.episodes else "")
             + f"; train {_n(int(data.train_mask.sum()), 'episode')} / {_n(n_train, 'window')}, "
             + (f"validation {_n(val_eps, 'episode')} / {_n(n_val, 'window')} (val_ratio={cfg.val_ratio:g})" if val_eps
                else "no validation split (val_ratio=0)")]
    for key, spec in data.specs.items():
        role = ("action" if key in cfg.action_keys else "fast signal" if key in cfg.fast_keys else "observation")
        fed = {"image": f"image -> {cfg.image_shape[0]}x{cfg.image_shape[1]}, crop {cfg.crop_shape[0]}x{cfg.crop_shape[1]}",
               "tactile": f"tactile -> PCA {spec.dim}", "pose": "pose -> xyz + 6-D rotation",
               "flat": f"vector of {spec.dim}"}[spec.kind]
        lines.append(f"  {key:<44} {'x'.join(map(str, spec.raw_shape)):>8}  {role:<11} {fed}")
    lines.append(f"{kind}: model {n_params:,} trainable parameters; config size={cfg.size} horizon={cfg.horizon} "
                 f"n_obs_steps={cfg.n_obs_steps} batch_size={cfg.batch_size} num_steps={cfg.num_steps} lr={cfg.lr:g} "
                 f"warmup_steps={cfg.warmup_steps} seed={cfg.seed} (all settings: {out_dir / 'run_config.json'})")
    return "\n".join(lines)


def _stage_config(config: str, overrides: list[str], out_dir: Path, resume: bool) -> tuple[PolicyConfig, int | None]:
    """(config, the num_steps a resumed run was scheduled for)."""
    saved = out_dir / "run_config.json"
    if resume and saved.is_file():
        # a resumed run keeps its config; overrides (e.g. a larger num_steps) still apply
        old = json.loads(saved.read_text())
        return PolicyConfig.from_dict(merge(old, parse_overrides(overrides))), old.get("num_steps")
    return load_policy_config(config, overrides), None


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
    echo: Callable[[str], None] | None = None,
    default_val_ratio: float = 0.0,
) -> FitResult:
    """Train one policy kind on the store (or replay buffer) at ``data_path``; ``config`` is a
    ``configs/policy`` name or YAML path (default: the kind's own). ``echo`` receives what the
    stage reports for people (default: the log); ``default_val_ratio`` is the validation split
    used when neither the config file nor the overrides set ``val_ratio`` (``tactkit train``
    passes 0.1) and the data has at least two episodes."""
    out_dir = Path(out_dir)
    say = echo or log.info
    cfg, previous_num_steps = _stage_config(config or kind, list(overrides), out_dir, resume)
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
    if (default_val_ratio > 0 and cfg.val_ratio == 0 and previous_num_steps is None and data.buffer.n_episodes >= 2
            and not _val_ratio_given(config or kind, list(overrides))):
        cfg = dataclasses.replace(cfg, val_ratio=default_val_ratio)
        data.train_mask, data.val_mask = split_episodes(data.buffer.n_episodes, cfg.val_ratio, cfg.seed)
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

    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    say(_describe_start(kind, data, cfg, n_params, len(train_set), len(val_set) if val_set is not None else 0, out_dir))
    return fit(
        model, train_set, val_set, cfg, out_dir, save, resume=resume, progress=progress,
        accelerator=accelerator, stop_at=stop_at, desc=STAGE_LABELS.get(kind, kind),
        previous_num_steps=previous_num_steps, echo=say,
    )  # fmt: skip


def train(
    kind: str,
    data_path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    out_dir: str | Path = "runs/policy",
    resume: bool = False,
    progress: bool = True,
    config: str | None = None,
    echo: Callable[[str], None] | None = None,
    default_val_ratio: float = 0.0,
) -> dict[str, FitResult]:
    """Train ``kind`` (``at``, ``ldp``, ``dp``, or ``rdp`` = ``at`` then ``ldp``); ``echo`` and
    ``default_val_ratio`` as for :func:`train_stage`."""
    out_dir = Path(out_dir)
    overrides = list(overrides)
    opts = {"echo": echo, "default_val_ratio": default_val_ratio}
    if kind == "rdp":
        if config is not None:
            raise ValueError("rdp uses the at and ldp configs; pass per-stage overrides (at.KEY=V, ldp.KEY=V)")
        at_dir, ldp_dir = out_dir / "at", out_dir / "ldp"
        at_over = _split_overrides(overrides, "at")
        res_at = train_stage("at", data_path, at_over, at_dir, resume and (at_dir / "train_state").exists(), progress,
                             **opts)
        ldp_over = [*_split_overrides(overrides, "ldp"), f"at_checkpoint={at_dir / 'checkpoint'}"]
        res_ldp = train_stage("ldp", data_path, ldp_over, ldp_dir, resume and (ldp_dir / "train_state").exists(),
                              progress, **opts)
        return {"at": res_at, "ldp": res_ldp}
    if kind not in STAGE_KINDS:
        try:
            get_kind(kind)
        except KeyError:
            raise ValueError(f"unknown policy {kind!r}; choose one of at, ldp, rdp, dp") from None
    return {kind: train_stage(kind, data_path, overrides, out_dir, resume, progress, config=config, **opts)}
