"""wipe: determinism, scoring on hand-made trajectories, expert vs open-loop replay."""

import numpy as np
import pytest

from tactkit.sim.geometry import DOWN
from tactkit.sim.tasks import make_expert, make_task
from tactkit.sim.tasks.evaluate import reactivity_gap


def _rollout(seed, perturb="after_contact", steps=60, **kw):
    env = make_task("wipe", perturb=perturb, **kw)
    obs = env.reset(seed)
    expert = make_expert(env)
    frames = [obs]
    for _ in range(steps):
        obs, *_ = env.step(expert.act(obs))
        frames.append(obs)
    board = env.board_pose()
    env.close()
    return frames, board


def test_same_seed_is_bit_identical_and_seeds_differ():
    a, board_a = _rollout(3, camera_rate_hz=6.0)
    b, board_b = _rollout(3, camera_rate_hz=6.0)
    assert set(a[-1]) >= {"observation.images.wrist", "observation.images.external",
                          "observation.tactile.pad.marker_offset", "observation.wrench",
                          "observation.state.tcp_pose"}
    for fa, fb in zip(a, b):
        for key in fa:
            assert np.array_equal(fa[key], fb[key]), key
    assert np.array_equal(board_a, board_b)
    c, _ = _rollout(4, cameras=False, steps=10)
    assert not np.array_equal(a[10]["observation.state.tcp_pose"], c[10]["observation.state.tcp_pose"])
    # the pad touched the board: touch shows in the markers and the wrench
    assert np.abs(a[-1]["observation.tactile.pad.marker_offset"]).max() > 1e-3
    assert a[-1]["observation.wrench"][2] > 3.0


def _scripted(seed, depth, episode_s=9.0):
    """Follow the path with a fixed target depth below the (unperturbed) surface."""
    env = make_task("wipe", perturb="none", cameras=False, episode_s=episode_s)
    env.reset(seed)
    surf = env.privileged()["surface_z"]
    n = len(env.path) - 1
    while not env.done:
        t = env.clock.now()
        s = np.clip((t - 1.6) / 6.0, 0, 1) * n
        xy = env.path_world(s)
        z = surf + 0.03 if t < 1.0 else surf - depth
        env.step(np.r_[xy, z, DOWN, 0.0])
    out = env.evaluate()
    env.close()
    return out


@pytest.mark.slow
def test_scoring_on_hand_made_trajectories():
    hover = _scripted(0, depth=-0.01, episode_s=4.0)  # 1 cm above the board: never touches
    assert hover["raw_score"] == 0.0 and not hover["success"]
    crush = _scripted(0, depth=0.015)  # 1.5 cm deep at 2500 N/m: ~37 N, far out of band
    assert crush["raw_score"] < 0.05
    right = _scripted(0, depth=0.004)  # 10 N
    assert right["score"] > 0.9 and right["success"]


def test_bad_actions_and_configs_are_rejected():
    env = make_task("wipe", cameras=False)
    env.reset(0)
    with pytest.raises(ValueError, match="action must have 8"):
        env.step(np.zeros(5))
    with pytest.raises(KeyError, match="missing"):
        env.step({"action.tcp_pose": np.r_[0.5, 0, 0.1, DOWN]})
    env.close()
    with pytest.raises(ValueError, match="perturb"):
        make_task("wipe", perturb="sideways")
    with pytest.raises(ValueError, match="unknown config key"):
        make_task("wipe", speed=3)
    with pytest.raises(KeyError, match="unknown task"):
        make_task("juggle")


@pytest.mark.slow
def test_expert_beats_open_loop_replay_under_after_contact():
    gaps = [reactivity_gap("wipe", seed, cameras=False) for seed in (1,)]
    for g in gaps:
        assert g["expert"] >= 0.9
        assert g["gap"] >= 0.3, g


def test_lockstep_controller_api():
    """A 500 Hz controller drives the robot directly; sensors and scoring keep working."""
    from tactkit.real.robot import ArmCommand, RobotCommand

    env = make_task("wipe", perturb="after_contact", cameras=False, episode_s=2.5)
    env.reset(0)
    expert = make_expert(env)
    tactile, wrench = env.sensors["tactile.pad"], env.sensors["wrench.arm"]
    seqs = set()
    while not env.done:
        if env.world.step_count % 42 == 0:  # re-plan at ~24 Hz, command at 500 Hz
            target = expert.act(None)[:7]
        state = env.robot.read_state()
        assert state.timestamp == env.clock.now()
        env.robot.send(RobotCommand(env.clock.now(), {"arm": ArmCommand(tcp_target=target)}))
        env.world.step_physics(2)
        sample = tactile.read_latest(max_age=0.05)
        assert sample is not None and sample.capture_time <= env.clock.now()
        seqs.add(sample.seq)
    assert 70 <= len(seqs) <= 77  # 30 Hz for 2.5 s
    assert wrench.read_latest().value[2] > 3.0  # pressing on the board at the end
    assert 29 <= tactile.health().rate_hz <= 31
    assert env.evaluate()["raw_score"] > 0.0
    env.close()


def test_scene_variation_scales_the_scene_but_not_the_perturbation():
    def scene(seed, v):
        env = make_task("wipe", perturb="after_contact", cameras=False, scene_variation=v)
        env.reset(seed)
        out = (env.board_home.copy(), env.path.copy(), env.delay, env.motion.values.copy())
        env.close()
        return out

    fixed = [scene(s, 0.0) for s in (1, 2)]
    assert np.array_equal(fixed[0][0], fixed[1][0]) and np.array_equal(fixed[0][1], fixed[1][1])
    assert np.allclose(fixed[0][0], [0.52, 0.0, 0.03 - 0.01])
    assert fixed[0][2] != fixed[1][2] and not np.array_equal(fixed[0][3], fixed[1][3])  # random per seed
    full, half = scene(1, 1.0), scene(1, 0.5)
    assert full[2] == half[2] == fixed[0][2]  # same random numbers drawn whatever the variation
    assert np.array_equal(full[3], fixed[0][3]) and np.array_equal(half[3], fixed[0][3])
    assert np.allclose(half[0] - fixed[0][0], 0.5 * (full[0] - fixed[0][0]))
    assert not np.array_equal(full[1], fixed[0][1])
    with pytest.raises(ValueError, match="scene_variation"):
        scene(1, 1.5)


def test_environment_state_shows_the_scene_but_not_the_after_contact_motion():
    env = make_task("wipe", perturb="after_contact", cameras=False, motion="family:steps")
    obs = env.reset(2)
    expert = make_expert(env)
    first = obs["observation.environment_state"]
    assert first.shape == (21,) and first.dtype == np.float32
    np.testing.assert_allclose(first[:3], env.board_home + [0, 0, 0.01], atol=1e-6)
    np.testing.assert_allclose(first[3:5], env.path_world(0), atol=1e-6)  # the first path point
    moved = 0.0
    while not env.done:
        obs, *_ = env.step(expert.act(obs))
        moved = max(moved, abs(env.height_offset(env.clock.now())))
        np.testing.assert_array_equal(obs["observation.environment_state"], first)
    assert moved > 2e-3  # the board did move after contact; the planner's view did not
    env.close()
    env = make_task("wipe", perturb="before_contact", cameras=False)
    env.reset(2)
    for _ in range(24):
        obs, *_ = env.step(env.hold_action())
    np.testing.assert_allclose(obs["observation.environment_state"][:3] - first[:3], env.shift, atol=2e-3)
    env.close()


def test_record_demos_takes_a_list_of_perturbation_modes(tmp_path):
    from tactkit.sim.recording import record_demos
    from tactkit.store import EpisodeStore

    record_demos("wipe", 3, tmp_path / "d.zarr", perturb="none,after_contact", progress=False,
                 cameras=False, episode_s=0.5, scene_variation=0.0)
    store = EpisodeStore.open(str(tmp_path / "d.zarr"))
    assert [store.episode(i).metadata["perturb"] for i in range(3)] == ["none", "after_contact", "none"]
    with pytest.raises(ValueError, match="perturb"):
        record_demos("wipe", 1, tmp_path / "e.zarr", perturb="none,sideways", progress=False, cameras=False)


@pytest.mark.slow
def test_force_feedback_expert_wipes_and_its_corrections_show_in_the_force():
    def run(feedback):
        env = make_task("wipe", perturb="after_contact", cameras=False, scene_variation=0.0,
                        expert_feedback=feedback, motion="family:sine")
        obs = env.reset(1)
        expert = make_expert(env)
        fz = []
        while not env.done:
            obs, *_ = env.step(expert.act(obs))
            fz.append(obs["observation.wrench"][2])
        score = env.evaluate()["score"]
        env.close()
        return score, np.std(fz[72:180])  # 3-7.5 s: wiping while the board moves

    priv, force = run("privileged"), run("force")
    assert priv[0] > 0.95 and force[0] > 0.95
    assert force[1] > 2.0 * priv[1], (priv, force)  # touch now carries the height correction (measured 3.7x)
    with pytest.raises(ValueError, match="expert_feedback"):
        env = make_task("wipe", cameras=False, expert_feedback="psychic")
        env.reset(0)
        make_expert(env).act()


def test_perturb_speed_time_scales_the_after_contact_motion():
    def offsets(speed, times):
        env = make_task("wipe", perturb="after_contact", cameras=False, perturb_speed=speed)
        env.reset(4)
        env.contact_time = 0.0
        out = np.array([env.height_offset(env.delay + t) for t in times])
        env.close()
        return out

    tau = np.linspace(0.01, 2.5, 40)
    slow, fast = offsets(1.0, tau * 4.0), offsets(4.0, tau)
    np.testing.assert_allclose(fast, slow, atol=1e-12)
    assert np.abs(slow).max() > 1e-3  # the board really moves
    with pytest.raises(ValueError, match="perturb_speed"):
        make_task("wipe", cameras=False, perturb_speed=0.0).reset(0)
