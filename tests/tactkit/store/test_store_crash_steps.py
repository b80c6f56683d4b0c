"""SIGKILL at every step of a commit, of a discard and of a begin (``crash_steps.py``).

After each kill: the store opens; the committed episode is intact; the episode being
committed is committed with every sample, or interrupted and recovered with every sample;
the episode being discarded never comes back, torn or whole; the index equals one rebuilt
from the commit records; ``verify`` is clean after ``recover``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tactkit.store import EpisodeStore

HERE = Path(__file__).parent
CHILD = HERE / "crash_steps.py"
_spec = importlib.util.spec_from_file_location("tactkit_store_crash_steps", CHILD)
child = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(child)


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """Every step killed once, by one launcher process (see crash_steps.py)."""
    directory = tmp_path_factory.mktemp("crash_steps")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parents[2]), os.environ.get("PYTHONPATH", "")])}
    steps = [*child.COMMIT_STEPS, *child.DISCARD_STEPS, *child.BEGIN_STEPS]
    proc = subprocess.run([sys.executable, str(CHILD), str(directory), *steps], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    return directory, results, proc.stderr


def killed_store(killed, step: str) -> Path:
    directory, results, stderr = killed
    assert results[step] == -9, (step, results[step], stderr[-2000:])
    return directory / f"{step}.zarr"


def assert_episode(store: EpisodeStore, name: str, ep_no: int) -> None:
    ep = store.episode_named(name)
    for key in child.STREAMS:
        ts, vals = child.values(key, ep_no)
        assert ep.length(key) == len(ts), (name, key)
        np.testing.assert_array_equal(ep.timestamps(key), ts)
        if key.startswith("observation.images"):
            assert np.abs(ep.values(key).astype(int) - vals).mean() < 2
        else:
            np.testing.assert_array_equal(ep.values(key), vals)


def index_entries(path: Path) -> list:
    return EpisodeStore.open(path).index.entries()


def assert_index_matches_rebuild(path: Path) -> None:
    kept = index_entries(path)
    shutil.rmtree(path / "index")
    rebuilt = EpisodeStore.open(path, mode="a")
    assert rebuilt.index.rebuilt_reason == "no index"
    assert rebuilt.index.entries() == kept


@pytest.mark.slow
@pytest.mark.parametrize("step", child.COMMIT_STEPS)
def test_kill_during_commit(killed, step):
    path = killed_store(killed, step)
    store = EpisodeStore.open(path, mode="a")
    assert_episode(store, "ep_000000", 0)
    if step == "before_record":
        assert store.num_episodes == 1 and store.interrupted() == ["ep_000001"]
        (report,) = store.recover()
        assert report["action"] == "recovered"
        assert store.episode_named("ep_000001").recovered
    else:  # the commit record was written: committed, and indexed on open
        assert store.num_episodes == 2 and store.interrupted() == []
        assert store.recover() == []
        assert not store.episode_named("ep_000001").recovered
    assert_episode(store, "ep_000001", 1)
    assert store.verify() == []
    assert json.loads((path / "index" / "head.json").read_text())["pending"] == []
    assert_index_matches_rebuild(path)


@pytest.mark.slow
@pytest.mark.parametrize("step", child.DISCARD_STEPS)
def test_kill_during_discard_never_resurrects(killed, step):
    path = killed_store(killed, step)
    for mode in ("r", "a"):  # neither a reader nor recovery sees the discarded episode
        store = EpisodeStore.open(path, mode=mode)
        assert [e.name for e in store.episodes()] == ["ep_000000"]
    assert_episode(store, "ep_000000", 0)
    reports = store.recover()
    assert all(r["action"] == "discarded" for r in reports), reports
    assert [e.name for e in store.episodes()] == ["ep_000000"] and store.interrupted() == []
    assert not (path / "episodes" / "ep_000001").exists()
    assert list((path / "discards").iterdir()) == []
    assert store.verify() == []
    assert store.index.head["next"] == 2  # the discarded name is not handed out again
    assert_index_matches_rebuild(path)


@pytest.mark.slow
def test_kill_between_reserving_a_name_and_creating_the_episode(killed):
    path = killed_store(killed, "after_reserve")
    store = EpisodeStore.open(path, mode="a")
    assert store.num_episodes == 1 and store.interrupted() == []
    assert store.recover() == [] and store.verify() == []
    assert json.loads((path / "index" / "head.json").read_text())["pending"] == []
    assert_index_matches_rebuild(path)
