"""Real loopback servers for the health-check tests: minimal HTTP(S), and certificates."""

from __future__ import annotations

import datetime
import http
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Route:
    """What the test HTTP server answers on one path, after `delay` seconds."""

    status: int = 200
    body: bytes = b"all good\n"
    content_type: str = "text/plain"
    delay: float = 0.0


def free_port() -> int:
    """A loopback TCP port free right now, for servers that cannot bind port 0 and tell."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def listener_port(listeners: list[trio.SocketListener]) -> int:
    port: int = listeners[0].socket.getsockname()[1]
    return port


async def serve_tcp(nursery: trio.Nursery,
                    handler: Callable[[trio.SocketStream], Awaitable[None]]) -> int:
    """Serve `handler` on 127.0.0.1 until the nursery is cancelled; returns the port."""
    listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
    return listener_port(listeners)


async def serve_http(nursery: trio.Nursery, routes: Mapping[str, Route],
                     ssl_context: ssl.SSLContext | None = None) -> int:
    """A one-request-per-connection HTTP/1.1 server on 127.0.0.1, HTTPS with
    `ssl_context`; until the nursery is cancelled. Returns the port."""
    handler = partial(_answer, routes)
    if ssl_context is None:
        return await serve_tcp(nursery, handler)
    listeners = await nursery.start(partial(
        trio.serve_ssl_over_tcp, handler, 0, ssl_context, host="127.0.0.1",
        https_compatible=True))
    return listener_port([listener.transport_listener for listener in listeners])


async def _answer(routes: Mapping[str, Route], stream: trio.abc.Stream) -> None:
    try:
        request = b""
        while b"\r\n\r\n" not in request:
            data = await stream.receive_some(4096)
            if not data:
                return
            request += data
        path = request.split(b" ", 2)[1].decode()
        route = routes.get(path, Route(404, b"no such page\n"))
        await trio.sleep(route.delay)
        head = (f"HTTP/1.1 {route.status} {http.HTTPStatus(route.status).phrase}\r\n"
                f"Content-Type: {route.content_type}\r\nContent-Length: {len(route.body)}\r\n"
                "Connection: close\r\n\r\n")
        await stream.send_all(head.encode() + route.body)
        await stream.aclose()
    except trio.BrokenResourceError:
        # A client that rejects the certificate hangs up mid-handshake; that is the
        # point of some tests, and must not take the server down.
        return


def self_signed_certificate(directory: Path, *, not_after: datetime.datetime) -> Path:
    """A self-signed certificate for 127.0.0.1 and localhost expiring at `not_after`,
    written with its key to one PEM file; returns its path."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    not_before = min(datetime.datetime.now(datetime.UTC), not_after) - datetime.timedelta(days=1)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = directory / "server.pem"
    path.write_bytes(
        certificate.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()))
    return path


def server_context(certificate: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate)
    return context
