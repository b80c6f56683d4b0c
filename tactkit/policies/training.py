"""One training loop for every policy, data-parallel through ``accelerate``.

A policy is a module whose ``forward(batch)`` returns ``(loss, metrics)``. :func:`fit` runs
AdamW with a cosine schedule, gradient clipping, EMA of the weights, a labelled tqdm bar (loss
and samples/s), metrics to ``metrics.jsonl`` and to accelerate's trackers (TensorBoard by
default when installed, Weights & Biases with ``log_with=wandb``: loss, learning rate,
samples/s, validation loss), optional validation and periodic checkpoints, and resumes from
``train_state/``: bit-exactly when resumed to the same ``num_steps``; a larger ``num_steps``
stretches the cosine schedule to the new end (the learning rate rises from its value at the
old end to the stretched schedule's value at the resumed step, then decays to 0 at the new
end), which :func:`fit` reports. The same code runs single-process on a CPU and
under ``accelerate launch`` on several GPUs or nodes (each process draws its own batches;
the effective batch is ``batch_size x num_processes``).

Run directory::

    run_config.json   the PolicyConfig the run was started with
    checkpoint/       the inference checkpoint (see tactkit.policies.checkpoint)
    train_state/      weights, EMA, optimiser, schedule, RNG and step for --resume
    metrics.jsonl     one JSON object per log line (train) or validation
    logs/             tracker output (TensorBoard event files; ``tensorboard --logdir runs``)
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tactkit.policies.config import PolicyConfig
from tactkit.policies.ema import EMA
from tactkit.policies.train_state import (
    load_train_state,
    optimizer_from_files,
    save_train_state,
    set_rng_state,
)

log = logging.getLogger(__name__)


class EpochSampler(torch.utils.data.Sampler[int]):
    """A fresh permutation per epoch from ``seed + epoch``: no global RNG is consumed, so the
    data order after a resume equals that of an uninterrupted run."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        return iter(np.random.default_rng(self.seed + self.epoch).permutation(self.n).tolist())

    def __len__(self) -> int:
        return self.n


@dataclass
class FitResult:
    steps: int
    final_loss: float
    samples_per_s: float
    val_loss: float | None
    out_dir: Path


def resolve_trackers(log_with: str) -> list[str]:
    """Tracker names for accelerate from the ``log_with`` setting (see :class:`PolicyConfig`)."""
    from accelerate.utils import is_tensorboard_available, is_wandb_available

    names = [n.strip().lower() for n in log_with.split(",") if n.strip()]
    if names in ([], ["none"]):
        return []
    if names == ["auto"]:
        return ["tensorboard"] if is_tensorboard_available() else []
    available = {"tensorboard": is_tensorboard_available, "wandb": is_wandb_available}
    for n in names:
        if n not in available:
            raise ValueError(f"log_with={log_with!r}: {n!r} is not one of auto, none, tensorboard, wandb")
        if not available[n]():
            raise ValueError(f"log_with={n} needs the {n} package: pip install {n}")
    return names


def _hparams(cfg: PolicyConfig) -> dict[str, Any]:
    """The config flattened to scalars (what TensorBoard's hparams accept)."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}{k}.", v)
        elif isinstance(value, (bool, int, float, str)):
            out[prefix[:-1]] = value
        else:
            out[prefix[:-1]] = str(value)

    walk("", cfg.to_dict())
    return out


def _append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


@torch.no_grad()
def evaluate(model: nn.Module, loader: torch.utils.data.DataLoader, max_batches: int = 8, seed: int = 0) -> float:
    """Mean loss over up to ``max_batches`` batches, with a fixed noise seed (global RNG kept)."""
    was_training = model.training
    model.eval()
    losses = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i, batch in enumerate(loader):
            if i >= max_batches:
                break
            loss, _ = model(batch)
            losses.append(float(loss))
    model.train(was_training)
    return float(np.mean(losses)) if losses else float("nan")


def fit(
    model: nn.Module,
    train_set: torch.utils.data.Dataset,
    val_set: torch.utils.data.Dataset | None,
    cfg: PolicyConfig,
    out_dir: str | Path,
    save_checkpoint: Callable[[Path, nn.Module, int], None],
    resume: bool = False,
    progress: bool = True,
    accelerator: Any = None,
    stop_at: int | None = None,
    desc: str | None = None,
    previous_num_steps: int | None = None,
    echo: Callable[[str], None] | None = None,
) -> FitResult:
    """Train ``model`` for ``cfg.num_steps`` optimiser steps; ``save_checkpoint(dir, module,
    step)`` writes the inference checkpoint (called on the main process only). ``stop_at``
    ends this run early at that step with a resumable checkpoint (time-limited jobs).
    ``desc`` labels the progress bar; ``previous_num_steps`` (resume) is the total the saved
    state was scheduled for, so that extending a run can say what its schedule does;
    ``echo`` receives lines for people (default: the log)."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from diffusers.optimization import get_scheduler
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    say = echo or log.info
    trackers = resolve_trackers(cfg.log_with)
    acc = accelerator or Accelerator(log_with=trackers or None, project_dir=str(out_dir))
    if accelerator is not None and trackers and not acc.log_with:
        trackers = []  # the caller's accelerator was built without trackers
    set_seed(cfg.seed + acc.process_index)
    if len(train_set) == 0:
        raise ValueError("the training split has no windows (too few or too short episodes)")
    sampler = EpochSampler(len(train_set), cfg.seed)
    loader = torch.utils.data.DataLoader(
        train_set, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
        drop_last=len(train_set) >= cfg.batch_size * acc.num_processes, generator=torch.Generator().manual_seed(cfg.seed),
        persistent_workers=cfg.num_workers > 0,
    )  # fmt: skip
    val_loader = None
    if val_set is not None and len(val_set) > 0:
        val_loader = torch.utils.data.DataLoader(val_set, batch_size=cfg.batch_size, shuffle=False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.95, 0.999))
    sched = get_scheduler("cosine", opt, num_warmup_steps=cfg.warmup_steps, num_training_steps=cfg.num_steps)
    model, opt, loader, sched = acc.prepare(model, opt, loader, sched)
    if val_loader is not None:
        val_loader = acc.prepare(val_loader)
    raw = acc.unwrap_model(model)
    ema = EMA(raw, cfg.ema_decay) if cfg.ema_decay > 0 else None
    metrics_path = out_dir / "metrics.jsonl"
    state_dir = out_dir / "train_state"
    step = 0
    if resume:
        st = load_train_state(state_dir, acc.process_index)
        raw.load_state_dict(st["model"])
        if ema is not None and st["ema"] is not None:
            ema.model.load_state_dict(st["ema"])
            ema.step = int(st["ema_step"])
        optimizer_from_files(opt.optimizer if hasattr(opt, "optimizer") else opt, *st["optimizer"])
        sched.scheduler.load_state_dict(st["scheduler"]) if hasattr(sched, "scheduler") else sched.load_state_dict(st["scheduler"])
        if "rng" in st:
            set_rng_state(*st["rng"])
        step = int(st["step"])
        inner = sched.scheduler if hasattr(sched, "scheduler") else sched
        if previous_num_steps is not None and previous_num_steps != cfg.num_steps and step < cfg.num_steps:
            old_lr = float(inner.optimizer.param_groups[0]["lr"])
            for group, base, fn in zip(inner.optimizer.param_groups, inner.base_lrs, inner.lr_lambdas):
                group["lr"] = base * fn(step)
            inner._last_lr = [g["lr"] for g in inner.optimizer.param_groups]
            say(f"resuming {out_dir} at step {step} with num_steps {previous_num_steps} -> {cfg.num_steps}: the "
                f"cosine schedule is stretched to end at step {cfg.num_steps}; the learning rate goes from "
                f"{old_lr:.3g} (step {step} of the old schedule) to {inner._last_lr[0]:.3g} and decays to 0 at "
                f"step {cfg.num_steps}. Not the same run as {cfg.num_steps} steps from scratch (resuming to "
                "the same num_steps is bit-exact)")
        elif step >= cfg.num_steps:
            say(f"{out_dir} is already at step {step} of num_steps {cfg.num_steps}: nothing to train "
                "(raise num_steps to extend it)")
        else:
            say(f"resuming {out_dir} at step {step} of {cfg.num_steps} (bit-exact continuation)")
    if acc.is_main_process:
        out_dir.mkdir(parents=True, exist_ok=True)
        if not resume:
            metrics_path.write_text("")
    batches_per_epoch = len(loader)
    samples_per_step = cfg.batch_size * acc.num_processes

    def checkpoint(step: int) -> None:
        acc.wait_for_everyone()
        save_train_state(
            state_dir, raw.state_dict(), ema.model.state_dict() if ema else None, ema.step if ema else 0,
            opt.optimizer if hasattr(opt, "optimizer") else opt,
            sched.scheduler.state_dict() if hasattr(sched, "scheduler") else sched.state_dict(),
            step, acc.process_index, write_shared=acc.is_main_process,
        )  # fmt: skip
        if acc.is_main_process:
            save_checkpoint(out_dir / "checkpoint", ema.model if ema else raw, step)
        acc.wait_for_everyone()

    if trackers:
        acc.init_trackers("logs", config=_hparams(cfg))
    model.train()
    bar = tqdm(total=cfg.num_steps, initial=step, disable=not (progress and acc.is_main_process), unit="step",
               dynamic_ncols=True, desc=desc)
    t_start = time.perf_counter()
    steps_this_run = 0
    loss_val = float("nan")
    val_loss = None
    epoch, skip = divmod(step, batches_per_epoch)
    last = cfg.num_steps if stop_at is None else min(stop_at, cfg.num_steps)
    while step < last:
        sampler.set_epoch(epoch)
        it = acc.skip_first_batches(loader, skip) if skip else loader
        for batch in it:
            loss, info = model(batch)
            acc.backward(loss)
            if cfg.grad_clip > 0:
                acc.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            if ema is not None:
                ema.update(raw)
            step += 1
            steps_this_run += 1
            loss_val = float(acc.reduce(loss.detach(), reduction="mean"))
            rate = steps_this_run * samples_per_step / max(time.perf_counter() - t_start, 1e-9)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_val:.4f}", samples_s=f"{rate:.0f}")
            if acc.is_main_process and (step % cfg.log_every == 0 or step == cfg.num_steps):
                rec = {"step": step, "loss": loss_val, "lr": sched.get_last_lr()[0], "samples_per_s": rate,
                       "epoch": epoch, **{k: float(v) for k, v in info.items()}}  # fmt: skip
                _append_jsonl(metrics_path, rec)
            if trackers and (step % cfg.log_every == 0 or step == cfg.num_steps):
                acc.log({"loss": loss_val, "lr": sched.get_last_lr()[0], "samples_per_s": rate,
                         **{k: float(v) for k, v in info.items()}}, step=step)
            if val_loader is not None and (step % cfg.val_every == 0 or step == cfg.num_steps):
                val_loss = evaluate(ema.model if ema else model, val_loader, seed=cfg.seed)
                if acc.is_main_process:
                    _append_jsonl(metrics_path, {"step": step, "val_loss": val_loss})
                if trackers:
                    acc.log({"val_loss": val_loss}, step=step)
            if step % cfg.ckpt_every == 0 and step < cfg.num_steps:
                checkpoint(step)
            if step >= last:
                break
        epoch += 1
        skip = 0
    bar.close()
    checkpoint(step)
    if trackers:
        acc.end_training()
    rate = steps_this_run * samples_per_step / max(time.perf_counter() - t_start, 1e-9)
    return FitResult(step, loss_val, rate, val_loss, out_dir)
