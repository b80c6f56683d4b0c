"""ImplicitRDP inference latency on this CPU: fast step, sustained fast-loop rate, plan vs DP.

1. **Fast step** (``ImplicitRDPPolicy.step``: the chunk re-denoised with the fast signals so
   far, the plan's noise and slow tokens): p50/p99 over calls that each bring a new wrench
   (no call is answered from the per-step cache), cycling through the chunk's steps, as wall
   time and as the calling thread's CPU time (the cost on an uncontended core). Beside
   it, the full re-denoise it equals bit for bit (observation window -> slow tokens ->
   denoise), and one decoder pass over the whole chunk vs over a single action token (what a
   key/value-cached incremental decoder would cost per DDIM step: the bound on what skipping
   the already-executed steps could save).
2. **Sustained fast-loop rate**: ``step`` driven by a :class:`~tactkit.rate.RateLoop` at
   increasing rates for ``--seconds`` each, a new (precomputed) plan every 0.25 s as the
   controller's slow process would deliver; a rate is sustained when <= 1 % of its ticks
   are missed. Baseline at each rate, just before: the same loop around Diffusion Policy's
   step (a chunk lookup), whose misses are the machine's own scheduling jitter. The slow
   policy runs in its own process in the controller, so it is not timed here. Also the
   step's CPU time with 4 instead of 8 DDIM steps.
3. **Plan latency** vs Diffusion Policy, same observation keys and encoder, 8 DDIM steps,
   interleaved so load on a shared machine hits both alike.

Both policies are trained for two steps on a synthetic store (real checkpoints, normalisers;
random-ish weights time the same as trained ones). Run::

    .venv/bin/python benchmarks/implicit_rdp_latency.py --threads 1 [--size tiny] [--iters 300]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from policy_latency import timeit  # benchmarks/ is on sys.path when run as a script

from tactkit.sysinfo import cpu_model

WRENCH = "observation.wrench"


def ms(samples: list[float]) -> tuple[float, float, float]:
    a = np.asarray(samples) * 1e3
    return float(np.percentile(a, 50)), float(np.percentile(a, 99)), float(a.max())


def sustained(policy, plans: list, signals: np.ndarray, rate_hz: float, seconds: float) -> tuple[int, int, float]:
    """(ticks, missed, p99 step ms) of ``step`` at ``rate_hz`` for ``seconds``."""
    from tactkit.rate import RateLoop

    loop = RateLoop(rate_hz)
    n = int(seconds * rate_hz)
    per_plan = max(1, int(0.25 * rate_hz))
    costs = []
    for k in range(n):
        loop.wait()
        plan = plans[(k // per_plan) % len(plans)]
        t = plan.t0 + ((k % per_plan) / rate_hz)
        t0 = time.perf_counter()
        policy.step(plan, t, {WRENCH: signals[k % len(signals)]})
        costs.append(time.perf_counter() - t0)
    st = loop.stats()
    return st.ticks, st.missed, ms(costs)[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="tiny")
    ap.add_argument("--iters", type=int, default=300, help="timed fast steps")
    ap.add_argument("--plan-iters", type=int, default=40, help="timed plans per policy (interleaved)")
    ap.add_argument("--seconds", type=float, default=5.0, help="per rate in the sustained-rate test")
    ap.add_argument("--rates", default="24,30,40,60,90,120,240", help="fast-loop rates to try (Hz)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from tactkit.policies.inference import load_policy
    from tactkit.policies.pipeline import train
    from tactkit.policies.synthetic import make_synthetic_store
    from tactkit.store import EpisodeStore, align

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = root / "store.zarr"
        make_synthetic_store(store, episodes=2, seconds=2.0, image_hw=(64, 64))
        obs = "obs_keys=[observation.images.wrist,observation.state.tcp_pose,observation.state.gripper_width]"
        common = [f"size={args.size}", "num_steps=2", "warmup_steps=1", "batch_size=4", obs]
        train("implicit_rdp", store, [*common, "irdp.stiffness=[1500,1500,2500]"], root / "irdp", progress=False)
        train("dp", store, common, root / "dp", progress=False)
        irdp, dp = load_policy(root / "irdp"), load_policy(root / "dp")
        rb = align(EpisodeStore.open(str(store)), fps=24.0)
        data = {k: np.asarray(rb.data[k][:]) for k in rb.data.keys()}

        def window(i: int) -> dict[str, np.ndarray]:
            w = {k: data[k][i - 1 : i + 1] for k in irdp.obs_keys}
            w["timestamp"] = data["timestamp"][i - 1 : i + 1]
            return w

        rng = np.random.default_rng(0)
        signals = (data[WRENCH][rng.integers(0, len(data[WRENCH]), 4096)]
                   + rng.normal(0, 0.5, (4096, 6))).astype(np.float32)  # fmt: skip
        plans = [irdp.plan(window(i)) for i in range(10, 40, 3)]
        n_steps = plans[0].horizon
        m = irdp.model
        rows = []

        # ---- 1. fast step: every call a new signal; each plan is stepped once through its
        # chunk, then replaced by a fresh one (plans are made outside the timed calls)
        times, cpu = [], []
        for j in range(args.iters + 5):
            idx = (j // n_steps) % len(plans)
            if j % n_steps == 0:
                plans[idx] = irdp.plan(window(10 + (j // n_steps) % 30))
            plan = plans[idx]
            c0, t0 = time.thread_time(), time.perf_counter()
            irdp.step(plan, plan.t0 + (j % n_steps) * plan.dt, {WRENCH: signals[j % len(signals)]})
            if j >= 5:  # warm-up
                times.append(time.perf_counter() - t0)
                cpu.append(time.thread_time() - c0)
        s50, s99, smax = ms(times)
        c50, c99, _ = ms(cpu)
        rows.append(("fast: ImplicitRDPPolicy.step (re-denoise, new wrench each call)", s50, s99, f"max {smax:.2f} ms"))
        rows.append(("fast: the same, CPU time of the calling thread", c50, c99,
                     f"cost on an uncontended core: 1 / p99 = {1e3 / c99:.0f} Hz"))

        w = window(20)
        batch = irdp.obs_batch(w)
        fast = torch.zeros(1, m.horizon, m.fast_dim)
        noise = plans[0].state.noise
        with torch.inference_mode():
            full = timeit(lambda: m.sample(irdp.obs_batch(w), fast, noise), args.iters // 3)
            slow = m.slow_tokens(batch)
            mem_kv = m.memory_kv(slow, m.fast_tokens(fast))
            x = torch.randn(1, m.horizon, m.out_dim)
            t = torch.tensor(50)
            temb = m.time_emb(t.reshape(1))
            dec_all = timeit(lambda: m.predict(x, temb, mem_kv), args.iters)
            one = _single_token_decoder(m, mem_kv)
            dec_one = timeit(lambda: one(x[:, :1], temb), args.iters)
        f50, f99, _ = ms(full)
        a50, a99, _ = ms(dec_all)
        o50, o99, _ = ms(dec_one)
        rows.append(("fast: full re-denoise from the window (the reference it equals)", f50, f99,
                     f"step / full p50 = {s50 / f50:.2f}"))
        rows.append((f"one decoder pass, all {m.horizon} action tokens", a50, a99, ""))
        rows.append(("one decoder pass, 1 action token (KV-cache bound, not used)", o50, o99,
                     f"1 / {m.horizon} tokens p50 = {o50 / a50:.2f}"))

        # ---- 2. sustained fast-loop rate, beside Diffusion Policy's step (it indexes the chunk:
        # microseconds) at the same rate as the baseline: its misses are this machine's own jitter
        rate_rows = []
        best = 0.0
        dp_plans = [dp.plan(window(i)) for i in range(10, 40, 3)]
        for r in [float(x) for x in args.rates.split(",")]:
            b_ticks, b_missed, _ = sustained(dp, dp_plans, signals, r, args.seconds)
            fresh = [irdp.plan(window(i)) for i in range(10, 40, 3)]
            ticks, missed, p99 = sustained(irdp, fresh, signals, r, args.seconds)
            ok = missed <= 0.01 * max(ticks, 1)
            rate_rows.append((r, ticks, missed, p99, ok, b_missed))
            if ok:
                best = max(best, r)

        # ---- 2b. the same step with 4 DDIM steps instead of 8 (load_policy(..., num_inference_steps=4))
        irdp4 = load_policy(root / "irdp", num_inference_steps=4)
        plans4 = [irdp4.plan(window(i)) for i in range(10, 40, 3)]
        cpu4 = []
        for j in range(args.iters):
            plan = plans4[(j // n_steps) % len(plans4)]
            c0 = time.thread_time()
            irdp4.step(plan, plan.t0 + (j % n_steps) * plan.dt, {WRENCH: signals[j % len(signals)]})
            cpu4.append(time.thread_time() - c0)
            if j % n_steps == n_steps - 1:
                plans4[(j // n_steps) % len(plans4)] = irdp4.plan(window(10 + (j // n_steps) % 30))
        q50, q99, _ = ms(cpu4)
        rows.insert(2, ("fast: step with 4 DDIM steps (num_inference_steps=4), CPU time", q50, q99,
                        f"1 / p99 = {1e3 / q99:.0f} Hz"))

        # ---- 3. plan latency vs DP, interleaved
        i_t, d_t = [], []
        for _ in range(4):
            i_t += timeit(lambda: irdp.plan(w), args.plan_iters // 4, warmup=1)
            d_t += timeit(lambda: dp.plan(w), args.plan_iters // 4, warmup=1)
        p50, p99, _ = ms(i_t)
        d50, d99, _ = ms(d_t)
        rows.append((f"slow: ImplicitRDP plan, {irdp.cfg.num_inference_steps} DDIM steps", p50, p99, ""))
        rows.append((f"slow: Diffusion Policy plan, {dp.cfg.num_inference_steps} DDIM steps, U-Net {dp.cfg.down_dims}",
                     d50, d99, f"ImplicitRDP / DP p50 = {p50 / d50:.2f}"))
        n_irdp = sum(p.numel() for p in irdp.model.parameters())
        n_dp = sum(p.numel() for p in dp.model.parameters())
        ic = irdp.cfg.irdp

    print(f"## ImplicitRDP latency ({args.size} size)\n")
    print(f"machine: {os.cpu_count()} CPUs (`nproc`), {cpu_model()}; torch {torch.__version__}, "
          f"{args.threads} intra-op thread(s); {args.iters} fast steps, {args.plan_iters} plans per policy\n")
    print(f"ImplicitRDP: d_model {ic.d_model}, {ic.n_layers} decoder + {ic.n_cond_layers} encoder layers, GRU "
          f"{ic.fast_hidden}, horizon {irdp.cfg.horizon}, aux {ic.aux_target}; {n_irdp / 1e6:.2f} M parameters "
          f"(DP {n_dp / 1e6:.2f} M); obs: 64x64 wrist image -> crop {irdp.cfg.crop_shape}, TCP pose, gripper; fast: wrench\n")
    print("| measurement | p50 (ms) | p99 (ms) | note |")
    print("|---|---:|---:|---|")
    for name, a, b, note in rows:
        print(f"| {name} | {a:.3f} | {b:.3f} | {note} |")
    print(f"\nSustained fast loop ({args.seconds:.0f} s per rate, a new plan every 0.25 s; sustained = <= 1 % missed ticks):\n")
    print("| rate (Hz) | ticks | missed | step p99 (ms) | sustained | baseline (DP step) missed |")
    print("|---:|---:|---:|---:|---|---:|")
    for r, ticks, missed, p99, ok, b_missed in rate_rows:
        print(f"| {r:.0f} | {ticks} | {missed} | {p99:.2f} | {'yes' if ok else 'no'} | {b_missed} |")
    print(f"\nhighest sustained fast-loop rate: **{best:.0f} Hz** (target 60 Hz)")
    print(f"fast step p50 **{s50:.2f} ms**, p99 **{s99:.2f} ms** (CPU time p50 {c50:.2f}, p99 {c99:.2f} ms); "
          f"plan ImplicitRDP / DP (p50): **{p50 / d50:.2f}**")
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


def _single_token_decoder(m, mem_kv):
    """The decoder for one action token against the full memory: what each DDIM step would cost
    per fast step if the already-executed steps' keys/values were cached (timing only)."""
    self_mask = torch.ones(1, 1, dtype=torch.bool)
    cross_mask = m.cross_mask[:1]

    def run(x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = m.action_in(x) + m.action_pos[:, :1] + temb[:, None]
        for layer, kv in zip(m.decoder, mem_kv):
            h = layer(h, kv, self_mask, cross_mask)
        return m.head(m.out_ln(h))

    return run


if __name__ == "__main__":
    main()
