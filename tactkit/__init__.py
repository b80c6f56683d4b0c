"""tactkit: a visual-tactile robot learning control stack.

Foundations shared by every part live directly in this package: clocks (:mod:`tactkit.clock`),
rate loops (:mod:`tactkit.rate`), config loading (:mod:`tactkit.config`), the episode store
(:mod:`tactkit.store`) and the register-by-config-type helper (:mod:`tactkit.registry`).
"""

__version__ = "0.1.0"
