"""Tokenizer benchmark additions: BEAST's clipped fraction, the T = 32 throughput target, the
recorded command, the plot's curves."""

from __future__ import annotations

import argparse

import numpy as np

from tactkit.experiments.tokenizer_bench import (
    BenchResult,
    Dataset,
    beast_clipped,
    evaluate_targets,
)
from tactkit.experiments.tokenizer_report import _CURVES
from tactkit.policies.beast import BeastTokenizer


def test_clipped_counts_test_control_points_beyond_the_training_bounds() -> None:
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 16)[None, :, None]
    train = np.sin(2 * np.pi * rng.uniform(0.2, 1.0, (200, 1, 2)) * t + rng.uniform(0, 6, (200, 1, 2)))
    inside = Dataset("in", train, train[:20][None], ())
    outside = Dataset("out", train, 1.5 * train[:20][None], ())  # leaves the training range
    tok = BeastTokenizer(2, 16, 8).fit(train)
    assert beast_clipped(tok, inside) <= 0.01  # the 0.1 / 99.9 percentiles clip the tails only
    assert beast_clipped(tok, outside) > 0.1


def test_throughput_target_is_judged_at_t32() -> None:
    def row(t: int, x: float) -> dict:
        return {"chunk_len": t, "speedup_vs_direct": x, "speedup_vs_rebuild_vec": 1.0}

    for at32, met in ((6.5, True), (5.9, False)):
        result = BenchResult(throughput=[row(10, 3.0), row(16, 5.0), row(32, at32)])
        evaluate_targets(result)
        (target,) = [t for t in result.targets if t["target"].startswith("encode+decode")]
        assert target["pass"] is met and "T = 32" in target["target"] and "3.0-" in target["measured"]


def test_recorded_command_names_the_settings_that_ran() -> None:
    from tactkit.cli import tokenizer as cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["tokenizer", "bench", "--quick", "--out", "x", "--seed", "3"])
    assert cli._command(args) == "tactkit tokenizer bench --quick --seed 3 --out x"


def test_plot_draws_only_tokenizers_the_tables_have() -> None:
    assert set(_CURVES) <= {"beast", "beast_half", "fast", "binning"}


def test_error_decomposition_separates_clamping_from_quantisation() -> None:
    """A test set beyond the training range: the error as encoded is the clamping, which bounds
    that cover the test chunks remove and finer bins do not."""
    from tactkit.experiments.tokenizer_bench import beast_error_decomposition

    rng = np.random.default_rng(1)
    t = np.linspace(0, 1, 16)[None, :, None]
    train = np.sin(2 * np.pi * rng.uniform(0.2, 0.6, (300, 1, 2)) * t + rng.uniform(0, 6, (300, 1, 2)))
    ds = Dataset("wide", train, 1.3 * train[:40][None], ())
    (r,) = beast_error_decomposition(ds, [8])
    assert r["fit"] <= r["quantised_unclamped"] < r["encoded"] and r["clipped"] > 0.05
    assert r["bounds_train_test"] < 0.1 * r["encoded"] and r["bins_4096"] > 0.5 * r["encoded"]
    assert 0.9 < r["bound_width_over_range"] < 1.5 and 1 < r["cond"] < 20
