"""``tactkit sensors``: list devices, check a sensor config, view tactile markers."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("sensors", help="list, check and view sensors")
    sub = p.add_subparsers(dest="sensors_command", metavar="SUBCOMMAND", required=True)

    ls = sub.add_parser("list", help="sensor types, connected cameras, bundled sensor configs")
    ls.set_defaults(func=_list)

    chk = sub.add_parser("check", help="open every sensor of CONFIG, show live rates and data; "
                         "exit 1 if any fails")
    chk.add_argument("config", help="YAML file or bundled name (configs/sensor/<name>.yaml)")
    chk.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                     help="overrides right after CONFIG, e.g. sensors.left.fps=25")
    chk.add_argument("--seconds", type=float, default=3.0, help="how long to stream (default 3)")
    chk.add_argument("--min-rate", type=float, default=0.5,
                     help="fail below this fraction of the nominal rate (default 0.5)")
    chk.set_defaults(func=_check)

    view = sub.add_parser("view", help="marker arrows on the tactile image, saved as video or PNG")
    view.add_argument("config", help="YAML file or bundled name with at least one tactile sensor")
    view.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides right after CONFIG")
    view.add_argument("--sensor", default=None, help="tactile sensor name (default: the first)")
    view.add_argument("--seconds", type=float, default=3.0)
    view.add_argument("--scale", type=float, default=3.0, help="arrow length per pixel of displacement")
    view.add_argument("--out", default="tactile_view.mp4", help=".mp4/.avi video or .png (last frame)")
    view.add_argument("--show", action="store_true", help="also show a window (needs a GUI OpenCV)")
    view.set_defaults(func=_view)

    rec = sub.add_parser("record", help="record the sensors of CONFIG into an episode store (one "
                         "episode), e.g. tactile data to fit the PCA; teleop sessions record robot + sensors")
    rec.add_argument("config")
    rec.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides right after CONFIG")
    rec.add_argument("--out", required=True, help="episode store (created if missing)")
    rec.add_argument("--seconds", type=float, default=5.0)
    rec.add_argument("--task", default="sensors", help="task name stored with the episode")
    rec.set_defaults(func=_record)

    pub = sub.add_parser("publish", help="run the sensors of CONFIG and publish their samples over "
                         "ZeroMQ (latest wins) to other processes")
    pub.add_argument("config")
    pub.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides right after CONFIG")
    pub.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    pub.add_argument("--port", type=int, default=5560, help="first port; one per sensor (default 5560)")
    pub.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0: until Ctrl-C)")
    pub.set_defaults(func=_publish)


def _list(args: argparse.Namespace) -> int:
    from tactkit.config import config_dir
    from tactkit.sensors.base import SENSORS
    from tactkit.sensors.cameras import list_realsense_devices, list_v4l2_devices
    from tactkit.sensors.config import import_drivers

    import_drivers()
    print("sensor types (YAML 'type'):")
    for name in SENSORS.names():
        cls = SENSORS.config_class(name)
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        print(f"  {name:18s} {doc}")
    cams = list_v4l2_devices()
    print("video devices:" if cams else "video devices: none found")
    for idx, name in cams:
        tag = "  <- marker-gel tactile" if "gelsight" in name.lower() or "digit" in name.lower() else ""
        print(f"  /dev/video{idx:<3d} {name}{tag}")
    rs = list_realsense_devices()
    print("RealSense devices:" if rs else "RealSense devices: none found (or pyrealsense2 not installed)")
    for serial, name in rs:
        print(f"  {serial}  {name}")
    configs = sorted(p.stem for p in (config_dir() / "sensor").glob("*.yaml"))
    print(f"bundled sensor configs: {', '.join(configs) or 'none'}")
    return 0


def _describe(value) -> str:
    import numpy as np

    v = np.asarray(value)
    if v.dtype == np.uint8 and v.ndim == 3:
        return f"image {v.shape[1]}x{v.shape[0]} mean {v.mean():.0f}"
    if v.ndim == 2 and v.shape[-1] == 2:
        mag = np.linalg.norm(v, axis=1)
        return f"{v.shape[0]} markers, |offset| max {mag.max():.4f} mean {mag.mean():.4f}"
    flat = v.ravel()
    if flat.size <= 8:
        return "[" + ", ".join(f"{x:.3f}" for x in flat.astype(float)) + "]"
    return f"{v.dtype} {v.shape} min {flat.min():.3g} max {flat.max():.3g}"


def _check(args: argparse.Namespace) -> int:
    import time

    from tqdm import tqdm

    from tactkit.sensors.config import build_sensor, load_sensor_configs

    configs = load_sensor_configs(args.config, args.overrides)
    sensors, failed = {}, {}
    for name, cfg in configs.items():
        try:
            s = build_sensor(cfg)
            s.connect()
            sensors[name] = s
            print(f"{name}: connected ({type(cfg).type_name})")
        except Exception as exc:  # noqa: BLE001 - report every sensor, then exit non-zero
            failed[name] = f"connect failed: {type(exc).__name__}: {exc}"
            print(f"{name}: FAILED to connect: {exc}", file=sys.stderr)
    try:
        steps = max(1, int(args.seconds / 0.5))
        with tqdm(total=steps, desc="streaming", unit="step", file=sys.stderr, leave=False) as bar:
            for _ in range(steps):
                time.sleep(args.seconds / steps)
                bar.set_postfix({n: f"{s.health().rate_hz:.0f}Hz" for n, s in sensors.items()})
                bar.update()
        print(f"\n{'sensor':10s} {'stream':44s} {'rate Hz':>8s} {'nominal':>8s} {'drops':>6s} "
              f"{'age ms':>7s}  status")
        for name, s in sensors.items():
            h = s.health()
            streams = s.streams()
            key = next(iter(streams))
            nominal = streams[key].rate_hz
            sample = s.read_latest()
            age = (s.clock.now() - sample.capture_time) * 1000 if sample else float("nan")
            ok = h.healthy and h.rate_hz >= args.min_rate * nominal
            status = "ok" if ok else f"FAIL: {h.last_error or f'rate below {args.min_rate:.0%} of nominal'}"
            if not ok:
                failed[name] = status
            print(f"{name:10s} {key:44s} {h.rate_hz:8.1f} {nominal:8.1f} {h.drops:6d} {age:7.1f}  {status}")
            if sample is not None:
                print(f"{'':10s} latest: {_describe(sample.value)}")
    finally:
        for s in sensors.values():
            s.disconnect()
    if failed:
        print(f"{len(failed)} of {len(configs)} sensors failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"all {len(configs)} sensors ok")
    return 0


def _view(args: argparse.Namespace) -> int:
    import queue
    import time
    from pathlib import Path

    import cv2

    from tactkit.sensors.config import build_sensor, load_sensor_configs
    from tactkit.sensors.tactile import GelSightConfig, SyntheticTactileConfig
    from tactkit.sensors.viz import draw_markers

    configs = load_sensor_configs(args.config, args.overrides)
    tactile = {n: c for n, c in configs.items() if isinstance(c, (GelSightConfig, SyntheticTactileConfig))}
    if not tactile:
        raise ValueError(f"{args.config}: no tactile sensor (gelsight / synthetic_tactile) in the config")
    name = args.sensor or next(iter(tactile))
    if name not in tactile:
        raise KeyError(f"no tactile sensor {name!r}; tactile sensors: {', '.join(tactile)}")
    out = Path(args.out)
    if out.suffix.lower() not in (".mp4", ".avi", ".png"):
        raise ValueError(f"--out must end in .mp4, .avi or .png, got {out.name!r}")
    sensor = build_sensor(tactile[name])
    frames: queue.Queue = queue.Queue(maxsize=4)

    def grab(_samples: dict) -> None:  # capture thread: hand over, never wait
        r, img = sensor.last_result, sensor.last_image
        if r is not None and img is not None:
            try:
                frames.put_nowait((img, sensor.tracker.rest.copy(), r.positions, r.valid))
            except queue.Full:
                pass

    sensor.add_listener(grab)
    writer, last, n = None, None, 0
    with sensor:
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            try:
                img, rest, pos, valid = frames.get(timeout=0.5)
            except queue.Empty:
                continue
            last = draw_markers(img, rest, pos, valid, args.scale)
            n += 1
            if out.suffix.lower() != ".png":
                if writer is None:  # H.264 through PyAV (tactkit[viz])
                    from tactkit.video import VideoWriter

                    writer = VideoWriter(out, float(getattr(sensor.config, "fps", 30.0)))
                writer.write(cv2.cvtColor(last, cv2.COLOR_BGR2RGB))
            if args.show:
                try:
                    cv2.imshow(f"tactile {name}", last)
                    cv2.waitKey(1)
                except cv2.error as exc:
                    raise ValueError(f"--show needs OpenCV with GUI support: {exc}") from None
        health = sensor.health()
    if writer is not None:
        writer.close()
    if last is None:
        print(f"error: no tracked frames from {name}: {health.last_error}", file=sys.stderr)
        return 1
    if out.suffix.lower() == ".png":
        cv2.imwrite(str(out), last)
    print(f"{name}: {n} frames at {health.rate_hz:.1f} Hz -> {out}")
    return 0


def _publish(args: argparse.Namespace) -> int:
    import time

    from tactkit.sensors.config import build_sensor, load_sensor_configs
    from tactkit.sensors.transport import publish_sensor

    configs = load_sensor_configs(args.config, args.overrides)
    sensors, pubs = [], []
    try:
        for i, (name, cfg) in enumerate(configs.items()):
            s = build_sensor(cfg)
            pub = publish_sensor(s, f"tcp://{args.host}:{args.port + i}")
            s.connect()
            sensors.append(s)
            pubs.append(pub)
            for key, spec in s.streams().items():
                print(f"{name}: {key} {spec.dtype}{list(spec.shape)} @ {spec.rate_hz:g} Hz -> {pub.endpoint}")
        sys.stdout.flush()
        deadline = time.monotonic() + args.seconds if args.seconds > 0 else float("inf")
        while time.monotonic() < deadline:
            time.sleep(min(0.2, max(deadline - time.monotonic(), 0.0)))
    finally:
        for s in sensors:
            s.disconnect()
        for p in pubs:
            p.close()
    print(f"published {sum(p.sent for p in pubs)} samples")
    return 0


def _record(args: argparse.Namespace) -> int:
    import threading
    import time
    from pathlib import Path

    from tqdm import tqdm

    from tactkit.config import to_dict
    from tactkit.sensors.config import build_sensor, load_sensor_configs
    from tactkit.store import EpisodeStore

    configs = load_sensor_configs(args.config, args.overrides)
    sensors = {n: build_sensor(c) for n, c in configs.items()}
    streams = {k: v for s in sensors.values() for k, v in s.streams().items()}
    if Path(args.out).exists():
        store = EpisodeStore.open(args.out, mode="a")
        missing = sorted(set(streams) - set(store.streams))
        if missing:
            raise ValueError(f"{args.out}: store has no stream {missing[0]!r}; streams: {sorted(store.streams)}")
    else:
        store = EpisodeStore.create(args.out, streams=streams)
    counts = dict.fromkeys(streams, 0)
    errors: list[str] = []
    lock = threading.Lock()
    rec = store.begin_episode(task=args.task, metadata={"sensors": {n: to_dict(c) for n, c in configs.items()}})

    def append(samples: dict) -> None:  # capture threads
        for key, sample in samples.items():
            try:
                rec.append(key, sample.capture_time, sample.value)
            except Exception as exc:  # noqa: BLE001 - reported after the run
                with lock:
                    errors.append(f"{key}: {exc}")
                continue
            with lock:
                counts[key] += 1

    connected = []
    try:
        for s in sensors.values():
            s.add_listener(append)
            s.connect()
            connected.append(s)
        steps = max(1, int(args.seconds / 0.25))
        for _ in tqdm(range(steps), desc="recording", unit="step", file=sys.stderr, leave=False):
            time.sleep(args.seconds / steps)
    except BaseException:
        for s in connected:
            s.disconnect()
        rec.discard()
        raise
    for s in connected:
        s.disconnect()
    if errors:
        rec.discard()
        print(f"error: {len(errors)} samples rejected, episode discarded; first: {errors[0]}", file=sys.stderr)
        return 1
    empty = [k for k, n in counts.items() if n == 0]
    rec.commit(success=not empty, note="" if not empty else f"no samples from {', '.join(empty)}")
    for key, n in counts.items():
        print(f"{key}: {n} samples ({n / args.seconds:.1f} Hz)")
    print(f"episode {store.num_episodes - 1} committed to {args.out}")
    return 1 if empty else 0
