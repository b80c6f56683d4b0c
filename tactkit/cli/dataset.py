"""``tactkit dataset``: inspect, align, verify and recover episode stores.

    tactkit dataset info PATH [--json]        episode store or replay buffer summary
    tactkit dataset align SRC DST --fps HZ [--zarr-format 2] [--keys K ...] [--workers N]
    tactkit dataset verify PATH [--quick]     check every chunk, count and digest (exit 1 on problems)
    tactkit dataset recover PATH [--discard]  commit (or delete) interrupted episodes
    tactkit dataset stats PATH [--json]       normaliser statistics of a replay buffer
    tactkit dataset export STORE DST --format lerobot [--fps HZ] [--episodes LIST]
    tactkit dataset import SRC DST --format lerobot|dp [--keys SRC=DST ...]
    tactkit dataset view STORE [--episode N] [--save FILE.rrd | --mp4 FILE.mp4]
    tactkit dataset cache [--clear] [--json]  cached training views (location, size, source)
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("dataset", help="inspect, align, verify and recover episode stores")
    sub = p.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)

    info = sub.add_parser("info", help="summary of an episode store or replay buffer")
    info.add_argument("path", help="store directory or fsspec URL")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=_info)

    align = sub.add_parser("align", help="write the training view (diffusion_policy replay-buffer layout)")
    align.add_argument("src", help="episode store")
    align.add_argument("dst", help="output replay buffer")
    align.add_argument("--fps", type=float, required=True, help="control grid rate (Hz)")
    align.add_argument("--zarr-format", type=int, choices=(2, 3), default=3,
                       help="2: Blosc everywhere, opens in diffusion_policy/RDP unchanged")
    align.add_argument("--keys", nargs="+", default=None, metavar="KEY",
                       help="streams to include, names or glob patterns as in the policy configs "
                            "(observation.tactile.*.marker_offset); default: every stream with samples")
    align.add_argument("--select", default=None, metavar="FILTER",
                       help="episodes to align: 'success' (the operator's verdict), 'score>=0.8' (the task's "
                            "score), indices '0,2,5-9'; combine with ',' (all must hold)")
    align.add_argument("--interpolate", nargs="*", default=None, metavar="GLOB",
                       help="float streams to interpolate linearly (default: observation.state.*)")
    align.add_argument("--image-quality", type=int, default=None,
                       help="JPEG quality of images in a format-3 view (default: the store's)")
    align.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    align.add_argument("--workers", type=int, default=1, metavar="N",
                       help="processes reading, checking and decoding episodes in parallel (default 1)")
    align.set_defaults(func=_align)

    verify = sub.add_parser("verify", help="check every committed episode: chunks, counts, digests",
                            description="Read every chunk of every committed episode (checksums, "
                            "decoding), compare sample counts and content digests with the commit "
                            "records, and name episode, stream and chunk of each problem (exit 1). "
                            "Rebuilds the episode index when it is stale.")
    verify.add_argument("path")
    verify.add_argument("--quick", action="store_true",
                        help="existence and count checks only: no chunk is read")
    verify.set_defaults(func=_verify)

    recover = sub.add_parser("recover", help="commit the flushed part of interrupted episodes")
    recover.add_argument("path")
    recover.add_argument("--discard", action="store_true", help="delete interrupted episodes instead")
    recover.set_defaults(func=_recover)

    stats = sub.add_parser("stats", help="normaliser statistics (min/max/mean/std/q01/q99) of a replay buffer")
    stats.add_argument("path")
    stats.add_argument("--keys", nargs="+", default=None)
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(func=_stats)

    register_interop(sub)

    cache = sub.add_parser("cache", help="cached training views: list them, or --clear them",
                           description="Training aligns a store once per content, fps and keys and "
                           "keeps the view in $TACTKIT_CACHE_DIR/views (default "
                           "~/.cache/tactkit/views); a changed store gets a new view.")
    cache.add_argument("--clear", action="store_true", help="delete every cached view")
    cache.add_argument("--json", action="store_true")
    cache.set_defaults(func=_cache)


def _human_bytes(n: int | None) -> str:
    if n is None:
        return "n/a"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return str(n)


def episode_rows(store) -> list[dict[str, Any]]:
    """One row per committed episode: index, name, state samples, duration, the operator's
    verdict, the task's score (where a simulation scored it) and the scene seed."""
    from tactkit.store.selection import episode_score, episode_seed, episode_verdict

    rows = []
    for ep in store.episodes():
        md = ep.metadata
        state = [k for k in ep.keys if k.startswith("observation.state.") and k.endswith("tcp_pose")]
        rows.append({
            "index": ep.index, "name": ep.name, "task": ep.task,
            "state_samples": ep.length(state[0]) if state else None,
            "duration_s": round(ep.duration, 3), "operator_verdict": episode_verdict(md),
            "task_score": episode_score(md), "task_success": md.get("sim_success", md.get("task_success")),
            "seed": episode_seed(md),
        })
    return rows


def episodes_text(rows: list[dict[str, Any]]) -> str:
    """The per-episode table of ``tactkit dataset info``."""
    def cell(v: Any, fmt: str = "") -> str:
        return "-" if v is None else format(v, fmt)

    lines = [f"  {'#':>4}  {'episode':<10} {'task':<8} {'state samples':>13} {'duration':>9}  "
             f"{'operator verdict':<16} {'task score':>10}  {'seed':>6}"]
    for r in rows:
        score = cell(r["task_score"], ".3f")
        if r["task_success"] is not None and r["task_score"] is not None:
            score += " *" if r["task_success"] else "  "
        lines.append(f"  {r['index']:>4}  {r['name']:<10} {r['task'] or '-':<8} {cell(r['state_samples']):>13} "
                     f"{r['duration_s']:>8.1f}s  {cell(r['operator_verdict']):<16} {score:>10}  {cell(r['seed']):>6}")
    if any(r["task_success"] for r in rows):
        lines.append("  (* the task's own success threshold was met)")
    return "\n".join(lines)


def store_summary_text(summary: dict[str, Any], rows: list[dict[str, Any]] | None = None) -> str:
    """Human-readable form of :meth:`EpisodeStore.summary` (and of :func:`episode_rows`)."""
    judged = ""
    if rows is not None:
        verdicts = [r["operator_verdict"] for r in rows]
        scores = [r["task_score"] for r in rows if r["task_score"] is not None]
        judged = (f"operator verdict: {verdicts.count('success')} success, {verdicts.count('failure')} failure"
                  + (f", {verdicts.count(None)} none" if None in verdicts else ""))
        if scores:
            met = sum(bool(r["task_success"]) for r in rows)
            judged += f"; task score: mean {sum(scores) / len(scores):.3f}, {met} of {len(scores)} met the task's threshold"
    else:
        judged = f"operator verdict: {summary['successful_episodes']} success"
    lines = [
        f"episode store  {summary['path']}",
        f"format         {summary['format']} v{summary['format_version']}",
        f"episodes       {summary['episodes']} committed ({judged}), "
        f"{summary['total_duration_s']:.1f} s recorded",
        f"episode data   {_human_bytes(summary['size_bytes'])} stored",
    ]
    if summary["interrupted_episodes"]:
        lines.append(f"interrupted    {', '.join(summary['interrupted_episodes'])} "
                     "(run `tactkit dataset recover`)")
    if summary.get("damaged_episodes"):
        lines.append(f"damaged        {', '.join(summary['damaged_episodes'])} "
                     "(unreadable commit records; run `tactkit dataset verify`)")
    lines.append("streams:")
    width = max(len(k) for k in summary["streams"])
    for key, s in summary["streams"].items():
        shape = "x".join(str(d) for d in s["shape"]) or "scalar"
        lines.append(f"  {key:<{width}}  {s['dtype']:<8} {shape:<12} {s['rate_hz']:>7.1f} Hz  "
                     f"{s['frames']:>9} frames  {s['codec']:<11} {s['units']}")
    if rows:
        lines.append("episodes:")
        lines.append(episodes_text(rows))
    return "\n".join(lines)


def _replay_summary(rb, path: str) -> dict[str, Any]:
    from tactkit.store import _paths

    fmt = rb.root.metadata.zarr_format if rb.root is not None else None
    return {
        "path": path, "format": "replay_buffer", "zarr_format": fmt,
        "episodes": rb.n_episodes, "steps": rb.n_steps, "size_bytes": _paths.size_on_disk(path),
        "keys": {k: {"dtype": str(v.dtype), "shape": list(v.shape[1:])} for k, v in rb.data.items()},
        "attrs": rb.attrs,
    }


def _info(args: argparse.Namespace) -> int:
    from tactkit.store import EpisodeStore, NotAStoreError, ReplayBuffer

    try:
        store = EpisodeStore.open(args.path)
        summary = store.summary()
        summary["episode_table"] = rows = episode_rows(store)
        text = store_summary_text(summary, rows) if not args.json else None
    except NotAStoreError as store_exc:
        try:
            rb = ReplayBuffer.open(args.path)
        except NotAStoreError:
            raise store_exc from None
        summary = _replay_summary(rb, args.path)
        text = None if args.json else "\n".join(
            [f"replay buffer  {args.path} (zarr format {summary['zarr_format']})",
             f"episodes       {rb.n_episodes}, {rb.n_steps} steps",
             f"size on disk   {_human_bytes(summary['size_bytes'])}", "keys:"]
            + [f"  {k:<40} {v['dtype']:<8} {'x'.join(map(str, v['shape'])) or 'scalar'}"
               for k, v in summary["keys"].items()])
    print(json.dumps(summary, indent=2) if args.json else text)
    return 0


def _align(args: argparse.Namespace) -> int:
    import logging

    from tactkit.store import EpisodeStore, align
    from tactkit.store.align import DEFAULT_INTERPOLATE

    store = EpisodeStore.open(args.src)
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    episodes = None
    if args.select:
        from tactkit.store.selection import select_episodes

        episodes = select_episodes(store, args.select)
    _check_overwrite(args.dst, args.overwrite)
    align_log = logging.getLogger("tactkit.store.align")
    level = align_log.level
    align_log.setLevel(logging.ERROR)  # what it would warn about is printed below
    try:
        rb = align(store, fps=args.fps, keys=args.keys,
                   interpolate=DEFAULT_INTERPOLATE if args.interpolate is None else tuple(args.interpolate),
                   out=args.dst, zarr_format=args.zarr_format, image_quality=args.image_quality,
                   overwrite=args.overwrite, progress=True, workers=args.workers, episodes=episodes)
    finally:
        align_log.setLevel(level)
    attrs = rb.attrs
    print(f"wrote {args.dst}: {rb.n_episodes} episodes, {rb.n_steps} steps at {args.fps:g} Hz, "
          f"zarr format {args.zarr_format}, keys {rb.keys()}")
    dropped = attrs.get("dropped_keys", {})
    if dropped:
        print(f"left out {len(dropped)} streams without samples in any episode: {', '.join(dropped)}")
    skipped = attrs.get("skipped_episodes", [])
    if skipped:
        reasons = attrs.get("skip_reasons", {})
        print(f"skipped {len(skipped)} episodes: " + "; ".join(f"{n} ({reasons.get(n, 'empty stream')})"
                                                           for n in skipped))
    return 0


def _writable(path: str) -> bool:
    from tactkit.store import _paths

    lp = _paths.local_path(path)
    return lp is not None and os.access(lp, os.W_OK)


def _check_overwrite(path: str, overwrite: bool) -> None:
    from tactkit.store import _paths

    if not overwrite and _paths.exists(path):
        raise ValueError(f"{path} already exists; pass --overwrite to replace it")


def _verify(args: argparse.Namespace) -> int:
    from tactkit.store import EpisodeStore

    # opened for writing where allowed, so that a stale index is rebuilt on disk
    store = EpisodeStore.open(args.path, mode="a" if _writable(args.path) else "r")
    report = store.check(quick=args.quick, progress=True)
    for n in report.notes:
        print(f"note: {n}")
    for p in report.problems:
        print(f"problem: {p}")
    kind = "quick check" if args.quick else "full check"
    print(f"{args.path}: {store.num_episodes} committed episodes, {kind}: "
          f"{'OK' if report.ok else f'{len(report.problems)} problem' + 's' * (len(report.problems) != 1)}")
    return 0 if report.ok else 1


def _recover(args: argparse.Namespace) -> int:
    from tactkit.store import EpisodeStore

    store = EpisodeStore.open(args.path, mode="a")
    reports = store.recover(discard=args.discard)
    if not reports:
        print(f"{args.path}: no interrupted episodes")
    for r in reports:
        detail = ", ".join(f"{k}: {n}" for k, n in r["lengths"].items())
        reason = f" ({r['reason']})" if r.get("reason") else ""
        print(f"{r['episode']}: {r['action']}{reason}" + (f" [{detail}]" if detail else ""))
    return 0


def _stats(args: argparse.Namespace) -> int:
    from tactkit.store import EpisodeStore, NotAStoreError, ReplayBuffer, compute_stats

    try:
        rb = ReplayBuffer.open(args.path)
    except NotAStoreError as exc:
        try:
            EpisodeStore.open(args.path)
        except NotAStoreError:
            raise exc from None
        raise ValueError(f"{args.path} is an episode store; statistics are of a training view: "
                         f"`tactkit dataset align {args.path} VIEW --fps 24` first, then "
                         "`tactkit dataset stats VIEW`") from None
    if rb.n_steps == 0:
        raise ValueError(f"{args.path} holds no steps ({rb.n_episodes} episodes): nothing to compute "
                         "statistics of")
    stats = compute_stats(rb, keys=args.keys)
    as_json = {k: {n: v.tolist() for n, v in s.items()} for k, s in stats.items()}
    if args.json:
        print(json.dumps(as_json, indent=2))
        return 0
    for key, s in stats.items():
        print(key)
        for name, v in s.items():
            print(f"  {name:<5} {' '.join(f'{x:.4g}' for x in v.ravel()[:12])}{' ...' if v.size > 12 else ''}")
    return 0


# ---------------------------------------------------------------------- interop: export, import, view
def register_interop(sub: argparse._SubParsersAction) -> None:
    """``export`` / ``import`` (LeRobot v3.0, diffusion_policy buffers) and ``view`` (rerun, MP4)."""
    exp = sub.add_parser("export", help="write an episode store as a LeRobot v3.0 dataset")
    exp.add_argument("src", help="episode store")
    exp.add_argument("dst", help="output directory (LeRobotDataset(repo_id, root=DST) opens it)")
    exp.add_argument("--format", choices=("lerobot",), default="lerobot")
    exp.add_argument("--fps", type=float, default=None,
                     help="frame rate every stream is aligned to (integer; default: the store's control_hz)")
    exp.add_argument("--episodes", default=None, help="episode indices, e.g. 0,3,5-9 (default: all)")
    exp.add_argument("--keys", nargs="+", default=None, help="streams to export (default: all)")
    exp.add_argument("--vcodec", choices=("av1", "h264"), default="av1",
                     help="camera video codec (default av1, LeRobot's own default)")
    exp.add_argument("--robot-type", default=None, help="info.json robot_type (default: the store's robot_type attribute)")
    exp.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    exp.set_defaults(func=_export)

    imp = sub.add_parser("import", help="a LeRobot v3.0 dataset or a diffusion_policy replay buffer -> episode store")
    imp.add_argument("src", help="LeRobot dataset directory (--format lerobot) or replay buffer (--format dp)")
    imp.add_argument("dst", help="new episode store")
    imp.add_argument("--format", choices=("lerobot", "dp"), required=True)
    imp.add_argument("--episodes", default=None, help="episode indices, e.g. 0,3,5-9 (default: all)")
    imp.add_argument("--keys", nargs="+", default=None, metavar="SRC=DST",
                     help="dp: rename keys, e.g. img=observation.images.wrist (SRC a+b joins, DST a,b copies, DST k[0:9] slices)")
    imp.add_argument("--fps", type=float, default=None, help="dp: sample rate of buffers without data/timestamp")
    imp.add_argument("--task", default="", help="dp: task string of every episode")
    imp.add_argument("--image-quality", type=int, default=90, help="JPEG quality of the store's image streams")
    imp.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    imp.set_defaults(func=_import)

    view = sub.add_parser("view", help="look at recorded episodes in the rerun viewer (or as an MP4)")
    view.add_argument("path", help="episode store")
    view.add_argument("--episode", default=None, help="episode indices, e.g. 0 or 0,2-4 (default: all)")
    view.add_argument("--save", default=None, metavar="FILE.rrd", help="write a rerun recording instead of opening the viewer")
    view.add_argument("--mp4", default=None, metavar="FILE.mp4",
                      help="no rerun: an H.264 video of the episode(s): cameras, tactile arrows, wrench and state plots")
    view.add_argument("--keys", nargs="+", default=None, help="streams to show (default: all)")
    view.set_defaults(func=_view)


def parse_episodes(spec: str | None) -> list[int] | None:
    """``"0,3,5-9"`` -> ``[0, 3, 5, 6, 7, 8, 9]``; None stays None."""
    if spec is None:
        return None
    out: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            out += list(range(int(lo), int(hi) + 1)) if sep else [int(part)]
        except ValueError:
            raise ValueError(f"episode list {spec!r}: {part!r} is not N or N-M") from None
    return out


def _key_map(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or []:
        src, sep, dst = item.partition("=")
        if not sep or not src or not dst:
            raise ValueError(f"--keys {item!r}: expected SRC=DST")
        out[src] = dst
    return out


def _export(args: argparse.Namespace) -> int:
    from tactkit.store import EpisodeStore, _paths
    from tactkit.store.lerobot import export_lerobot

    store = EpisodeStore.open(args.src)
    report = export_lerobot(store, args.dst, args.fps, episodes=parse_episodes(args.episodes), keys=args.keys,
                            video_codec=args.vcodec, robot_type=args.robot_type, overwrite=args.overwrite,
                            progress=True)
    src_bytes = _paths.size_on_disk(args.src)
    print(f"wrote {args.dst}: LeRobot v3.0, {report.episodes} episodes, {report.frames} frames at {report.fps} Hz, "
          f"cameras {report.video_keys or 'none'} ({args.vcodec}), {len(report.features)} other features")
    if src_bytes:
        print(f"size {_human_bytes(report.bytes)} ({report.bytes / src_bytes:.2f}x the store's {_human_bytes(src_bytes)})")
    if report.skipped:
        print(f"skipped {len(report.skipped)} episodes whose streams do not overlap: {', '.join(report.skipped)}")
    return 0


def _import(args: argparse.Namespace) -> int:
    episodes = parse_episodes(args.episodes)
    if args.format == "lerobot":
        if args.keys or args.fps is not None or args.task:
            raise ValueError("--keys, --fps and --task apply to --format dp only")
        from tactkit.store.lerobot_import import import_lerobot

        store = import_lerobot(args.src, args.dst, episodes=episodes, image_quality=args.image_quality,
                               overwrite=args.overwrite, progress=True)
    else:
        from tactkit.store.buffer_import import import_replay_buffer

        store = import_replay_buffer(args.src, args.dst, fps=args.fps, key_map=_key_map(args.keys), task=args.task,
                                     episodes=episodes, image_quality=args.image_quality, overwrite=args.overwrite,
                                     progress=True)
    print(store_summary_text(store.summary()))
    return 0


def _view(args: argparse.Namespace) -> int:
    from tactkit.store import EpisodeStore

    store = EpisodeStore.open(args.path)
    episodes = parse_episodes(args.episode)
    if args.mp4 and args.save:
        raise ValueError("--save (rerun) and --mp4 are alternatives; give one")
    if args.mp4:
        from tactkit.experiments.viewer import store_video

        path = store_video(store, args.mp4, episodes=episodes, keys=args.keys)
        print(f"wrote {path}")
        return 0
    from tactkit.experiments.viewer import log_store

    rec = log_store(store, episodes=episodes, keys=args.keys, save=args.save, spawn=args.save is None)
    print(f"wrote {args.save}" if args.save else f"sent {rec['episodes']} episodes to the rerun viewer")
    return 0


def _cache(args: argparse.Namespace) -> int:
    from tactkit.store import view_cache

    where = view_cache.cache_dir() / "views"
    if args.clear:
        freed = view_cache.clear_views()
        print(f"cleared {where}: {_human_bytes(freed)} freed")
        return 0
    views = view_cache.list_views()
    if args.json:
        print(json.dumps({"directory": str(where), "views": views}, indent=2))
        return 0
    print(f"cached training views in {where}: {len(views)}, "
          f"{_human_bytes(sum(v['bytes'] or 0 for v in views))}")
    for v in views:
        if "error" in v:
            print(f"  {v['path']}: unreadable ({v['error']})")
            continue
        print(f"  {v['path']}\n    {v['episodes']} episodes, {v['steps']} steps at {v['fps']:g} Hz, "
              f"{_human_bytes(v['bytes'])}, from {v['source']}")
    return 0
