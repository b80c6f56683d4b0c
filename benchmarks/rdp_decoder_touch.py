"""Does RDP's fast decoder use touch? An offline diagnostic on recorded after-contact chunks.

For the after-contact windows of a demo store (held-out demos are best: record them with
another ``--seed``) whose commanded height moves within the chunk, decode each chunk four ways
and report the height error (mm) along the chunk: with the tokenizer encoder's latent of the
true chunk or the latent the trained planner samples from the observations, and with every
step's own fast signal or the signal held at plan time. A decoder that reacts to touch has a
smaller error with every step's signal than with it held, when the latent is the planner's
(docs/notes/rdp-fast-loop.md)::

    .venv/bin/python benchmarks/rdp_decoder_touch.py --policy runs/demo/rdp/ldp --data runs/demo/demos.zarr
"""

from __future__ import annotations

import argparse

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policy", required=True, help="an RDP run's ldp checkpoint directory")
    ap.add_argument("--data", required=True, help="an episode store with after_contact episodes")
    ap.add_argument("--every", type=int, default=5, help="take every k-th window (default 5)")
    ap.add_argument("--min-move-mm", type=float, default=1.5, help="keep chunks whose height moves at least this")
    args = ap.parse_args(argv)

    import torch

    from tactkit.policies.checkpoint import load_checkpoint
    from tactkit.policies.data import WindowDataset, load_training_data
    from tactkit.store import EpisodeStore
    from tactkit.sysinfo import machine_summary

    torch.set_num_threads(1)
    ck = load_checkpoint(args.policy)
    if ck.cfg.policy != "ldp":
        raise SystemExit(f"{args.policy}: a {ck.cfg.policy!r} checkpoint; pass an RDP run's ldp directory")
    model, cfg, codec = ck.model.eval(), ck.cfg, ck.codec
    tok = model.tokenizer
    store = EpisodeStore.open(args.data)
    after = np.array([store.episode(i).metadata.get("perturb") == "after_contact" for i in range(store.num_episodes)])
    if not after.any():
        raise SystemExit(f"{args.data}: no after_contact episodes")
    data = load_training_data(args.data, cfg, normalizer=codec.normalizer, pcas=ck.pcas)
    ds = WindowDataset(data, cfg, after)
    batch = torch.utils.data.default_collate([ds[int(i)] for i in range(0, len(ds), args.every)])
    start = cfg.n_obs_steps - 1 + cfg.latency_steps
    with torch.no_grad():
        acts = codec.encode(batch, tok.action_keys)[:, : tok.horizon]
        fast = codec.encode(batch, tok.fast_keys)[:, : tok.horizon]
        held = torch.cat([fast[:, :start], fast[:, start - 1: start].expand(-1, tok.horizon - start, -1)], 1)
        mm = 1e3 / codec.normalizer.params[tok.action_keys[0]][0][2].item()  # normalised z -> mm
        z = acts[:, :, 2] * mm
        move = z[:, start:].amax(1) - z[:, start:].amin(1)
        sel = (move > args.min_move_mm) & (move < 10.0)
        latents = {"encoder's": tok.encode(acts)[0], "planner's": model.sample_latent(batch, torch.Generator().manual_seed(0))}
        print(f"machine: {machine_summary()}")
        print(f"{int(sel.sum())} after-contact chunks of {len(sel)}; height error (mm) at chunk steps {start}, {start + 3}, ...\n")
        print("| latent | touch | error along the chunk |\n|---|---|---|")
        for lname, lat in latents.items():
            for fname, f in (("every step's", fast), ("held at plan time", held)):
                rec = tok.decode(tok.latent_cond(lat), tok.delayed(f))[0]
                e = ((rec - acts)[sel][:, :, 2].abs() * mm).mean(0).numpy()[start::3]
                print(f"| {lname} | {fname} | {' '.join(f'{v:.1f}' for v in e)} |")
        true_move = (z[sel] - z[sel][:, start:start + 1]).abs().mean(0).numpy()[start::3]
        print(f"| (how far the height moves) | | {' '.join(f'{v:.1f}' for v in true_move)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
