"""``tactkit train at|ldp|rdp|dp --data PATH [key=value ...] [--out DIR] [--resume]``."""

from __future__ import annotations

import argparse

KINDS = ("at", "ldp", "rdp", "dp", "beast", "implicit_rdp")


def _add_options(p: argparse.ArgumentParser, defaults: bool) -> None:
    d = None if not defaults else argparse.SUPPRESS
    p.add_argument("--data", default=d, help="episode store (or replay buffer) path or URL (required)")
    p.add_argument("--out", default=d, help="run directory (default runs/<policy>)")
    p.add_argument("--config", default=d, help="configs/policy name or YAML path (default: the policy's own)")
    p.add_argument("--resume", action="store_true", default=d, help="continue the run in --out from its train_state")
    p.add_argument("--no-progress", action="store_true", default=d, help="no progress bar")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a policy (RDP tokenizer/latent diffusion, Diffusion Policy) on an episode store",
        description=(
            "Train a policy on an episode store or replay buffer. 'rdp' trains the asymmetric "
            "tokenizer (<out>/at) and then the latent diffusion policy (<out>/ldp). Settings come "
            "from configs/policy/<policy>.yaml, the size overlay configs/policy/size_<size>.yaml "
            "(size=tiny|small|paper) and KEY=VALUE overrides (for rdp, at.KEY=V / ldp.KEY=V reach "
            "one stage). Options and overrides may come in any order after the policy. "
            "Multi-GPU: accelerate launch --multi_gpu -m tactkit.cli.main train ..."
        ),
    )
    p.add_argument("policy", choices=KINDS, help="at, ldp, rdp (= at then ldp), dp, beast or implicit_rdp")
    _add_options(p, defaults=False)
    p.add_argument("rest", nargs=argparse.REMAINDER, metavar="KEY=VALUE", help="config overrides, e.g. num_steps=500 size=tiny")
    p.set_defaults(func=_train)


def _parse_rest(args: argparse.Namespace) -> argparse.Namespace:
    """Options after the policy arrive in ``rest`` (argparse cannot interleave positionals)."""
    sub = argparse.ArgumentParser(prog="tactkit train", add_help=False)
    _add_options(sub, defaults=True)
    sub.add_argument("overrides", nargs="*")
    extra = sub.parse_intermixed_args(args.rest)
    for k, v in vars(extra).items():
        setattr(args, k, v)
    if not getattr(args, "overrides", None):
        args.overrides = []
    bad = [o for o in args.overrides if "=" not in o]
    if bad:
        raise ValueError(f"unexpected argument {bad[0]!r}: overrides are KEY=VALUE")
    if not args.data:
        raise ValueError("--data PATH is required (an episode store or replay buffer)")
    return args


def _train(args: argparse.Namespace) -> int:
    args = _parse_rest(args)
    from tactkit.policies.pipeline import train

    out = args.out or f"runs/{args.policy}"
    results = train(
        args.policy, args.data, args.overrides, out, resume=bool(args.resume),
        progress=not args.no_progress, config=args.config,
    )  # fmt: skip
    for stage, r in results.items():
        val = f", val loss {r.val_loss:.4f}" if r.val_loss is not None else ""
        print(
            f"{stage}: {r.steps} steps, final loss {r.final_loss:.4f}{val}, "
            f"{r.samples_per_s:.0f} samples/s -> {r.out_dir / 'checkpoint'}"
        )
    return 0
