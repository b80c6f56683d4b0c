"""Resumable training state without pickle: optimiser, LR schedule, EMA, RNG, step.

Tensors go to safetensors files, everything else to JSON, so a run directory can be
inspected and loaded without executing code.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch


def optimizer_to_files(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for idx, st in sd["state"].items():
        for name, v in st.items():
            if torch.is_tensor(v):
                tensors[f"state/{idx}/{name}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{idx}/{name}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_files(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], js: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for k, v in tensors.items():
        _, idx, name = k.split("/", 2)
        state.setdefault(int(idx), {})[name] = v
    for k, v in js.get("scalars", {}).items():
        idx, name = k.split("/", 1)
        state.setdefault(int(idx), {})[name] = v
    groups = js["param_groups"]
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    opt.load_state_dict({"state": state, "param_groups": groups})


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda/{i}"] = s
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 (global RNG is what we restore)
    tensors["numpy/keys"] = torch.from_numpy(np.asarray(keys, dtype=np.uint32).view(np.int32).copy())
    py = random.getstate()
    js = {"numpy": [name, int(pos), int(has_gauss), float(cached)], "python": [py[0], list(py[1]), py[2]]}
    return tensors, js


def set_rng_state(tensors: dict[str, torch.Tensor], js: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda/"))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    name, pos, has_gauss, cached = js["numpy"]
    keys = tensors["numpy/keys"].numpy().view(np.uint32)
    np.random.set_state((name, keys, pos, has_gauss, cached))  # noqa: NPY002
    v, state, gauss = js["python"]
    random.setstate((v, tuple(state), gauss))


def save_train_state(
    path: Path,
    model_state: dict[str, torch.Tensor],
    ema_state: dict[str, torch.Tensor] | None,
    ema_step: int,
    opt: torch.optim.Optimizer,
    sched_state: dict[str, Any],
    step: int,
    process_index: int = 0,
    write_shared: bool = True,
) -> None:
    from safetensors.torch import save_file

    path.mkdir(parents=True, exist_ok=True)
    rng_t, rng_j = rng_state()
    save_file(rng_t, str(path / f"rng_{process_index}.safetensors"))
    (path / f"rng_{process_index}.json").write_text(json.dumps(rng_j))
    if not write_shared:
        return
    save_file({k: v.detach().cpu().contiguous() for k, v in model_state.items()}, str(path / "model.safetensors"))
    if ema_state is not None:
        save_file({k: v.detach().cpu().contiguous() for k, v in ema_state.items()}, str(path / "ema.safetensors"))
    opt_t, opt_j = optimizer_to_files(opt)
    save_file(opt_t, str(path / "optimizer.safetensors"))
    (path / "optimizer.json").write_text(json.dumps(opt_j))
    (path / "state.json").write_text(json.dumps({"step": step, "ema_step": ema_step, "scheduler": sched_state}))


def load_train_state(path: Path, process_index: int = 0) -> dict[str, Any]:
    from safetensors.torch import load_file

    if not (path / "state.json").is_file():
        raise FileNotFoundError(f"no training state to resume in {path}")
    out: dict[str, Any] = json.loads((path / "state.json").read_text())
    out["model"] = load_file(str(path / "model.safetensors"))
    out["ema"] = load_file(str(path / "ema.safetensors")) if (path / "ema.safetensors").is_file() else None
    out["optimizer"] = (load_file(str(path / "optimizer.safetensors")), json.loads((path / "optimizer.json").read_text()))
    rng_file = path / f"rng_{process_index}.safetensors"
    if rng_file.is_file():
        out["rng"] = (load_file(str(rng_file)), json.loads((path / f"rng_{process_index}.json").read_text()))
    return out
