"""Contact-rich tasks (``wipe``, ``peel``, ``lift``), their scripted experts and configs.

``make_task(name, **overrides)`` builds a task from its bundled YAML config
(``configs/task/<name>.yaml``) with field overrides; ``make_expert(task)`` its expert.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tactkit.config import find_config, from_dict, load_yaml
from tactkit.sim.tasks.base import PERTURBATIONS, SimTask, TaskConfig
from tactkit.sim.tasks.lift import LiftConfig, LiftExpert, LiftTask
from tactkit.sim.tasks.peel import PeelConfig, PeelExpert, PeelTask
from tactkit.sim.tasks.wipe import WipeConfig, WipeExpert, WipeTask

#: task name -> (config class, task class, expert class)
TASKS: dict[str, tuple[type[TaskConfig], type[SimTask], type]] = {
    "wipe": (WipeConfig, WipeTask, WipeExpert),
    "peel": (PeelConfig, PeelTask, PeelExpert),
    "lift": (LiftConfig, LiftTask, LiftExpert),
}


def task_config(name: str, path: str | Path | None = None, **overrides: Any) -> TaskConfig:
    """Config of task ``name``: defaults, then the YAML file (bundled or ``path``), then overrides."""
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(sorted(TASKS))}")
    cls = TASKS[name][0]
    data: dict[str, Any] = {}
    try:
        data = load_yaml(find_config("task", path or name))
    except FileNotFoundError:
        if path is not None:
            raise
    data.pop("type", None)
    data.update(overrides)
    return from_dict(cls, data)


def make_task(name: str, path: str | Path | None = None, **overrides: Any) -> SimTask:
    """Build task ``name`` (see :func:`task_config`)."""
    config = task_config(name, path, **overrides)
    return TASKS[name][1](config)


def make_expert(task: SimTask) -> Any:
    """The scripted expert of ``task`` (privileged, acts at the control rate)."""
    return TASKS[task.name][2](task)


__all__ = ["PERTURBATIONS", "TASKS", "SimTask", "TaskConfig", "make_expert", "make_task", "task_config"]
