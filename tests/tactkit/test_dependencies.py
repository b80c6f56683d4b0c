"""Dependencies by role (issue 19, item 8): pymongo (bson) only for the Quest app, matplotlib
only for plots, the hardware extra complete, and the core install enough for `tactkit
dataset`, `train`, `sim` (and `teleop` without the Quest app)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: what only an extra may provide
OPTIONAL = ("pymongo", "bson", "matplotlib", "imageio", "imageio_ffmpeg", "tensorboard", "wandb", "av", "rerun",
            "pyarrow")


def _names(reqs: list[str]) -> set[str]:
    return {re.split(r"[\s<>=!\[;]", r, maxsplit=1)[0].lower() for r in reqs}


def _extra(name: str) -> set[str]:
    """Requirement names of an extra, self-references (tactkit[a,b]) expanded."""
    out: set[str] = set()
    for req in PYPROJECT["project"]["optional-dependencies"][name]:
        m = re.match(r"tactkit\[([a-z_,\s-]+)\]", req)
        if m:
            for sub in m.group(1).split(","):
                out |= _extra(sub.strip())
        else:
            out |= _names([req])
    return out


def test_extras_by_role():
    core = _names(PYPROJECT["project"]["dependencies"])
    assert not core & {"pymongo", "matplotlib", "imageio", "tensorboard", "av", "rerun-sdk", "pyarrow"}, core
    assert "pymongo" in _extra("quest")
    assert {"matplotlib", "tensorboard"} <= _extra("viz")
    drivers = set().union(*(_extra(n) for n in ("flexiv", "franka", "ur", "realsense", "spacemouse")))
    assert drivers <= _extra("hardware"), drivers - _extra("hardware")
    assert "flexivrdk" in _extra("hardware")
    # `make test` installs .[dev]: it must bring everything the test suite imports
    assert {"pymongo", "matplotlib", "tensorboard", "pytest", "hypothesis"} <= _extra("dev")


#: in a process: every optional package is absent, as in a core install (None in sys.modules:
#: `import x` raises ModuleNotFoundError and importlib.util.find_spec("x") is None)
BLOCKER = textwrap.dedent(f"""
    import sys
    for name in {(*OPTIONAL, "tensorboardX")!r}:
        sys.modules[name] = None
""")


@pytest.mark.slow
def test_core_install_runs_dataset_train_sim_and_teleop(tmp_path):
    """In a process where every optional package fails to import, as in a core install."""
    script = BLOCKER + textwrap.dedent(f"""
        import sys
        import torch
        torch.set_num_threads(1)
        from tactkit.cli.main import main
        from tactkit.policies.synthetic import make_synthetic_store

        tmp = {str(tmp_path)!r}
        make_synthetic_store(tmp + "/s.zarr", episodes=2, seconds=1.0, image_hw=(24, 24))
        assert main(["dataset", "info", tmp + "/s.zarr"]) == 0
        assert main(["dataset", "align", tmp + "/s.zarr", tmp + "/v.zarr", "--fps", "24"]) == 0
        assert main(["train", "dp", "--data", tmp + "/s.zarr", "--out", tmp + "/dp", "--no-progress", "size=tiny",
                     "num_steps=2", "batch_size=4", "obs_keys=[observation.state.tcp_pose]"]) == 0
        assert main(["sim", "demos", "--task", "wipe", "--episodes", "1", "--no-cameras", "--out", tmp + "/d.zarr",
                     "--set", "episode_s=0.5"]) == 0
        import tactkit.teleop.session  # the bridge without the Quest app
        for extra in {OPTIONAL!r}:
            assert sys.modules[extra] is None, extra  # still absent: nothing needed it
        print("CORE OK")
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert r.returncode == 0 and "CORE OK" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]
    assert not (tmp_path / "dp" / "logs").exists()  # log_with=auto: no TensorBoard, no tracker


def test_quest_app_names_its_extra():
    script = BLOCKER + textwrap.dedent("""
        from tactkit.teleop.quest import _bson
        try:
            _bson()
        except ImportError as exc:
            print(exc)
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "pip install 'tactkit[quest]'" in r.stdout, r.stdout + r.stderr
