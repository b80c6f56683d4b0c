"""SIGKILL a recording subprocess at random moments; committed episodes must stay intact.

Each round starts ``crash_child.py`` (which records 0.45 s or 0.06 s episodes in real time
from two threads, forever), kills it with SIGKILL after a random delay, then checks:
the store opens; every episode the child reported committed is there; every committed
episode holds exactly the expected samples and is bit-identical to what it was in every
earlier round; recovery commits the interrupted episode with at most the last second lost
(or discards it) and the store verifies clean.
"""

from __future__ import annotations

import collections
import hashlib
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tactkit.store import EpisodeStore

HERE = Path(__file__).parent
CHILD = HERE / "crash_child.py"
_spec = importlib.util.spec_from_file_location("tactkit_store_crash_child", CHILD)
child = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(child)

KILLS = int(os.environ.get("TACTKIT_CRASH_KILLS", "20"))
MAX_LOSS_S = 1.0


def episode_digest(ep) -> str:
    h = hashlib.sha256()
    for key in sorted(ep.keys):
        h.update(key.encode())
        h.update(ep.timestamps(key).tobytes())
        h.update(np.ascontiguousarray(ep.values(key)).tobytes())
    return h.hexdigest()


def check_content(ep) -> None:
    ep_no = int(ep.name.split("_")[1])
    for key in child.STREAMS:
        ts, vals = ep.timestamps(key), ep.values(key)
        assert len(ts) == len(vals) == ep.length(key), (ep.name, key)
        assert np.isfinite(ts).all() and (np.diff(ts) >= 0).all(), (ep.name, key)
        want = child.expected(key, ep_no, np.arange(len(vals)))
        if key.startswith("observation.images") and len(vals):
            assert np.abs(vals.astype(int) - want).mean() < 3.0, (ep.name, key)
        else:
            np.testing.assert_array_equal(vals, want, err_msg=f"{ep.name} {key}")


def wait_ready(progress: Path, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if progress.exists() and "READY" in progress.read_text():
            return
        if proc.poll() is not None:
            raise AssertionError(f"child exited early with {proc.returncode}: {proc.stderr.read()}")
        time.sleep(0.01)
    raise AssertionError("child never became ready")


@pytest.mark.slow
def test_sigkill_at_random_moments(tmp_path):
    path = tmp_path / "crash.zarr"
    EpisodeStore.create(path, child.STREAMS, flush_interval_s=0.25)
    rng = np.random.default_rng(1234)
    digests: dict[str, str] = {}
    n_recovered = n_discarded = 0
    phases = collections.Counter()  # what the child last reported before the kill
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parents[2]), os.environ.get("PYTHONPATH", "")])}
    for round_no in range(KILLS):
        progress = tmp_path / f"progress{round_no}.txt"
        episode_s = 0.45 if round_no % 2 == 0 else 0.06  # short episodes: more kills in begin/commit
        proc = subprocess.Popen([sys.executable, str(CHILD), str(path), str(progress), str(episode_s)],
                                stderr=subprocess.PIPE, text=True, env=env)
        wait_ready(progress, proc)
        time.sleep(rng.uniform(0.0, 1.3))
        proc.kill()  # SIGKILL
        proc.wait()
        proc.stderr.close()
        lines = [ln.split() for ln in progress.read_text().splitlines()]
        last = next((ln[0] for ln in reversed(lines) if ln and ln[0] in "BAKC"), "?")
        phases[{"B": "begin", "A": "append", "K": "commit", "C": "between"}.get(last, "?")] += 1
        reported_commits = {ln[1] for ln in lines if len(ln) == 2 and ln[0] == "C"}
        last_append: dict[str, float] = {}
        for ln in lines:
            if len(ln) == 3 and ln[0] == "A":
                last_append[ln[1]] = float(ln[2])

        store = EpisodeStore.open(path, mode="a")  # opens after any kill
        committed = {ep.name: ep for ep in store.episodes()}
        assert reported_commits <= set(committed), (round_no, reported_commits - set(committed))
        for name, ep in committed.items():
            if name in digests:
                assert episode_digest(ep) == digests[name], f"round {round_no}: {name} changed"
            else:
                check_content(ep)
                digests[name] = episode_digest(ep)

        interrupted = store.interrupted()
        assert len(interrupted) <= 1, interrupted
        discard = round_no % 4 == 3
        reports = store.recover(discard=discard)
        assert store.interrupted() == []
        for rep in reports:
            name = rep["episode"]
            if discard:
                assert rep["action"] == "discarded"
                n_discarded += 1
                continue
            if rep["action"] == "recovered":
                n_recovered += 1
                ep = next(e for e in store.episodes() if e.name == name)
                assert ep.recovered
                check_content(ep)
                digests[name] = episode_digest(ep)
                got_last = max(ep.record["t_last"][k] or -np.inf
                               for k in ("observation.wrench", "action.tcp_pose"))
            else:  # nothing was flushed yet
                got_last = None
            if name in last_append:
                # every sample appended more than MAX_LOSS_S before the kill survived
                if got_last is None:
                    first = min(float(ln[2]) for ln in lines if len(ln) == 3 and ln[1] == name)
                    assert last_append[name] - first <= MAX_LOSS_S, (round_no, name)
                else:
                    assert got_last >= last_append[name] - MAX_LOSS_S, (round_no, name, got_last, last_append[name])
        assert store.verify() == []
    print(f"{KILLS} kills: {len(digests)} committed episodes checked, "
          f"{n_recovered} recovered, {n_discarded} discarded; killed during {dict(phases)}")
    assert len(digests) >= KILLS // 2
    assert n_recovered >= 1 and n_discarded >= 1
