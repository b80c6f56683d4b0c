"""ATI Net F/T force/torque sensor over its RDT (raw data transfer) UDP protocol.

Protocol (ATI Net F/T manual, "RDT"): the host sends 8-byte requests to UDP port 49152,
``uint16 header = 0x1234, uint16 command, uint32 sample_count`` (big-endian); command 2 starts
high-speed real-time streaming (``sample_count = 0``: until stopped), 0 stops, 0x42 sets the
device's software bias. The sensor answers with 36-byte records
``uint32 rdt_sequence, uint32 ft_sequence, uint32 status, int32 Fx, Fy, Fz, Tx, Ty, Tz``
(big-endian), one per UDP packet (buffered mode packs several; both are parsed).

Counts are converted with ``counts_per_force`` / ``counts_per_torque`` from the config (the
values on the sensor's web page, "Counts per Force/Torque"). Bias: the device's own (command
0x42) or a host-side tare averaging the next samples. UDP may lose or reorder packets: gaps in
``rdt_sequence`` count as drops, and a packet older than one already published is stale and
discarded (counted in :attr:`NetFTSensor.stale_packets`), so the published stream is
monotonic.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from collections import deque
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from tactkit.clock import Clock
from tactkit.sensors.base import SENSORS
from tactkit.sensors.threaded import Reading, ThreadedSensor

log = logging.getLogger(__name__)

RDT_PORT = 49152
RDT_HEADER = 0x1234
CMD_STOP = 0x0000
CMD_START_REALTIME = 0x0002
CMD_START_BUFFERED = 0x0003
CMD_SET_SOFTWARE_BIAS = 0x0042
REQUEST = struct.Struct(">HHI")
RECORD = struct.Struct(">III6i")  # 36 bytes
STATUS_ERROR = 0x80000000  # status word bit 31: a fault condition is present


def rdt_request(command: int, sample_count: int = 0) -> bytes:
    """The 8-byte RDT request for ``command``."""
    return REQUEST.pack(RDT_HEADER, command, sample_count)


def parse_records(data: bytes) -> list[tuple[int, int, int, tuple[int, ...]]]:
    """``[(rdt_sequence, ft_sequence, status, (Fx..Tz counts))]`` from one RDT response packet."""
    if len(data) == 0 or len(data) % RECORD.size:
        raise ValueError(f"RDT packet of {len(data)} bytes is not a multiple of {RECORD.size}")
    out = []
    for off in range(0, len(data), RECORD.size):
        rec = RECORD.unpack_from(data, off)
        out.append((rec[0], rec[1], rec[2], rec[3:]))
    return out


@dataclass
class NetFTConfig:
    """ATI Net F/T on RDT streaming."""

    type_name: ClassVar[str] = "ati_netft"
    name: str = "ft"
    key: str = "observation.wrench"  # multi-arm: observation.wrench.<arm>
    host: str = "192.168.1.1"
    port: int = RDT_PORT
    counts_per_force: float = 1_000_000.0  # from the sensor's configuration page
    counts_per_torque: float = 1_000_000.0
    rate_hz: float = 1000.0  # RDT output rate set on the sensor (nominal, for the schema)
    bias: Literal["none", "device", "host"] = "host"  # tare on connect
    tare_samples: int = 100
    latency_s: float = 0.0  # RDT carries no timestamp: capture = receive - latency_s
    recv_timeout_s: float = 0.05
    stale_after_s: float = 0.1

    def __post_init__(self) -> None:
        if self.counts_per_force <= 0 or self.counts_per_torque <= 0:
            raise ValueError(f"ft {self.name}: counts_per_force/counts_per_torque must be > 0")
        if not 0 < self.port < 65536:
            raise ValueError(f"ft {self.name}: port must be 1..65535, got {self.port}")
        if self.tare_samples < 1:
            raise ValueError(f"ft {self.name}: tare_samples must be >= 1")


@SENSORS.register(NetFTConfig)
class NetFTSensor(ThreadedSensor):
    """Streams wrench ``[Fx, Fy, Fz, Tx, Ty, Tz]`` (N, N m; float32) from an ATI Net F/T."""

    config: NetFTConfig

    def __init__(self, config: NetFTConfig, clock: Clock | None = None) -> None:
        super().__init__(config, clock)
        self.sock: socket.socket | None = None
        self.scale = np.array([1 / config.counts_per_force] * 3 + [1 / config.counts_per_torque] * 3)
        self.host_bias = np.zeros(6)
        self.stale_packets = 0
        self.last_rdt_sequence: int | None = None
        self.last_status = 0
        self._raw = deque(maxlen=10_000)
        self._raw_count = 0
        self._raw_cond = threading.Condition()

    def streams(self) -> dict:
        from tactkit.store.schema import WRENCH_NAMES, StreamSpec

        return {self.config.key: StreamSpec("float32", (6,), self.config.rate_hz, "N,Nm", WRENCH_NAMES)}

    # ------------------------------------------------------------------ device
    def _send(self, command: int, sample_count: int = 0) -> None:
        assert self.sock is not None
        self.sock.send(rdt_request(command, sample_count))

    def _open(self) -> None:
        c = self.config
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(c.recv_timeout_s)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        sock.connect((c.host, c.port))  # only accept packets from the sensor
        self.sock = sock
        self.last_rdt_sequence = None
        if c.bias == "device":
            self._send(CMD_SET_SOFTWARE_BIAS)
        self._send(CMD_START_REALTIME, 0)

    def connect(self) -> None:
        """Start streaming; with ``bias: host`` also tare on the first ``tare_samples`` samples."""
        super().connect()
        if self.config.bias == "host":
            try:
                self.tare(self.config.tare_samples)
            except TimeoutError:
                self.disconnect()
                raise

    def _close(self) -> None:
        if self.sock is not None:
            try:
                self._send(CMD_STOP)
            except OSError:
                pass
            self.sock.close()
            self.sock = None

    def _read(self) -> Reading | None:
        assert self.sock is not None
        try:
            data = self.sock.recv(2048)
        except TimeoutError:
            return None
        receive = self.clock.now()
        newest = None
        dropped = 0
        for seq, _ft_seq, status, counts in parse_records(data):
            if self.last_rdt_sequence is not None:
                ahead = (seq - self.last_rdt_sequence) % (1 << 32)
                if ahead == 0 or ahead >= 1 << 31:  # duplicate or older than published: stale
                    self.stale_packets += 1
                    continue
                dropped += ahead - 1
            self.last_rdt_sequence = seq
            newest = (status, counts)
        if newest is None:
            return None
        status, counts = newest
        if status & STATUS_ERROR and status != self.last_status:
            self._record_error(f"Net F/T status 0x{status:08x} (fault bit set)")
        self.last_status = status
        raw = np.asarray(counts, dtype=np.float64) * self.scale
        with self._raw_cond:
            self._raw.append(raw)
            self._raw_count += 1
            self._raw_cond.notify_all()
        wrench = (raw - self.host_bias).astype(np.float32)
        return Reading(receive - self.config.latency_s, {self.config.key: wrench}, dropped)

    # ------------------------------------------------------------------ bias
    def tare(self, n_samples: int = 100, timeout: float = 2.0) -> np.ndarray:
        """Host-side bias: average the next ``n_samples`` readings and subtract from now on."""
        with self._raw_cond:
            start = self._raw_count
            ok = self._raw_cond.wait_for(lambda: self._raw_count - start >= n_samples, timeout)
            got = min(self._raw_count - start, len(self._raw))
            if not ok:
                raise TimeoutError(
                    f"ft {self.config.name}: only {got} of {n_samples} samples within {timeout}s "
                    f"from {self.config.host}:{self.config.port}"
                )
            bias = np.mean(list(self._raw)[-n_samples:], axis=0)
        self.host_bias = bias
        log.info("ft %s: host bias %s", self.config.name, np.round(bias, 4))
        return bias

    def bias_device(self) -> None:
        """Ask the sensor to zero itself (RDT command 0x42) and drop any host bias."""
        self._send(CMD_SET_SOFTWARE_BIAS)
        self.host_bias = np.zeros(6)
