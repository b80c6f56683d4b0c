"""The scripted experts are Markovian (they act on the state they observe, never on a clock)
and the demonstrations can carry DART noise injection."""

from __future__ import annotations

import numpy as np
import pytest

from tactkit.sim.recording import ActionNoise, run_recorded_episode
from tactkit.sim.tasks import make_expert, make_task


def _phases(task: str, settle_steps: int, seed: int = 3) -> tuple[list[str], np.ndarray]:
    env = make_task(task, perturb="none", cameras=False)
    env.reset(seed)
    for _ in range(settle_steps):  # the arm waits (holding) before the expert takes over
        env.step(env.hold_action())
    expert = make_expert(env)
    phases, positions = [], []
    while not env.done:
        a = expert.act(None)
        phases.append(expert.phase)
        positions.append(np.concatenate([a[i:i + 3] for i in range(0, len(a), 8)]))
        env.step(a)
    env.close()
    return phases, np.array(positions)


@pytest.mark.slow
@pytest.mark.parametrize(("task", "moving"), [("wipe", ("descend", "wipe")), ("peel", ("descend", "sweep")),
                                              ("lift", ("approach", "lift"))])
def test_experts_start_at_once_and_never_wait_on_a_timer(task, moving):
    ph0, pos0 = _phases(task, 0)
    ph1, pos1 = _phases(task, 12)  # half a second later
    # what the expert does depends on the state, not on the time: the same phases, each as long
    # (within 3 steps: the arm settles a little lower meanwhile); a clock-driven expert (the old
    # "hover until 0.8 s") would shorten its first phase by the 12 steps waited
    durations = np.array([[p.count(name) for name in dict.fromkeys(ph0)] for p in (ph0, ph1)])
    last = list(dict.fromkeys(ph0))[-1]
    assert np.abs(durations[0, :-1] - durations[1, :-1]).max() <= 3, durations
    # it moves from its first action and on every step of its motion phases: no waiting on a
    # clock (lift's squeeze waits for the grip force to build: a state, shown by the durations)
    active = np.array([p in moving for p in ph0])
    assert last not in moving
    steps = np.linalg.norm(np.diff(pos0, axis=0), axis=1)[active[1:]]
    assert steps.min() > 1e-5, (task, steps.min())
    assert np.linalg.norm(pos0[1] - pos0[0]) > 1e-4 and np.linalg.norm(pos1[1] - pos1[0]) > 1e-4


def test_action_noise_is_seeded_correlated_and_moves_positions_only():
    env = make_task("lift", cameras=False)
    env.reset(0)
    noise = ActionNoise(env, 0.002, 0.3, np.random.default_rng(0))
    a = env.hold_action()
    d = np.array([noise(a) - a for _ in range(4000)])
    env.close()
    moved = np.zeros(16, bool)
    moved[[0, 1, 2, 8, 9, 10]] = True  # xyz of each arm's pose action
    assert np.all(d[:, ~moved] == 0.0)
    assert 0.0015 < d[:, moved].std() < 0.0025
    lag1 = np.corrcoef(d[:-1, 0], d[1:, 0])[0, 1]
    assert abs(lag1 - np.exp(-1 / (24 * 0.3))) < 0.05  # Ornstein-Uhlenbeck, tau 0.3 s at 24 Hz
    with pytest.raises(ValueError, match="noise"):
        ActionNoise(env, -1.0, 0.3, np.random.default_rng(0))


def test_noisy_demos_record_the_experts_action_and_execute_the_disturbed_one():
    env = make_task("wipe", perturb="none", cameras=False, episode_s=2.0)
    executed = []
    env.world = None
    original_send = env.send_action

    def spy(action):
        executed.append(np.asarray(action, float).copy())
        return original_send(action)

    env.send_action = spy
    buf, _ = run_recorded_episode(env, 5, noise=0.002)
    recorded = np.concatenate([np.stack(buf.values["action.tcp_pose"])[:, :3]], axis=1)
    done = np.stack(executed)[:, :3]
    diff = done - recorded
    assert 0.001 < diff.std() < 0.003  # executed = recorded + the disturbance
    clean, _ = run_recorded_episode(env, 5, noise=0.0)
    assert not np.allclose(np.stack(clean.values["action.tcp_pose"])[:, :3], recorded, atol=1e-4)  # it corrected
    env.close()


@pytest.mark.slow
def test_demos_the_expert_fails_are_discarded_and_replaced(tmp_path):
    """Lift seed 18 with 1 mm of DART noise: the disturbed expert drops the box (measured score
    0.0; 1.0 without noise). With min_score the episode is not stored and seed 19 is recorded."""
    from tactkit.sim.recording import record_demos
    from tactkit.store import EpisodeStore

    info = record_demos("lift", 1, tmp_path / "d.zarr", perturb="none", seed=18, noise=0.001, min_score=0.8,
                        progress=False, cameras=False)
    store = EpisodeStore.open(str(tmp_path / "d.zarr"))
    assert info["discarded_seeds"] == [18] and store.num_episodes == 1
    assert store.episode(0).metadata["seed"] == 19 and info["min_score"] >= 0.8
