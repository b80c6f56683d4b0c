"""``make bench`` (benchmarks/run_all.py): every script is in its table, and a quick run works."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run_all():
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "benchmarks" / "run_all.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["run_all"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_every_benchmark_script_is_run_by_make_bench():
    mod = _run_all()
    assert mod.scripts_on_disk() == set(mod.BENCHES)
    make = subprocess.run(["make", "-n", "bench"], cwd=ROOT, capture_output=True, text=True)
    assert "benchmarks/run_all.py" in make.stdout


def test_unknown_names_are_refused(capsys):
    assert _run_all().main(["--only", "nope", "--list"]) == 2
    assert "unknown benchmark 'nope'" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_run_writes_each_report_and_a_summary(tmp_path):
    out = tmp_path / "bench"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--quick", "--only",
                        "tracker_accuracy,store_sampler", "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "RMS" in (out / "tracker_accuracy.txt").read_text()
    summary = (out / "summary.md").read_text()
    assert "| tracker_accuracy | ok |" in summary and "| store_sampler | ok |" in summary
