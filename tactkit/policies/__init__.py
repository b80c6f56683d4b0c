"""Policies: networks, normalisers, RDP, Diffusion Policy, BEAST, training and checkpoints."""
