"""``tactkit train at|ldp|rdp|dp --data PATH [key=value ...] [--out DIR] [--resume]``."""

from __future__ import annotations

import argparse

KINDS = ("at", "ldp", "rdp", "dp")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a policy (RDP tokenizer/latent diffusion, Diffusion Policy) on an episode store",
        description=(
            "Train a policy on an episode store or replay buffer. 'rdp' trains the asymmetric "
            "tokenizer (<out>/at) and then the latent diffusion policy (<out>/ldp). Settings come "
            "from configs/policy/<policy>.yaml, the size overlay configs/policy/size_<size>.yaml "
            "(size=tiny|small|paper) and key=value overrides (for rdp, at.KEY=V / ldp.KEY=V reach "
            "one stage). Multi-GPU: accelerate launch --multi_gpu -m tactkit.cli.main train ..."
        ),
    )
    p.add_argument("policy", choices=KINDS, help="at, ldp, rdp (= at then ldp) or dp")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. num_steps=500 size=tiny")
    p.add_argument("--data", required=True, help="episode store (or replay buffer) path or URL")
    p.add_argument("--out", default=None, help="run directory (default runs/<policy>)")
    p.add_argument("--config", default=None, help="configs/policy name or YAML path (default: the policy's own)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its train_state")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    from tactkit.policies.pipeline import train

    out = args.out or f"runs/{args.policy}"
    results = train(args.policy, args.data, args.overrides, out, resume=args.resume, progress=not args.no_progress, config=args.config)
    for stage, r in results.items():
        val = f", val loss {r.val_loss:.4f}" if r.val_loss is not None else ""
        print(
            f"{stage}: {r.steps} steps, final loss {r.final_loss:.4f}{val}, "
            f"{r.samples_per_s:.0f} samples/s -> {r.out_dir / 'checkpoint'}"
        )
    return 0
