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
    p.add_argument("--select", default=d, metavar="FILTER",
                   help="episodes to train on: 'success' (operator's verdict), 'score>=0.8' (task score), "
                        "'0,2,5-9'; same as the override episodes=FILTER")
    p.add_argument("--print-config", action="store_true", default=d,
                   help="print the resolved config (keys matched against --data when given) and exit")
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
    p.set_defaults(func=_train, _parser=p)


def _parse_rest(args: argparse.Namespace) -> argparse.Namespace:
    """Options after the policy arrive in ``rest`` (argparse cannot interleave positionals)."""
    if "-h" in args.rest or "--help" in args.rest:
        args._parser.print_help()
        raise SystemExit(0)
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
    if not args.data and not args.print_config:
        raise ValueError("--data PATH is required (an episode store or replay buffer)")
    if args.select:
        import json

        args.overrides.append(f"episodes={json.dumps(args.select)}")  # a YAML string, even for "3"
    return args


#: validation split of `tactkit train` when neither the config nor the overrides set val_ratio
DEFAULT_VAL_RATIO = 0.1


def _print_config(args: argparse.Namespace) -> int:
    from tactkit.policies.pipeline import _split_overrides, describe_config, resolved_config

    if args.policy == "rdp":
        if args.config is not None:
            raise ValueError("rdp uses the at and ldp configs; pass per-stage overrides (at.KEY=V, ldp.KEY=V)")
        for stage in ("at", "ldp"):
            cfg = resolved_config(stage, args.data, _split_overrides(args.overrides, stage))
            print(f"# {stage}\n{describe_config(cfg)}")
        return 0
    print(describe_config(resolved_config(args.policy, args.data, args.overrides, args.config)))
    return 0


def _train(args: argparse.Namespace) -> int:
    import time

    args = _parse_rest(args)
    if args.print_config:
        return _print_config(args)
    from tactkit.policies.pipeline import train

    out = args.out or f"runs/{args.policy}"
    t0 = time.monotonic()
    results = train(
        args.policy, args.data, args.overrides, out, resume=bool(args.resume),
        progress=not args.no_progress, config=args.config, echo=print, default_val_ratio=DEFAULT_VAL_RATIO,
    )  # fmt: skip
    parts = []
    for stage, r in results.items():
        val = f", val loss {r.val_loss:.4f}" if r.val_loss is not None else ""
        parts.append(f"{stage} {r.steps} steps, loss {r.final_loss:.4f}{val}, {r.samples_per_s:.0f} samples/s")
    final = list(results.values())[-1].out_dir / "checkpoint"
    print(f"trained {args.policy} in {time.monotonic() - t0:.0f} s: {'; '.join(parts)} -> {final}")
    return 0
