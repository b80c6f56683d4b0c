"""Studies built on top of every other layer: closed-loop evaluation of policies in simulation
(:mod:`~tactkit.experiments.evaluation`), the quickstart (:mod:`~tactkit.experiments.quickstart`),
and the action-tokenizer benchmark (:mod:`~tactkit.experiments.tokenizer_bench`,
:mod:`~tactkit.experiments.action_families`, :mod:`~tactkit.experiments.tokenizer_report`).

Nothing below this package imports it; the controller (:mod:`tactkit.real`) knows nothing of
simulation or experiments.
"""
