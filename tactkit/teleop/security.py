"""CURVE keys, the client allow-list and the bind-address policy of the bridge.

A bridge that moves a robot arm is a security boundary. With CURVE on, traffic is encrypted
and a ZAP authenticator (:class:`zmq.auth.thread.ThreadAuthenticator`) admits only clients
whose public key is in the allow-list directory; everyone else, and every plaintext
client, fails the handshake and never reaches the bridge's message loop.

Key layout made by ``tactkit keys generate DIR``::

    DIR/bridge.key          bridge public key (give to headsets)
    DIR/bridge.key_secret   bridge secret key (stays on the workstation)
    DIR/<client>.key_secret client key pair (copy to that client)
    DIR/allowed/<client>.key  allow-list: public keys the bridge accepts
"""

from __future__ import annotations

import ipaddress
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

log = logging.getLogger(__name__)

ALLOWED_DIR = "allowed"
ZAP_DOMAIN = "tactkit"


@dataclass(frozen=True)
class KeyPair:
    public: bytes
    secret: bytes


def generate_keys(directory: str | Path, clients: tuple[str, ...] = ("headset",)) -> dict[str, Path]:
    """Create a bridge key pair and one key pair per client; put clients on the allow-list.

    Existing keys are never overwritten (raises ``FileExistsError``). Returns name -> secret file.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    allowed = d / ALLOWED_DIR
    allowed.mkdir(exist_ok=True)
    out: dict[str, Path] = {}
    for name in ("bridge", *clients):
        if not name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"key name {name!r}: use letters, digits, '-' and '_' only")
        if (d / f"{name}.key_secret").exists():
            raise FileExistsError(f"{d / (name + '.key_secret')} exists; refusing to overwrite a key")
        public_file, secret_file = zmq.auth.create_certificates(d, name)
        (Path(secret_file)).chmod(0o600)
        out[name] = Path(secret_file)
        if name != "bridge":
            shutil.copy(public_file, allowed / f"{name}.key")
    return out


def load_keypair(secret_file: str | Path) -> KeyPair:
    """Read a ``.key_secret`` file written by :func:`generate_keys`."""
    path = Path(secret_file)
    if not path.is_file():
        raise FileNotFoundError(f"key file {path} not found (make one with `tactkit keys generate`)")
    public, secret = zmq.auth.load_certificate(path)
    if secret is None:
        raise ValueError(f"{path} holds no secret key (pass the .key_secret file)")
    return KeyPair(public, secret)


def load_public_key(public_file: str | Path) -> bytes:
    path = Path(public_file)
    if not path.is_file():
        raise FileNotFoundError(f"public key {path} not found")
    public, _ = zmq.auth.load_certificate(path)
    return public


def is_loopback(address: str) -> bool:
    """True for ``tcp://127.x.x.x:port``, ``tcp://localhost:port``, ``tcp://[::1]:port``, ipc/inproc."""
    parsed = urlparse(address)
    if parsed.scheme in ("ipc", "inproc"):
        return True
    host = parsed.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "*", an interface name or a hostname: reachable from outside


def check_bind_policy(addresses: list[str], curve: bool, insecure: bool) -> None:
    """Refuse a non-loopback bind without CURVE unless ``insecure`` (raises ``ValueError``)."""
    exposed = [a for a in addresses if not is_loopback(a)]
    if exposed and not curve:
        if insecure:
            log.warning("binding %s WITHOUT encryption or authentication (--insecure): anyone on "
                        "the network can drive the robot", ", ".join(exposed))
            return
        raise ValueError(
            f"refusing to bind {', '.join(exposed)} without CURVE: anyone on the network could "
            "drive the robot. Generate keys with `tactkit keys generate KEYDIR` and pass "
            "--keys KEYDIR, bind 127.0.0.1, or pass --insecure if you really mean it"
        )


class ServerSecurity:
    """CURVE server side: a ZAP authenticator with an allow-list directory of public keys."""

    def __init__(self, context: zmq.Context, server_secret_file: str | Path,
                 allowed_dir: str | Path | None = None) -> None:
        self.keys = load_keypair(server_secret_file)
        allowed = Path(allowed_dir) if allowed_dir else Path(server_secret_file).parent / ALLOWED_DIR
        if not allowed.is_dir() or not any(allowed.glob("*.key")):
            raise FileNotFoundError(f"allow-list {allowed} has no client .key files")
        self.allowed_dir = allowed
        self.auth = ThreadAuthenticator(context, log=logging.getLogger("tactkit.teleop.zap"))
        self.auth.start()
        self.auth.configure_curve(domain=ZAP_DOMAIN, location=str(allowed))

    def apply(self, socket: zmq.Socket) -> None:
        """Make ``socket`` a CURVE server (call before bind)."""
        socket.curve_secretkey = self.keys.secret
        socket.curve_publickey = self.keys.public
        socket.curve_server = True
        socket.zap_domain = ZAP_DOMAIN.encode()

    def stop(self) -> None:
        self.auth.stop()


def apply_client_curve(socket: zmq.Socket, client: KeyPair, server_public: bytes) -> None:
    """Make ``socket`` a CURVE client of the server with public key ``server_public``."""
    socket.curve_secretkey = client.secret
    socket.curve_publickey = client.public
    socket.curve_serverkey = server_public
