"""Policy and training configuration: one dataclass for every policy, loaded from YAML.

``configs/policy/<name>.yaml`` holds a policy's defaults; ``size=tiny|small|paper`` picks a
network-size overlay from ``configs/policy/size_<size>.yaml``; ``key=value`` overrides win
over both::

    cfg = load_policy_config("dp", ["size=tiny", "num_steps=200"])

Observation keys are dataset keys; what happens to each is decided by its name (see
:mod:`tactkit.policies.features`): ``observation.images.*`` go through an image encoder,
``observation.tactile.*.marker_offset`` through the tactile PCA, 7-D ``*tcp_pose`` keys are
turned into xyz + 6-D rotation, everything else is flattened and min-max normalised.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tactkit.config import (
    ConfigError,
    config_dir,
    find_config,
    from_dict,
    load_yaml,
    merge,
    parse_overrides,
)
from tactkit.policies.beast.config import BeastConfig
from tactkit.policies.implicit_rdp.config import ImplicitRDPConfig

#: the diffusion target of configs saved before ``prediction_type`` existed
LEGACY_PREDICTION_TYPE = "epsilon"

_POSITIVE_INTS = (
    "n_obs_steps", "horizon", "pca_components", "resnet_width", "image_feature_dim", "kernel_size", "n_groups",
    "diffusion_step_embed_dim", "num_train_timesteps", "num_inference_steps", "latent_dim", "downsample",
    "at_channels", "gru_hidden", "batch_size", "num_steps", "val_every", "ckpt_every", "log_every",
    "latent_stat_samples",
)
_NON_NEGATIVE_INTS = ("fast_delay_steps", "warmup_steps", "num_workers", "threads")
_POSITIVE_FLOATS = ("fps", "lr")
_NON_NEGATIVE_FLOATS = ("kl_weight", "weight_decay", "grad_clip")


@dataclass
class PolicyConfig:
    policy: str = "dp"  # a registered policy kind (tactkit.policies.factory)
    size: str = "small"
    # --- data
    fps: float = 24.0  # control grid the store is aligned to
    # episodes of an episode store to train on (tactkit.store.selection): "success" (the
    # operator's verdict), "score>=0.8" (the task's score), indices "0,2,5-9"; empty: all
    episodes: str = ""
    obs_keys: list[str] = field(
        default_factory=lambda: [
            "observation.images.wrist",
            "observation.state.tcp_pose",
            "observation.state.gripper_width",
        ]
    )
    action_keys: list[str] = field(default_factory=lambda: ["action.tcp_pose", "action.gripper_width"])
    fast_keys: list[str] = field(default_factory=list)  # AT decoder signal (tactile or wrench)
    # keys sampled over the whole horizon as training targets only (never observed at run time),
    # e.g. ImplicitRDP's TCP pose and wrench for its virtual target
    target_keys: list[str] = field(default_factory=list)
    # Key map for data with other key names (diffusion_policy/UMI/RDP buffers): source key ->
    # tactkit key(s), e.g. keys.img=observation.images.wrist, keys.action="action.tcp_pose[0:9],
    # action.gripper_width[9:10]", keys.a+b=... joins 1-D keys (tactkit.store.replay_buffer).
    keys: dict[str, Any] = field(default_factory=dict)
    n_obs_steps: int = 2
    # Pose actions' xyz relative to the newest observed TCP position of the same arm
    # (``action[.<arm>].tcp_pose`` - ``observation.state[.<arm>].tcp_pose`` at the window's last
    # observation step; rotation and other actions stay absolute), as UMI does. The networks then
    # spend their precision on the motion, not on where the workspace is (docs/controller.md).
    relative_actions: bool = False
    horizon: int = 16  # action steps per chunk (AT/LDP: 32)
    pca_components: int = 15
    pca_path: str | None = None  # a fitted TactilePCA file; fitted from the training data if None
    image_shape: list[int] = field(default_factory=lambda: [96, 96])  # resize to (H, W)
    crop_shape: list[int] = field(default_factory=lambda: [84, 84])  # random/centre crop (H, W)
    # --- networks
    resnet_width: int = 16  # channels of the first ResNet-18 stage (64 in the paper)
    image_feature_dim: int = 64  # projection of the pooled ResNet features
    down_dims: list[int] = field(default_factory=lambda: [64, 128, 256])
    # the latent sequence is 4x shorter (8 steps): one U-Net level less covers it
    latent_down_dims: list[int] = field(default_factory=lambda: [64, 128])
    kernel_size: int = 5
    n_groups: int = 8
    diffusion_step_embed_dim: int = 64
    num_train_timesteps: int = 100
    num_inference_steps: int = 8
    # Diffusion target: "sample" (the clean chunk) or "epsilon" (the noise, Diffusion Policy's
    # choice). At CPU-sized budgets epsilon left DP's chunks ~5 mm off (docs/controller.md).
    # Configs saved before this option existed were epsilon: see LEGACY_PREDICTION_TYPE.
    prediction_type: str = "sample"
    # --- asymmetric tokenizer (stage 1 of RDP)
    latent_dim: int = 16
    downsample: int = 4  # horizon / latent steps
    at_channels: int = 64
    gru_hidden: int = 32
    kl_weight: float = 1e-6
    # the decoder's input at step t is the fast signal of step t - fast_delay_steps (training and
    # the plan's prefix); at run time each step gets the newest signal, captured before its command
    fast_delay_steps: int = 0
    at_checkpoint: str | None = None  # LDP: the trained tokenizer's checkpoint
    # --- BEAST policy (B-spline tokens, tactkit.policies.beast)
    beast: BeastConfig = field(default_factory=BeastConfig)
    # --- ImplicitRDP (slow-fast transformer diffusion, tactkit.policies.implicit_rdp)
    irdp: ImplicitRDPConfig = field(default_factory=ImplicitRDPConfig)
    # --- inference
    latency_steps: int = 1  # plan step 0 = newest observation + latency_steps * dt
    # --- training
    seed: int = 0
    batch_size: int = 64
    num_steps: int = 2000
    lr: float = 3e-4
    weight_decay: float = 1e-6
    warmup_steps: int = 100
    grad_clip: float = 1.0
    ema_decay: float = 0.999  # 0 disables EMA
    val_ratio: float = 0.0
    val_every: int = 500
    ckpt_every: int = 1000
    log_every: int = 10
    # training logs besides metrics.jsonl, through accelerate's trackers: "auto" (TensorBoard
    # when it is installed), "none", "tensorboard", "wandb", or a comma-separated list
    log_with: str = "auto"
    num_workers: int = 0
    threads: int = 0  # torch intra-op threads for training; 0 = torch's default (all cores)
    latent_stat_samples: int = 4096  # windows encoded to compute the LDP latent statistics

    def __post_init__(self) -> None:
        self._check_ranges()
        if self.n_obs_steps < 1:
            raise ConfigError(f"n_obs_steps must be >= 1, got {self.n_obs_steps}")
        if self.horizon < self.n_obs_steps:
            raise ConfigError(f"horizon ({self.horizon}) must be >= n_obs_steps ({self.n_obs_steps})")
        if self.policy in ("at", "ldp") and self.horizon % self.downsample:
            raise ConfigError(f"horizon ({self.horizon}) must be a multiple of downsample ({self.downsample})")
        if len(self.image_shape) != 2 or len(self.crop_shape) != 2:
            raise ConfigError("image_shape and crop_shape must be [H, W]")
        if any(c > s for c, s in zip(self.crop_shape, self.image_shape)):
            raise ConfigError(f"crop_shape {self.crop_shape} larger than image_shape {self.image_shape}")
        if not self.action_keys:
            raise ConfigError("action_keys must not be empty")
        if self.prediction_type not in ("epsilon", "sample"):
            raise ConfigError(f"prediction_type must be 'epsilon' or 'sample', got {self.prediction_type!r}")
        if self.policy == "at" and not self.fast_keys:
            raise ConfigError("the asymmetric tokenizer needs fast_keys (tactile or wrench keys)")
        if self.relative_actions and self.policy.startswith("beast"):
            raise ConfigError("relative_actions is not supported by the BEAST policy (its spline statistics are absolute)")
        if self.relative_actions and not self.action_anchors:
            raise ConfigError(f"relative_actions needs a tcp_pose action key, got {self.action_keys}")
        if not 0 <= self.latency_steps < self.horizon - self.n_obs_steps + 1:
            raise ConfigError(f"latency_steps must be in [0, horizon - n_obs_steps], got {self.latency_steps}")

    def _check_ranges(self) -> None:
        """Refuse values no training or inference can use (each error names the key)."""
        for name in _POSITIVE_INTS:
            v = getattr(self, name)
            if v < 1:
                raise ConfigError(f"{name} must be >= 1, got {v}")
        for name in _NON_NEGATIVE_INTS:
            v = getattr(self, name)
            if v < 0:
                raise ConfigError(f"{name} must be >= 0, got {v}")
        for name in _POSITIVE_FLOATS:
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be a finite number > 0, got {v}")
        for name in _NON_NEGATIVE_FLOATS:
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ConfigError(f"{name} must be a finite number >= 0, got {v}")
        for name in ("ema_decay", "val_ratio"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:  # also false for NaN
                raise ConfigError(f"{name} must be in [0, 1), got {v}")
        for name in ("down_dims", "latent_down_dims", "image_shape", "crop_shape"):
            v = getattr(self, name)
            if not v or any(x < 1 for x in v):
                raise ConfigError(f"{name} must be a non-empty list of integers >= 1, got {v}")
        if self.num_inference_steps > self.num_train_timesteps:
            raise ConfigError(
                f"num_inference_steps ({self.num_inference_steps}) must be <= num_train_timesteps "
                f"({self.num_train_timesteps})"
            )

    @property
    def latent_steps(self) -> int:
        return self.horizon // self.downsample

    @property
    def action_anchors(self) -> dict[str, str]:
        """``{pose action key: the observed pose it is relative to}`` (empty unless
        ``relative_actions``): ``action.tcp_pose`` -> ``observation.state.tcp_pose``,
        ``action.left.tcp_pose`` -> ``observation.state.left.tcp_pose``."""
        if not self.relative_actions:
            return {}
        return {k: "observation.state." + k[len("action."):] for k in self.action_keys
                if k.startswith("action.") and k.endswith("tcp_pose")}

    @property
    def image_keys(self) -> list[str]:
        return [k for k in self.obs_keys if k.startswith("observation.images.")]

    @property
    def lowdim_obs_keys(self) -> list[str]:
        return [k for k in self.obs_keys if not k.startswith("observation.images.")]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyConfig:
        """A saved config (checkpoint, ``run_config.json``). One written before
        ``prediction_type`` existed was trained with epsilon prediction and keeps it."""
        return from_dict(cls, {"prediction_type": LEGACY_PREDICTION_TYPE, **data})


def load_policy_config(name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> PolicyConfig:
    """Load ``configs/policy/<name>.yaml`` (or a path), its size overlay, then ``overrides``."""
    base = load_yaml(find_config("policy", name_or_path))
    over = parse_overrides(list(overrides))
    size = over.get("size", base.get("size", "small"))
    sizes = sorted(q.stem[len("size_"):] for q in (config_dir() / "policy").glob("size_*.yaml"))
    if str(size) not in sizes:
        raise ConfigError(f"size={size!r} is not a network size; choose one of {', '.join(sizes)}")
    size_file = find_config("policy", f"size_{size}")
    data = merge(merge(base, load_yaml(size_file)), over)
    data["size"] = size
    return from_dict(PolicyConfig, data)
