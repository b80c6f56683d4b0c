"""The BEAST policy network: observation tokens + N x D control-point slots, one bidirectional
transformer pass, a head per slot.

The chunk a plan covers starts at the first step the controller executes (newest observation
+ ``latency_steps``) and runs to the end of the training horizon, so a plan's spline can be
pinned to the previous plan exactly where the controller switches (C0/C1 continuity).

* ``head: discrete`` -- each slot predicts one of ``bins`` tokens of the fitted
  :class:`~tactkit.policies.beast.tokenizer.BeastTokenizer` (cross-entropy), as the
  published BEAST does with a vision-language backbone; inference takes the argmax.
* ``head: continuous`` -- each slot regresses its normalised control point (MSE).

Actions live in the network's action space (poses as xyz + 6-D rotation, min-max
normalised, see :mod:`tactkit.policies.features`); the tokenizer is fitted on training
chunks in that space (:meth:`BeastModel.fit_tokenizer`, called by the shared training loop
before the first step) and its bounds are buffers of this module, so they are saved in
``model.safetensors`` with the weights and come back on load.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from tactkit.policies.beast.tokenizer import BeastTokenizer
from tactkit.policies.config import PolicyConfig
from tactkit.policies.features import FeatureCodec
from tactkit.policies.networks import ObservationEncoder

log = logging.getLogger(__name__)


def gripper_dims(codec: FeatureCodec, action_keys: list[str]) -> tuple[int, ...]:
    """Indices (network action space) of gripper widths: piecewise constant in BEAST."""
    dims, i = [], 0
    for k in action_keys:
        spec = codec.specs[k]
        if k.endswith("gripper_width"):
            dims.extend(range(i, i + spec.dim))
        i += spec.dim
    return tuple(dims)


class BeastModel(nn.Module):
    def __init__(self, cfg: PolicyConfig, codec: FeatureCodec) -> None:
        super().__init__()
        self.cfg = cfg
        self.codec = codec
        bc = cfg.beast
        self.action_dim = codec.dim(cfg.action_keys)
        self.chunk_start = cfg.n_obs_steps - 1 + cfg.latency_steps
        self.chunk_len = cfg.horizon - self.chunk_start
        if self.chunk_len < max(2, bc.num_ctrl):
            raise ValueError(
                f"BEAST chunk (horizon {cfg.horizon} - n_obs_steps {cfg.n_obs_steps} + 1 - latency_steps "
                f"{cfg.latency_steps} = {self.chunk_len} steps) must have at least beast.num_ctrl = {bc.num_ctrl} steps"
            )
        self.tokenizer = BeastTokenizer(
            self.action_dim,
            self.chunk_len,
            bc.num_ctrl,
            bc.degree,
            gripper_dims(codec, cfg.action_keys),
            bc.bins,
        )
        n, a = bc.num_ctrl, self.action_dim
        self.register_buffer("ctrl_low", torch.full((n, a), float("nan"), dtype=torch.float64))
        self.register_buffer("ctrl_high", torch.full((n, a), float("nan"), dtype=torch.float64))
        self.register_load_state_dict_post_hook(lambda module, _: module._sync_tokenizer())

        self.obs_encoder = ObservationEncoder(
            codec,
            cfg.obs_keys,
            cfg.n_obs_steps,
            tuple(cfg.crop_shape),
            cfg.resnet_width,
            cfg.image_feature_dim,
        )
        d = bc.d_model
        self.obs_proj = nn.Linear(self.obs_encoder.step_dim, d)
        self.obs_pos = nn.Parameter(torch.randn(1, cfg.n_obs_steps, d) * 0.02)
        self.ctrl_emb = nn.Parameter(torch.randn(n, d) * 0.02)  # which control point
        self.dim_emb = nn.Parameter(torch.randn(a, d) * 0.02)  # which action dimension
        layer = nn.TransformerEncoderLayer(
            d,
            bc.n_heads,
            d * bc.ff_mult,
            bc.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        # no attention mask: every slot sees every observation token and every other slot
        self.transformer = nn.TransformerEncoder(layer, bc.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, bc.bins if bc.head == "discrete" else 1)

    # ------------------------------------------------------------------ tokenizer
    @property
    def num_slots(self) -> int:
        return self.tokenizer.tokens_per_chunk

    def action_chunks(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Normalised network actions of the planned chunk ``[B, chunk_len, A]`` (float64)."""
        y = self.codec.encode(batch, list(self.cfg.action_keys))
        if y.shape[1] < self.cfg.horizon:
            raise ValueError(
                f"action window has {y.shape[1]} steps, BEAST needs the horizon {self.cfg.horizon}"
            )
        return y[:, self.chunk_start : self.cfg.horizon].double()

    @torch.no_grad()
    def fit_tokenizer(self, chunks: np.ndarray | torch.Tensor) -> None:
        """Fit the tokenizer's control-point bounds on training chunks ``[M, chunk_len, A]``."""
        if isinstance(chunks, torch.Tensor):
            chunks = chunks.detach().cpu().double().numpy()
        self.tokenizer.fit(np.asarray(chunks, dtype=np.float64))
        self.ctrl_low.copy_(torch.from_numpy(self.tokenizer.low))
        self.ctrl_high.copy_(torch.from_numpy(self.tokenizer.high))
        self._sync_tokenizer()

    def fit_latent_stats(self, batches: list[dict[str, torch.Tensor]]) -> None:
        """The shared training loop's hook for statistics fitted on training windows before the
        first step (``latent_stat_samples`` windows): here, the tokenizer's bounds."""
        chunks = torch.cat([self.action_chunks(b) for b in batches])
        self.fit_tokenizer(chunks)
        log.info(
            "BEAST tokenizer fitted on %d training chunks (%d tokens each)",
            chunks.shape[0],
            self.num_slots,
        )

    def _sync_tokenizer(self) -> None:
        low = self.ctrl_low.detach().cpu().numpy()
        high = self.ctrl_high.detach().cpu().numpy()
        fitted = np.isfinite(low).all() and np.isfinite(high).all()  # NaN until fitted
        self.tokenizer.set_bounds(low if fitted else None, high if fitted else None)

    def _require_fitted(self) -> None:
        if not self.tokenizer.fitted:
            raise RuntimeError(
                "the BEAST tokenizer is not fitted: call fit_tokenizer(chunks) (the training loop does)"
            )

    # ------------------------------------------------------------------ network
    def slot_outputs(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Head outputs per slot ``[B, N * A, bins]`` (discrete) or ``[B, N * A]`` (continuous),
        slots in the tokenizer's control-point-major order."""
        cond = self.obs_encoder(batch)  # [B, To * step_dim]
        b = cond.shape[0]
        obs = self.obs_proj(cond.reshape(b, self.cfg.n_obs_steps, -1)) + self.obs_pos
        slots = (self.ctrl_emb[:, None, :] + self.dim_emb[None, :, :]).reshape(
            1, self.num_slots, -1
        )
        h = self.transformer(torch.cat([obs, slots.expand(b, -1, -1)], dim=1))
        out = self.head(self.norm(h[:, obs.shape[1] :]))
        return out if self.cfg.beast.head == "discrete" else out[..., 0]

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        return self.compute_loss(batch)

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        self._require_fitted()
        chunks = self.action_chunks(batch)
        out = self.slot_outputs(batch)
        if self.cfg.beast.head == "discrete":
            target = self.tokenizer.encode(chunks)  # [B, N * A] long
            logits = out.reshape(-1, out.shape[-1])
            if self.cfg.beast.label_sigma > 0:
                loss = nn.functional.cross_entropy(
                    logits,
                    self._soft_targets(target.reshape(-1)),
                    label_smoothing=self.cfg.beast.label_smoothing,
                )
            else:
                loss = nn.functional.cross_entropy(
                    logits, target.reshape(-1), label_smoothing=self.cfg.beast.label_smoothing
                )
            acc = (out.argmax(-1) == target).float().mean()
            return loss, {"token_acc": float(acc)}
        target = self.tokenizer.encode_continuous(chunks).reshape(chunks.shape[0], -1).float()
        loss = nn.functional.mse_loss(out, target)
        return loss, {"ctrl_l1": float((out.detach() - target).abs().mean())}

    def _soft_targets(self, target: torch.Tensor) -> torch.Tensor:
        """Gaussian over the bins around each target token (rows sum to one)."""
        bins = torch.arange(self.tokenizer.bins, device=target.device, dtype=torch.float32)
        w = torch.exp(
            -0.5 * ((bins[None, :] - target[:, None].float()) / self.cfg.beast.label_sigma) ** 2
        )
        return w / w.sum(-1, keepdim=True)

    @torch.no_grad()
    def predict(
        self, batch: dict[str, torch.Tensor], decode: str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(normalised control points [B, N, A] float64, tokens [B, N * A] or None)``: tokens
        for the discrete head's argmax decoding, None for the continuous head and for
        expectation decoding (its control points lie between the bins). ``decode`` overrides
        ``cfg.beast.decode``."""
        self._require_fitted()
        out = self.slot_outputs(batch)
        if self.cfg.beast.head == "discrete":
            if (decode or self.cfg.beast.decode) == "expectation":
                # the mean bin of each slot's distribution instead of its mode: slots decoded
                # in parallel then agree on a mean motion where the demos are multimodal in time
                bins = torch.arange(out.shape[-1], device=out.device, dtype=torch.float64)
                level = (out.double().softmax(-1) * bins).sum(-1)
                params = level * (2.0 / (self.tokenizer.bins - 1)) - 1.0
                return params.reshape(out.shape[0], self.tokenizer.num_ctrl, self.action_dim), None
            tokens = out.argmax(-1)
            return self.tokenizer.tokens_to_params(tokens, like=self.ctrl_low), tokens
        return out.double().reshape(out.shape[0], self.tokenizer.num_ctrl, self.action_dim), None
