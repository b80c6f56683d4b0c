"""Policy kinds: how to build each policy's network and its inference wrapper.

A policy kind is a trainable module with ``forward(batch) -> (loss, metrics)`` (its
``compute_loss``) plus, optionally, an inference class implementing
:class:`tactkit.policies.interface.Policy`. The training loop and checkpoints only use this
table, so a new policy (e.g. BEAST) registers itself here and reuses both::

    register_kind(PolicyKind("beast", build_beast_model, BeastPolicy))
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from tactkit.policies.config import PolicyConfig
from tactkit.policies.features import FeatureCodec


@dataclass(frozen=True)
class PolicyKind:
    name: str
    #: (config, codec, extra) -> module; ``extra`` carries stage inputs (e.g. the tokenizer config)
    build_model: Callable[[PolicyConfig, FeatureCodec, dict[str, Any]], nn.Module]
    #: dotted path "module:Class" of the inference wrapper (imported lazily), or None
    inference: str | None = None
    description: str = ""
    #: (config, data path) -> config: settings resolved from the training data before the model
    #: is built (e.g. ImplicitRDP's stiffness from the store's attributes); None = nothing to do
    prepare_config: Callable[[PolicyConfig, str | Path], PolicyConfig] | None = None


_KINDS: dict[str, PolicyKind] = {}


def register_kind(kind: PolicyKind) -> None:
    if kind.name in _KINDS:
        raise ValueError(f"policy kind {kind.name!r} is already registered")
    _KINDS[kind.name] = kind


def get_kind(name: str) -> PolicyKind:
    """The kind ``name``; an unregistered name is looked up by importing the package
    ``tactkit.policies.<name>``, which registers itself on import."""
    if name not in _KINDS and name.isidentifier():
        try:
            importlib.import_module(f"tactkit.policies.{name}")
        except ModuleNotFoundError:
            pass
    if name not in _KINDS:
        raise KeyError(f"unknown policy kind {name!r}; known: {', '.join(sorted(_KINDS))}")
    return _KINDS[name]


def kind_names() -> list[str]:
    return sorted(_KINDS)


# ------------------------------------------------------------------ built-in kinds
def _build_at(cfg: PolicyConfig, codec: FeatureCodec, extra: dict[str, Any]) -> nn.Module:
    from tactkit.policies.rdp.tokenizer import AsymmetricTokenizer

    return AsymmetricTokenizer(
        codec, cfg.action_keys, cfg.fast_keys, cfg.horizon, cfg.downsample,
        cfg.latent_dim, cfg.at_channels, cfg.gru_hidden, cfg.kl_weight, cfg.fast_delay_steps,
    )  # fmt: skip


def _build_ldp(cfg: PolicyConfig, codec: FeatureCodec, extra: dict[str, Any]) -> nn.Module:
    from tactkit.policies.rdp.latent_diffusion import LatentDiffusionModel

    if "tokenizer_config" not in extra:
        raise ValueError("the latent diffusion policy needs a trained tokenizer (at_checkpoint)")
    tok = _build_at(extra["tokenizer_config"], codec, {})
    return LatentDiffusionModel(cfg, codec, tok)


def _build_dp(cfg: PolicyConfig, codec: FeatureCodec, extra: dict[str, Any]) -> nn.Module:
    from tactkit.policies.diffusion.model import DiffusionPolicyModel

    return DiffusionPolicyModel(cfg, codec)


def _build_beast(cfg: PolicyConfig, codec: FeatureCodec, extra: dict[str, Any]) -> nn.Module:
    from tactkit.policies.beast.network import BeastModel

    return BeastModel(cfg, codec)


def _build_irdp(cfg: PolicyConfig, codec: FeatureCodec, extra: dict[str, Any]) -> nn.Module:
    from tactkit.policies.implicit_rdp.network import ImplicitRDPModel

    return ImplicitRDPModel(cfg, codec)


def _prepare_irdp(cfg: PolicyConfig, data_path: str | Path) -> PolicyConfig:
    from tactkit.policies.implicit_rdp.virtual_target import prepare_config

    return prepare_config(cfg, data_path)


register_kind(PolicyKind("at", _build_at, None, "asymmetric tokenizer (RDP stage 1, fast decoder)"))
register_kind(
    PolicyKind("ldp", _build_ldp, "tactkit.policies.rdp.policy:ReactiveDiffusionPolicy", "latent diffusion (RDP stage 2)")
)
register_kind(PolicyKind("dp", _build_dp, "tactkit.policies.diffusion.policy:DiffusionPolicy", "Diffusion Policy baseline"))
register_kind(
    PolicyKind("beast", _build_beast, "tactkit.policies.beast.policy:BeastPolicy", "BEAST (B-spline tokens, one pass)")
)
register_kind(
    PolicyKind(
        "implicit_rdp", _build_irdp, "tactkit.policies.implicit_rdp.policy:ImplicitRDPPolicy",
        "ImplicitRDP (slow-fast visual-force transformer diffusion)", _prepare_irdp,
    )
)  # fmt: skip
