"""Diffusion Policy baseline (action-space diffusion)."""
