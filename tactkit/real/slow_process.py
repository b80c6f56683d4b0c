"""The slow policy (``policy.plan``) out of the robot loop's way: in a spawned process or a thread.

Both implement :class:`SlowPolicy`, the interface the wall-clock runtime uses: ``start()``,
``request(window)`` (non-blocking; one request in flight at a time), ``poll()`` (messages
since the last poll), ``alive``, ``busy``, ``exitcode`` and ``stop()``. Messages:

* :class:`PlanReady` - a finished plan and how long ``plan`` took;
* :class:`Heartbeat` - the planner is alive (sent every ``heartbeat_period`` even while
  planning, so a long inference is not mistaken for a dead process);
* :class:`PlannerFailed` - ``plan`` raised (the traceback); the process then exits.

:class:`SlowPolicyProcess` uses a ``spawn`` context (safe with torch and threads) and a pipe;
the policy is built in the child by a picklable factory, e.g.
``functools.partial(load_policy, "ckpt.pt")``. Windows travel pickled through the pipe: a
window of two 240x320 RGB images is ~0.5 MB, about a millisecond.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue
import threading
import time
import traceback
from collections.abc import Callable, MutableSequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from tactkit.policies.interface import Plan, Policy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlanReady:
    plan: Plan
    compute_s: float  # s spent in ``policy.plan``


@dataclass(frozen=True)
class Heartbeat:
    t: float  # the planner's monotonic clock


@dataclass(frozen=True)
class PlannerFailed:
    traceback: str


SlowMessage = PlanReady | Heartbeat | PlannerFailed


class SlowPolicy(Protocol):
    """``policy.plan`` out of the robot loop's way (:class:`SlowPolicyProcess`, :class:`SlowPolicyThread`)."""

    busy: bool  # a request is in flight

    @property
    def alive(self) -> bool: ...

    @property
    def exitcode(self) -> int | None: ...

    def start(self) -> None: ...

    def request(self, window: dict[str, np.ndarray]) -> None: ...

    def poll(self) -> list[SlowMessage]: ...

    def stop(self, timeout: float = 5.0) -> None: ...


_READY = "ready"  # first message of a started planner (consumed by start())


def _serve(policy: Policy, send: Callable[[Any], None], recv: Callable[[], Any], heartbeat_period: float) -> None:
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(heartbeat_period):
            send(Heartbeat(time.monotonic()))

    threading.Thread(target=beat, daemon=True, name="slow-heartbeat").start()
    send(_READY)
    try:
        while True:
            window = recv()
            if window is None:
                break
            t0 = time.perf_counter()
            plan = policy.plan(window)
            send(PlanReady(plan, time.perf_counter() - t0))
    except Exception:  # report, then die: the parent's watchdog stops the arm
        send(PlannerFailed(traceback.format_exc()))
    finally:
        stop.set()


def _child_main(factory: Callable[[], Policy], conn: Any, heartbeat_period: float) -> None:
    lock = threading.Lock()

    def send(msg: Any) -> None:
        with lock:
            conn.send(msg)

    try:
        policy = factory()
    except Exception:
        send(PlannerFailed(traceback.format_exc()))
        return
    _serve(policy, send, conn.recv, heartbeat_period)


class SlowPolicyProcess:
    """``policy.plan`` in its own (spawned) process."""

    def __init__(
        self, factory: Callable[[], Policy], heartbeat_period: float = 0.05, start_timeout: float = 120.0
    ) -> None:
        self.factory = factory
        self.heartbeat_period = heartbeat_period
        self.start_timeout = start_timeout
        self._proc: Any = None
        self._conn: Any = None
        self.busy = False

    def start(self) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_child_main, args=(self.factory, child, self.heartbeat_period), daemon=True, name="tactkit-slow-policy"
        )
        self._proc.start()
        child.close()
        if not self._conn.poll(self.start_timeout):
            self.stop()
            raise RuntimeError(f"slow-policy process did not start within {self.start_timeout} s")
        msg = self._conn.recv()
        if isinstance(msg, PlannerFailed):
            self.stop()
            raise RuntimeError(f"slow-policy process failed to build the policy:\n{msg.traceback}")
        log.info("slow-policy process %d ready", self._proc.pid)

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    @property
    def exitcode(self) -> int | None:
        return None if self._proc is None else self._proc.exitcode

    def request(self, window: dict[str, np.ndarray]) -> None:
        if self.busy:
            raise RuntimeError("slow policy is still planning; wait for its plan before requesting another")
        self.busy = True
        self._conn.send(window)

    def poll(self) -> list[SlowMessage]:
        out: list[SlowMessage] = []
        try:
            while self._conn is not None and self._conn.poll():
                msg = self._conn.recv()
                if isinstance(msg, (PlanReady, PlannerFailed)):
                    self.busy = False
                out.append(msg)
        except (EOFError, OSError):
            pass  # process gone: `alive` turns False and the runtime trips the watchdog
        return out

    def stop(self, timeout: float = 5.0) -> None:
        if self._proc is None:
            return
        try:
            if self._proc.is_alive():
                self._conn.send(None)
        except (OSError, BrokenPipeError):
            pass
        self._proc.join(timeout)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout)
        self._conn.close()
        self._proc = None


class SlowPolicyThread:
    """``policy.plan`` in a thread of this process (tests, or policies too big to load twice)."""

    def __init__(self, policy: Policy, heartbeat_period: float = 0.05) -> None:
        self.policy = policy
        self.heartbeat_period = heartbeat_period
        self._in: queue.Queue = queue.Queue()
        self._out: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self.busy = False

    def start(self) -> None:
        self._thread = threading.Thread(
            target=_serve, args=(self.policy, self._out.put, self._in.get, self.heartbeat_period),
            daemon=True, name="slow-policy",
        )
        self._thread.start()
        self._out.get(timeout=10.0)  # _READY

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def exitcode(self) -> int | None:
        return None

    def request(self, window: dict[str, np.ndarray]) -> None:
        if self.busy:
            raise RuntimeError("slow policy is still planning; wait for its plan before requesting another")
        self.busy = True
        self._in.put(window)

    def poll(self) -> list[SlowMessage]:
        out: list[SlowMessage] = []
        while True:
            try:
                msg = self._out.get_nowait()
            except queue.Empty:
                return out
            if isinstance(msg, (PlanReady, PlannerFailed)):
                self.busy = False
            out.append(msg)

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._in.put(None)
            self._thread.join(timeout)
            self._thread = None


def serve_plans(core: Any, slow: SlowPolicy, clock: Any, stop: threading.Event, plan_period: float,
                compute_s: MutableSequence[float]) -> None:
    """The controller's slow-policy poller, until ``stop`` is set or the slow process dies:
    install each plan that arrives (feeding the watchdog, logging its compute time in
    ``compute_s``), trip the watchdog on a planner failure or a dead process, and request the
    next plan every ``plan_period`` s once the last one arrived. ``core`` is the
    :class:`~tactkit.real.controller.ControllerCore` (``install_plan``, ``watchdog``,
    ``faulted``, ``window``)."""
    next_request = clock.now()
    while not stop.is_set():
        now = clock.now()
        for msg in slow.poll():
            now = clock.now()
            if isinstance(msg, PlanReady):
                core.install_plan(msg.plan, now)
                core.watchdog.feed("slow_process", now)
                compute_s.append(float(msg.compute_s))
            elif isinstance(msg, Heartbeat):
                core.watchdog.feed("slow_process", now)
            elif isinstance(msg, PlannerFailed):
                core.watchdog.trip("slow_process", f"slow policy raised:\n{msg.traceback}", now)
        if not slow.alive:
            core.watchdog.trip("slow_process", f"slow-policy process died (exit code {slow.exitcode})", now)
            return
        if not slow.busy and now >= next_request and not core.faulted:
            window = core.window()
            if window is not None:
                slow.request(window)
                next_request = now + plan_period
        stop.wait(0.002)
