"""Run summaries for people: safety-filter and planner counts as shares of ticks, with meaning.

``tactkit control``, ``tactkit eval``, ``tactkit teleop`` and evaluation reports print counts
such as ``{'linear_rate': 1012}``; :func:`describe_safety` turns them into lines that say what
share of the robot ticks each limit changed the command and what that means, and warns when a
limit shaped most of the motion (the robot then did what the limits allowed, not what was
commanded). :func:`describe_plans` does the same for plan steps that arrived too late.
"""

from __future__ import annotations

from collections.abc import Mapping

#: limit name (SafetyFilter report) -> what it means when it binds
SAFETY_MEANING: dict[str, str] = {
    "invalid": "non-finite target or non-unit quaternion: the previous command was repeated",
    "wrench": "measured force/torque over max_force / max_torque: the target was replaced by a hold (or retract)",
    "workspace": "target outside the workspace box: clipped to it",
    "rate": "a move commanded with no time elapsed: held",
    "linear_rate": "commanded position moved faster than max_linear_speed / max_linear_accel: slowed",
    "angular_rate": "commanded orientation turned faster than max_angular_speed / max_angular_accel: slowed",
    "gripper_width": "gripper target outside gripper_width_range: clamped (harmless for a tool without "
                     "a gripper whose target sits at the end of the range)",
    "gripper_force": "gripper force outside [0, max_gripper_force]: clamped",
}
#: limits that change where the arm goes (a warning when they bind most of the time)
MOTION_LIMITS = ("invalid", "wrench", "workspace", "rate", "linear_rate", "angular_rate")


def describe_safety(stats: Mapping[str, int], ticks: int, *, warn_share: float = 0.5, indent: str = "  ") -> str:
    """Safety-filter counts (limit name -> ticks it changed the command) over ``ticks`` robot
    ticks, as lines: share, name, meaning; then a ``WARNING`` line naming every motion limit
    that bound on more than ``warn_share`` of the ticks."""
    counts = {k: int(v) for k, v in stats.items() if int(v) > 0}
    if not counts:
        return f"safety filter: no limit changed a command ({ticks} ticks)"
    if ticks <= 0:
        raise ValueError(f"ticks must be > 0 to express {counts} as shares")
    lines = [f"safety filter: share of {ticks} robot ticks on which a limit changed the command"]
    width = max(len(k) for k in counts)
    cw = len(str(max(counts.values()))) + 2
    for name, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        meaning = SAFETY_MEANING.get(name, "limit of the safety filter")
        lines.append(f"{indent}{name:<{width}} {100.0 * n / ticks:5.1f}% {f'({n})':>{cw}}  {meaning}")
    shaping = [k for k in MOTION_LIMITS if counts.get(k, 0) > warn_share * ticks]
    if shaping:
        lines.append(
            f"WARNING: {', '.join(shaping)} shaped most of the motion (> {warn_share:.0%} of ticks): the arm "
            "followed the limits, not the commands; check the commanded motion or the limits "
            "(controller.safety.* in configs/robot/<robot>.yaml)")
    return "\n".join(lines)


def describe_plans(plans: int, dropped: int, steps_per_plan: int | None = None) -> str:
    """Planner counts in words: plans installed and the plan steps dropped because they were
    already in the past when their plan arrived (inference + execution latency), as a share
    of the steps planned when ``steps_per_plan`` is known."""
    text = f"plans: {plans} installed"
    if not dropped:
        return text + ", no plan step arrived too late"
    share = ""
    if steps_per_plan and plans:
        share = f" ({100.0 * dropped / (plans * steps_per_plan):.1f}% of {plans * steps_per_plan} planned)"
    return (f"{text}; {dropped} plan steps dropped{share}: they were already in the past when their plan "
            "arrived (inference + execution latency), so the arm skipped them")
