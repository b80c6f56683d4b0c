"""Tokenizer benchmark plumbing: trajectory families, the direct reference, the CLI (quick)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tactkit.experiments.action_families import FAMILIES, GRIPPER_OPEN, chunk, generate
from tactkit.experiments.tokenizer_bench import reference_encode_decode, store_datasets
from tactkit.policies.beast import BeastTokenizer


def test_families_deterministic_shapes_and_grippers() -> None:
    for fam in FAMILIES:
        a = generate(fam, 2, 120, 2, seed=3)
        assert a.shape == (2, 120, 14) and np.isfinite(a).all()
        np.testing.assert_array_equal(a, generate(fam, 2, 120, 2, seed=3))
        assert not np.array_equal(a, generate(fam, 2, 120, 2, seed=4))
        assert set(np.unique(a[..., [6, 13]])) <= {0.0, GRIPPER_OPEN}
    with pytest.raises(ValueError, match="unknown trajectory family"):
        generate("nope", 1, 10, 1, 0)
    c = chunk(np.arange(31.0)[None, :, None], 11, 10)
    assert c.shape == (1, 3, 11, 1) and c[0, 1, 0, 0] == c[0, 0, -1, 0]  # shared boundary step


def test_direct_reference_matches_tokenizer_fit() -> None:
    x = generate("sinusoids", 4, 64, 1, seed=0)[:, :16]
    tok = BeastTokenizer(7, 16, 8)
    np.testing.assert_allclose(reference_encode_decode(x, 8, 4, tok.ridge), tok.evaluate(tok.fit_controls(x)), atol=1e-10)


def test_cli_quick_bench_writes_report(tmp_path) -> None:
    import argparse

    from tactkit.cli import tokenizer as cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["tokenizer", "bench", "--quick", "--out", str(tmp_path)])
    assert args.func(args) == 0
    md = (tmp_path / "tokenizer_bench.md").read_text()
    assert "## Targets" in md and "Machine:" in md
    assert (tmp_path / "tokenizer_bench.png").stat().st_size > 10_000
    report = json.loads((tmp_path / "tokenizer_bench.json").read_text())
    rows = report["rows"]
    assert {r["tokenizer"] for r in rows} == {"beast", "beast_half", "fast", "binning"}
    assert len({r["dataset"] for r in rows}) == len(FAMILIES)
    for r in rows:
        if r["tokenizer"].startswith("beast"):
            assert r["valid_sub1"] == r["valid_sub5"] == 1.0
            assert r["gap_c0_max"] <= 1e-6 and r["tokens_p99"] == r["tokens_mean"]
        if r["tokenizer"] == "binning":
            assert r["max_err"] > 0 and r["tokens_mean"] == 16 * 7
    assert report["throughput"][0]["fit_agreement"] < 1e-9
    targets = {t["target"][:20]: t for t in report["targets"]}
    assert len(targets) == 5 and targets["BEAST decodes 100% o"]["pass"] is True


def test_bench_on_recorded_store(tmp_path) -> None:
    from tactkit.store import POSE_NAMES, EpisodeStore, StreamSpec

    streams = {
        "action.tcp_pose": StreamSpec("float64", (7,), 50.0, "m", POSE_NAMES),
        "action.gripper_width": StreamSpec("float32", (1,), 50.0, "m"),
    }
    store = EpisodeStore.create(str(tmp_path / "demo.zarr"), streams=streams)
    traj = generate("min_jerk", 5, 200, 1, seed=1)
    for ep in traj:
        with store.begin_episode(task="reach") as rec:
            ts = np.arange(200) / 50.0
            pose = np.concatenate([ep[:, :3], np.tile([1.0, 0, 0, 0], (200, 1))], axis=1)
            rec.append_many("action.tcp_pose", ts, pose)
            rec.append_many("action.gripper_width", ts, ep[:, 6:7].astype(np.float32))
    datasets = list(store_datasets(str(tmp_path / "demo.zarr"), (16,), fps=10.0))
    assert len(datasets) == 1
    ds = datasets[0]
    assert ds.action_dim == 8 and ds.gripper_dims == (0,)  # keys sorted: gripper_width, tcp_pose
    assert ds.test.shape[2:] == (16, 8) and len(ds.train) > 0


def test_cli_missing_store_is_a_clear_error(tmp_path) -> None:
    import argparse

    from tactkit.cli import tokenizer as cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["tokenizer", "bench", "--quick", "--data", str(tmp_path / "nope.zarr")])
    with pytest.raises(FileNotFoundError, match="no such store"):
        args.func(args)
