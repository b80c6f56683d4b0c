"""ImplicitRDP (Chen et al., arXiv 2512.10946): an end-to-end slow-fast visual-force diffusion
policy. One transformer denoises the action chunk from slow tokens (images, proprioception)
and fast tokens (the force/tactile signal along the chunk, causal), re-denoised at the fast
rate with the same DDIM noise; a virtual-target auxiliary target (``x + K^-1 f``) keeps the
force modality from collapsing. ``network.py`` (the model), ``policy.py`` (plan + step),
``virtual_target.py`` (the auxiliary target), ``config.py`` (the ``irdp`` settings)."""
