"""Choosing episodes by the operator's verdict, the task's score or their index.

An episode carries two judgements that need not agree: the **operator's verdict** (the
``success`` of its commit record: what the person - or the simulated operator - said when
ending it) and, where a simulation scored it, the **task score** (``sim_score`` in its
metadata, ``task_score`` for other scorers; ``sim_success`` is the task's own threshold on it).
A filter is a comma-separated list of terms::

    success            operator verdict: success          failure    operator verdict: failure
    score>=0.8         task score at least 0.8 (also >, <=, <, ==)
    3   5-9            episode indices (their union)

Verdict and score terms must all hold; index terms pick the episodes they are tested on
(default: every committed episode).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tactkit.store.episode_store import Episode, EpisodeStore

SCORE_KEYS = ("task_score", "sim_score")
SEED_KEYS = ("sim_seed", "seed")
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, "==": operator.eq, ">": operator.gt, "<": operator.lt,
}
_SCORE = re.compile(r"^score\s*(>=|<=|==|>|<)\s*([-+0-9.eE]+)$")
_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


def episode_verdict(metadata: dict[str, Any]) -> str | None:
    """The operator's verdict: ``"success"``, ``"failure"`` or None (not given)."""
    success = metadata.get("success")
    return None if success is None else ("success" if success else "failure")


def episode_score(metadata: dict[str, Any]) -> float | None:
    """The task's score of the episode, or None where nothing scored it."""
    for k in SCORE_KEYS:
        if metadata.get(k) is not None:
            return float(metadata[k])
    return None


def episode_seed(metadata: dict[str, Any]) -> int | None:
    for k in SEED_KEYS:
        if metadata.get(k) is not None:
            return int(metadata[k])
    return None


def parse_filter(spec: str) -> tuple[set[int] | None, list[tuple[str, Callable[[Episode], bool]]]]:
    """(index set or None, named predicates) of a filter string; errors name the bad term."""
    indices: set[int] | None = None
    tests: list[tuple[str, Callable[[Episode], bool]]] = []
    terms = [t.strip() for t in spec.split(",") if t.strip()]
    if not terms:
        raise ValueError("empty episode filter; use success, failure, score>=X or indices such as 0,2,5-9")
    for term in terms:
        if term in ("success", "failure"):
            tests.append((term, lambda ep, want=term: episode_verdict(ep.metadata) == want))
            continue
        m = _SCORE.match(term)
        if m:
            op, x = _OPS[m.group(1)], float(m.group(2))

            def score_test(ep: Episode, op=op, x=x, term=term) -> bool:
                score = episode_score(ep.metadata)
                if score is None:
                    raise ValueError(f"episode {ep.name} has no task score ({' or '.join(SCORE_KEYS)} in its "
                                     f"metadata) to test {term!r} on")
                return bool(op(score, x))

            tests.append((term, score_test))
            continue
        m = _RANGE.match(term)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            if hi < lo:
                raise ValueError(f"episode range {term!r} runs backwards")
            indices = (indices or set()) | set(range(lo, hi + 1))
            continue
        raise ValueError(f"episode filter term {term!r}: use success, failure, score>=X (>, <=, <, ==) "
                         "or indices such as 3 or 5-9")
    return indices, tests


def select_episodes(store: EpisodeStore, spec: str) -> list[int]:
    """Indices of the committed episodes of ``store`` that pass filter ``spec`` (see module
    doc). None passing is an error that says how many each term let through."""
    indices, tests = parse_filter(spec)
    n = store.num_episodes
    if indices is not None:
        out_of_range = sorted(i for i in indices if i >= n)
        if out_of_range:
            raise ValueError(f"episode filter {spec!r}: the store has {n} episodes (0-{n - 1}), "
                             f"no episode {out_of_range[0]}")
    candidates = sorted(indices) if indices is not None else list(range(n))
    passed = {name: 0 for name, _ in tests}
    chosen = []
    for i in candidates:
        ep = store.episode(i)
        ok = True
        for name, test in tests:
            if test(ep):
                passed[name] += 1
            else:
                ok = False
        if ok:
            chosen.append(i)
    if not chosen:
        detail = ", ".join(f"{name!r} holds for {k}" for name, k in passed.items())
        raise ValueError(f"episode filter {spec!r} selects none of {len(candidates)} episodes"
                         + (f" ({detail})" if detail else ""))
    return chosen
