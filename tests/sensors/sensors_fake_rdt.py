"""A fake ATI Net F/T speaking RDT over UDP on 127.0.0.1 (stands in for the hardware)."""

from __future__ import annotations

import socket
import struct
import threading
import time

REQUEST = struct.Struct(">HHI")
RECORD = struct.Struct(">III6i")


class FakeNetFT:
    """Answers RDT requests like the sensor: 0x0002 streams records, 0x0000 stops, 0x0042 biases.

    ``counts(seq)`` gives the six raw counts of record ``seq``; ``order`` (optional) is the exact
    list of rdt_sequence numbers to send, in order, to script lost and reordered packets.
    """

    def __init__(self, counts, rate_hz: float = 1000.0, order: list[int] | None = None,
                 status: int = 0) -> None:
        self.counts = counts
        self.period = 1.0 / rate_hz
        self.order = order
        self.status = status
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.commands: list[int] = []
        self.device_bias = (0, 0, 0, 0, 0, 0)
        self.sent = 0
        self._client = None
        self._streaming = False
        self._paused = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> FakeNetFT:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def pause(self, paused: bool = True) -> None:
        """Stop sending without being told to (a cable pull)."""
        self._paused = paused

    def _run(self) -> None:
        seq_iter = iter(self.order) if self.order is not None else None
        seq = 0
        next_t = time.monotonic()
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(64)
                header, cmd, _count = REQUEST.unpack(data)
                assert header == 0x1234, hex(header)
                self.commands.append(cmd)
                if cmd == 0x0002:
                    self._client, self._streaming = addr, True
                elif cmd == 0x0000:
                    self._streaming = False
                elif cmd == 0x0042:
                    self.device_bias = tuple(self.counts(seq))
            except (TimeoutError, BlockingIOError):
                pass
            while self._streaming and not self._paused and time.monotonic() >= next_t:
                if seq_iter is not None:
                    seq = next(seq_iter, None)
                    if seq is None:
                        self._streaming = False
                        break
                else:
                    seq += 1
                raw = [c - b for c, b in zip(self.counts(seq), self.device_bias)]
                self.sock.sendto(RECORD.pack(seq, seq, self.status, *raw), self._client)
                self.sent += 1
                next_t += self.period
            if not self._streaming or self._paused:
                next_t = time.monotonic()
            time.sleep(min(self.period, 0.001))
