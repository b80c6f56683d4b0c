"""Teleoperation: the TactAR-style headset <-> robot bridge over ZeroMQ.

Modules: :mod:`~tactkit.teleop.protocol` (versioned msgspec messages, validation, rejection
reasons), :mod:`~tactkit.teleop.security` (CURVE keys, allow-list, bind policy),
:mod:`~tactkit.teleop.retarget` (clutch, scaling, modes, calibration),
:mod:`~tactkit.teleop.bridge` (the server loop: validate -> retarget -> safety filter ->
robot; feedback), :mod:`~tactkit.teleop.feedback` (tactile arrow fields, force arrows, JPEG),
:mod:`~tactkit.teleop.recording` (episodes into the store), :mod:`~tactkit.teleop.client`
(headset side), :mod:`~tactkit.teleop.operator` (simulated operator),
:mod:`~tactkit.teleop.desk` (keyboard / SpaceMouse), :mod:`~tactkit.teleop.quest` (the
published TactAR Quest app), :mod:`~tactkit.teleop.simrig` (a sim task in real time),
:mod:`~tactkit.teleop.session` (wiring for ``tactkit teleop``), :mod:`~tactkit.teleop.fuzz`.
See docs/teleop.md and docs/teleop-protocol.md.
"""
