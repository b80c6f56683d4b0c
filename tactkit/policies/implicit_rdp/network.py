"""ImplicitRDP's network: one transformer diffusion policy over slow and fast tokens.

Tokens (all ``d_model`` wide):

* **slow**: one per observation step, the shared observation encoder's features of that step
  (images + proprioception), projected, plus a learned position; computed once per plan;
* **fast**: one per chunk step, the fast signal (wrench or tactile embedding) of that step
  through a GRU (causal by construction), projected, plus a learned position;
* **action**: one per chunk step, the noisy action (and auxiliary) vector, projected, plus a
  learned position and the diffusion-step embedding.

An encoder (``n_cond_layers``) runs over ``[slow, fast]`` with a mask: slow tokens see slow
tokens, fast token ``i`` sees the slow tokens and fast tokens ``<= i``. The decoder
(``n_layers``) runs over the action tokens: causal self-attention (action ``j`` sees actions
``<= j``) and cross-attention to the encoder output where action ``j`` sees every slow token
and the fast tokens ``<= j``. So nothing at chunk step ``j`` depends on a fast signal after
``j``, through any layer or DDIM step (DDIM updates each position from its own prediction).

The diffusion step enters only the action tokens, so the encoder output and the decoder's
cross-attention keys/values are computed once per denoise, not once per DDIM step.

Denoised target: the normalised action chunk, plus (``irdp.aux_target``) the virtual target
``x + K^-1 f`` of every arm in the pose action's normalised xyz units (or the raw force in the
wrench's), weighted by ``irdp.aux_weight`` in the loss and dropped at inference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tactkit.policies.config import PolicyConfig
from tactkit.policies.diffusion_utils import make_scheduler
from tactkit.policies.features import FeatureCodec
from tactkit.policies.implicit_rdp.virtual_target import (
    arm_of,
    aux_keys,
    force_sources,
    stiffness_for,
)
from tactkit.policies.networks import ObservationEncoder
from tactkit.policies.networks.unet1d import SinusoidalPosEmb


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, dropout: float) -> torch.Tensor:
    """``q [B, h, N, dh]`` over ``k, v [B, h, M, dh]``; ``mask [N, M]`` additive (0 or -inf)."""
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
    b, h, n, dh = y.shape
    return y.transpose(1, 2).reshape(b, n, h * dh)


class SelfAttention(nn.Module):
    def __init__(self, d: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        return self.out(_attend(q, k, v, mask, self.dropout if self.training else 0.0))


class CrossAttention(nn.Module):
    """Attention to a memory whose keys/values are computed once and reused (every DDIM step)."""

    def __init__(self, d: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.q = nn.Linear(d, d)
        self.kv = nn.Linear(d, 2 * d)
        self.out = nn.Linear(d, d)
        self.dropout = dropout

    def keys_values(self, mem: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``mem [B, M, d]`` -> keys, values ``[B, heads, M, d / heads]``."""
        b, m, d = mem.shape
        k, v = self.kv(mem).view(b, m, 2, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        return k, v

    def forward(self, x: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q = self.q(x).view(b, n, self.n_heads, d // self.n_heads).transpose(1, 2)
        return self.out(_attend(q, *kv, mask, self.dropout if self.training else 0.0))


def _ff(d: int, mult: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d, mult * d), nn.SiLU(), nn.Dropout(dropout), nn.Linear(mult * d, d))


class EncoderLayer(nn.Module):
    def __init__(self, d: int, n_heads: int, mult: int, dropout: float) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = SelfAttention(d, n_heads, dropout)
        self.ff = _ff(d, mult, dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), mask)
        return x + self.ff(self.ln2(x))


class DecoderLayer(nn.Module):
    def __init__(self, d: int, n_heads: int, mult: int, dropout: float) -> None:
        super().__init__()
        self.ln1, self.ln2, self.ln3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.self_attn = SelfAttention(d, n_heads, dropout)
        self.cross_attn = CrossAttention(d, n_heads, dropout)
        self.ff = _ff(d, mult, dropout)

    def forward(
        self, x: torch.Tensor, mem_kv: tuple[torch.Tensor, torch.Tensor], self_mask: torch.Tensor, cross_mask: torch.Tensor
    ) -> torch.Tensor:
        x = x + self.self_attn(self.ln1(x), self_mask)
        x = x + self.cross_attn(self.ln2(x), mem_kv, cross_mask)
        return x + self.ff(self.ln3(x))


def _additive(allowed: torch.Tensor) -> torch.Tensor:
    """Boolean "may attend" mask -> additive float mask (0 / -inf): no conversion per call."""
    return torch.zeros(allowed.shape).masked_fill(~allowed, float("-inf"))


class ImplicitRDPModel(nn.Module):
    def __init__(self, cfg: PolicyConfig, codec: FeatureCodec) -> None:
        super().__init__()
        ic = cfg.irdp
        self.cfg = cfg
        self.codec = codec
        if not cfg.fast_keys:
            raise ValueError("ImplicitRDP needs fast_keys (the wrench or a tactile key, sampled over the chunk)")
        if not cfg.obs_keys:
            raise ValueError("ImplicitRDP needs obs_keys (its slow tokens: images and/or proprioception)")
        sampled = set(cfg.fast_keys) | set(cfg.target_keys)
        missing = [k for k in aux_keys(cfg) if k not in sampled]
        if missing:
            raise ValueError(
                f"irdp.aux_target={ic.aux_target} needs {missing} over the whole horizon: add them to target_keys "
                f"(tactkit train does this itself) or set irdp.aux_target=none"
            )
        self.horizon = cfg.horizon
        self.n_obs = cfg.n_obs_steps
        self.fast_delay = cfg.fast_delay_steps
        if self.fast_delay < 0:
            raise ValueError(f"fast_delay_steps must be >= 0, got {self.fast_delay}")
        self.action_dim = codec.dim(cfg.action_keys)
        self._aux_sources = force_sources(cfg) if ic.aux_target != "none" else []
        self.aux_dim = 3 * len(self._aux_sources)
        self.out_dim = self.action_dim + self.aux_dim
        self.fast_dim = codec.dim(cfg.fast_keys)
        keep = torch.ones(self.fast_dim)
        if ic.fast_channels is not None:
            if max(ic.fast_channels) >= self.fast_dim:
                raise ValueError(f"irdp.fast_channels {ic.fast_channels}: the fast signal has {self.fast_dim} channels")
            keep = torch.zeros(self.fast_dim)
            keep[list(ic.fast_channels)] = 1.0
        self.register_buffer("fast_keep", keep, persistent=False)
        d = ic.d_model
        self.obs_encoder = ObservationEncoder(
            codec, cfg.obs_keys, cfg.n_obs_steps, tuple(cfg.crop_shape), cfg.resnet_width, cfg.image_feature_dim
        )
        self.slow_proj = nn.Linear(self.obs_encoder.step_dim, d)
        self.slow_pos = nn.Parameter(torch.zeros(1, self.n_obs, d))
        self.fast_gru = nn.GRU(self.fast_dim, ic.fast_hidden, batch_first=True)
        self.fast_proj = nn.Linear(ic.fast_hidden, d)
        self.fast_pos = nn.Parameter(torch.zeros(1, self.horizon, d))
        self.action_in = nn.Linear(self.out_dim, d)
        self.action_pos = nn.Parameter(torch.zeros(1, self.horizon, d))
        self.time_emb = nn.Sequential(SinusoidalPosEmb(d), nn.Linear(d, 4 * d), nn.Mish(), nn.Linear(4 * d, d))
        self.encoder = nn.ModuleList(EncoderLayer(d, ic.n_heads, ic.ff_mult, ic.dropout) for _ in range(ic.n_cond_layers))
        self.memory_ln = nn.LayerNorm(d)
        self.decoder = nn.ModuleList(DecoderLayer(d, ic.n_heads, ic.ff_mult, ic.dropout) for _ in range(ic.n_layers))
        self.out_ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, self.out_dim)
        for p in (self.slow_pos, self.fast_pos, self.action_pos):
            nn.init.normal_(p, std=0.02)
        self.scheduler = make_scheduler(cfg.num_train_timesteps, cfg.prediction_type)
        self._ddim: tuple[int, list[tuple[int, float, float, float, float]]] | None = None
        # masks (True = may attend): nothing at chunk step j sees a fast token after j
        h, to = self.horizon, self.n_obs
        causal = torch.ones(h, h).tril().bool()
        enc = torch.zeros(to + h, to + h, dtype=torch.bool)
        enc[:, :to] = True
        enc[to:, to:] = causal
        self.register_buffer("enc_mask", _additive(enc), persistent=False)
        self.register_buffer("self_mask", _additive(causal), persistent=False)
        self.register_buffer("cross_mask", _additive(enc[to:]), persistent=False)
        self.register_buffer("aux_scale", torch.ones(self.aux_dim), persistent=False)
        self.register_buffer("aux_offset", torch.zeros(self.aux_dim), persistent=False)
        self.register_buffer("inv_stiffness", torch.ones(self.aux_dim), persistent=False)
        for i, (ak, _, wk) in enumerate(self._aux_sources):
            sl = slice(3 * i, 3 * i + 3)
            # virtual target: the pose action's own xyz normalisation (the same space); force: the wrench's
            scale, offset = codec.normalizer.params[ak if ic.aux_target == "virtual_target" else wk]
            self.aux_scale[sl], self.aux_offset[sl] = scale[:3], offset[:3]
            if ic.aux_target == "virtual_target":
                self.inv_stiffness[sl] = 1.0 / torch.tensor(stiffness_for(ic.stiffness, arm_of(ak)))

    # ------------------------------------------------------------------ targets
    def aux_targets(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Normalised auxiliary channels ``[B, horizon, aux_dim]``: per arm the virtual target
        ``x + K^-1 (wrench_sign f)`` (relative to the same anchor as the actions with
        ``relative_actions``), or the raw force."""
        parts = []
        ic = self.cfg.irdp
        for i, (ak, pk, wk) in enumerate(self._aux_sources):
            sl = slice(3 * i, 3 * i + 3)
            f = batch[wk][:, : self.horizon, :3].float()
            if ic.aux_target == "virtual_target":
                x = batch[pk][:, : self.horizon, :3].float()
                y = x + ic.wrench_sign * f * self.inv_stiffness[sl]
                if ak in self.cfg.action_anchors:
                    y = y - batch[pk][:, self.n_obs - 1 : self.n_obs, :3].float()
            else:
                y = f
            parts.append(y * self.aux_scale[sl] + self.aux_offset[sl])
        return torch.cat(parts, dim=-1)

    def targets(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """What is denoised: normalised actions and auxiliary channels ``[B, horizon, out_dim]``."""
        actions = self.codec.encode(batch, self.cfg.action_keys)[:, : self.horizon]
        if not self.aux_dim:
            return actions
        return torch.cat([actions, self.aux_targets(batch)], dim=-1)

    # ------------------------------------------------------------------ tokens
    def slow_tokens(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[B, n_obs_steps, d]`` from the observation window (images, proprioception)."""
        feat = self.obs_encoder(batch).view(-1, self.n_obs, self.obs_encoder.step_dim)
        return self.slow_proj(feat) + self.slow_pos

    def delayed(self, fast: torch.Tensor) -> torch.Tensor:
        """Step ``t`` gets the signal of step ``t - fast_delay_steps`` (the first before the start)."""
        k = min(self.fast_delay, fast.shape[1])
        if k == 0:
            return fast
        return torch.cat([fast[:, :1].expand(-1, k, -1), fast[:, : fast.shape[1] - k]], dim=1)

    def fast_tokens(self, fast: torch.Tensor) -> torch.Tensor:
        """Normalised fast signals ``[B, horizon, F]`` (each chunk step's own) -> ``[B, horizon, d]``."""
        if fast.shape[1:] != (self.horizon, self.fast_dim):
            raise ValueError(f"fast signals must be [B, {self.horizon}, {self.fast_dim}], got {tuple(fast.shape)}")
        if self.cfg.irdp.fast_channels is not None:
            fast = fast * self.fast_keep
        h, _ = self.fast_gru(self.delayed(fast))
        return self.fast_proj(h) + self.fast_pos

    def memory_kv(self, slow: torch.Tensor, fast_tok: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Encoder over ``[slow, fast]``, then every decoder layer's cross-attention keys/values."""
        mem = torch.cat([slow, fast_tok], dim=1)
        for layer in self.encoder:
            mem = layer(mem, self.enc_mask)
        mem = self.memory_ln(mem)
        return [layer.cross_attn.keys_values(mem) for layer in self.decoder]

    def predict(self, x: torch.Tensor, temb: torch.Tensor, mem_kv: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """The decoder: noisy chunk ``[B, horizon, out_dim]`` and the diffusion-step embedding
        ``temb [B or 1, d]`` (:attr:`time_emb`) -> the prediction (the clean chunk or the noise,
        as ``prediction_type``)."""
        h = self.action_in(x) + self.action_pos + temb[:, None]
        for layer, kv in zip(self.decoder, mem_kv):
            h = layer(h, kv, self.self_mask, self.cross_mask)
        return self.head(self.out_ln(h))

    # ------------------------------------------------------------------ training
    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        return self.compute_loss(batch)

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        x0 = self.targets(batch)
        fast = self.codec.encode(batch, self.cfg.fast_keys)[:, : self.horizon]
        p = self.cfg.irdp.fast_dropout
        if p > 0 and self.training:
            held = fast[:, self.n_obs - 1 : self.n_obs].expand(-1, self.horizon - self.n_obs, -1)
            drop = torch.rand(fast.shape[0], 1, 1, device=fast.device) < p
            fast = torch.cat([fast[:, : self.n_obs], torch.where(drop, held, fast[:, self.n_obs :])], dim=1)
        mem_kv = self.memory_kv(self.slow_tokens(batch), self.fast_tokens(fast))
        noise = torch.randn_like(x0)
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (x0.shape[0],), device=x0.device)
        noisy = self.scheduler.add_noise(x0, noise, t)
        target = x0 if self.scheduler.config.prediction_type == "sample" else noise
        err = (self.predict(noisy, self.time_emb(t), mem_kv) - target).pow(2)
        act = err[..., : self.action_dim].mean()
        if not self.aux_dim:
            return act, {"action_mse": float(act.detach())}
        aux = err[..., self.action_dim :].mean()
        loss = act + self.cfg.irdp.aux_weight * aux
        return loss, {"action_mse": float(act.detach()), "aux_mse": float(aux.detach())}

    # ------------------------------------------------------------------ inference
    def ddim_schedule(self) -> list[tuple[int, float, float, float, float]]:
        """``(t, sqrt(a_t), sqrt(1 - a_t), sqrt(a_prev), sqrt(1 - a_prev))`` per inference step of
        the diffusers DDIM schedule (deterministic, eta = 0), built once per step count."""
        n = self.cfg.num_inference_steps
        if self._ddim is None or self._ddim[0] != n:
            s = self.scheduler
            s.set_timesteps(n)
            ac = s.alphas_cumprod.double()
            jump = s.config.num_train_timesteps // n
            rows = []
            for t in s.timesteps.tolist():
                a = float(ac[t])
                ap = float(ac[t - jump]) if t - jump >= 0 else float(s.final_alpha_cumprod)
                rows.append((int(t), a**0.5, (1 - a) ** 0.5, ap**0.5, (1 - ap) ** 0.5))
            self._ddim = (n, rows)
        return self._ddim[1]

    def ddim_step(self, pred: torch.Tensor, x: torch.Tensor, coefs: tuple[int, float, float, float, float]) -> torch.Tensor:
        """One DDIM step (diffusers' ``DDIMScheduler.step`` with eta = 0, clipped x0), with the
        coefficients as plain floats: the scheduler's own step costs ~60 us of bookkeeping."""
        _, sa, sb, sap, sbp = coefs
        if self.scheduler.config.prediction_type == "sample":
            x0, eps = pred, (x - sa * pred) / sb
        else:
            x0, eps = (x - sb * pred) / sa, pred
        if self.scheduler.config.clip_sample:
            r = self.scheduler.config.clip_sample_range
            x0 = x0.clamp(-r, r)
        return sap * x0 + sbp * eps

    @torch.no_grad()
    def denoise(self, slow: torch.Tensor, fast: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """DDIM (deterministic) from ``noise [B, horizon, out_dim]`` given the slow tokens and the
        chunk's normalised fast signals ``[B, horizon, F]`` -> normalised chunk ``[B, horizon, out_dim]``.
        Step ``j`` of the result depends only on ``noise[:, :j+1]`` and ``fast[:, :j+1]``."""
        mem_kv = self.memory_kv(slow, self.fast_tokens(fast))
        schedule = self.ddim_schedule()
        temb = self.time_emb(torch.tensor([row[0] for row in schedule], device=noise.device))
        x = noise
        for i, coefs in enumerate(schedule):
            x = self.ddim_step(self.predict(x, temb[i : i + 1], mem_kv), x, coefs)
        return x

    @torch.no_grad()
    def sample(self, batch: dict[str, torch.Tensor], fast: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The full re-denoise: observation window -> slow tokens -> :meth:`denoise`."""
        return self.denoise(self.slow_tokens(batch), fast, noise)
