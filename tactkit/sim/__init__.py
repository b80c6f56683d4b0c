"""PyBullet simulation: impedance-controlled Panda arms, simulated tactile / force / camera
sensors and contact-rich tasks (wipe, peel, lift) with scripted experts.

Modules: :mod:`~tactkit.sim.world` (physics client + lockstep clock), :mod:`~tactkit.sim.robot`
(``SimRobot``, a :class:`tactkit.real.robot.Robot`), :mod:`~tactkit.sim.sensors` (``Sensor``
implementations), :mod:`~tactkit.sim.tactile` (marker-field model), :mod:`~tactkit.sim.tasks`
(tasks, experts, evaluation). See docs/simulation.md.
"""
