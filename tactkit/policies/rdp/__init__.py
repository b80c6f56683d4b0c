"""Reactive Diffusion Policy: asymmetric tokenizer (fast) + latent diffusion (slow)."""
