"""One HTTP/1.1 GET over trio and h11, keeping the server's TLS certificate for its expiry."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11
import trio
from cryptography import x509

from ttamond.probes.checks._network import CheckFailed, open_connection, place

BODY_LIMIT = 1 << 20
"""Bytes of the body kept (and searched); the rest is not read."""

_USER_AGENT = "ttamond-check"


@dataclass(frozen=True, slots=True)
class Target:
    """Where a URL points."""

    url: str
    tls: bool
    host: str
    port: int
    host_header: str
    path: str

    @classmethod
    def parse(cls, url: str) -> Target:
        """Raises ValueError for a URL that is not http(s):// with a host."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http:// or https:// URL: {url!r}")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = parts.netloc.rpartition("@")[2]
        return cls(url, tls, parts.hostname, port, host_header, path)


@dataclass(frozen=True, slots=True)
class Response:
    """What came back: the status, the first BODY_LIMIT bytes of the body, and for
    HTTPS the expiry of the certificate the server presented."""

    status: int
    body: bytes
    certificate_expires: datetime.datetime | None


async def fetch(
    target: Target,
    *,
    verify_tls: bool = True,
    ca_file: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
) -> Response:
    """GET `target` on a connection of its own, closed afterwards. Raises CheckFailed
    when the server cannot be reached, fails TLS or breaks HTTP; a timeout is the
    caller's cancel scope."""
    stream: trio.abc.Stream = await open_connection(target.host, target.port)
    try:
        expires = None
        if target.tls:
            stream, expires = await _start_tls(stream, target, verify_tls, ca_file)
        return await _exchange(stream, target, headers, expires)
    finally:
        await trio.aclose_forcefully(stream)


async def _start_tls(
    stream: trio.abc.Stream, target: Target, verify_tls: bool, ca_file: str | None,
) -> tuple[trio.SSLStream[trio.abc.Stream], datetime.datetime | None]:
    context = ssl.create_default_context(cafile=ca_file)
    if not verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    # https_compatible: servers commonly close without a TLS close_notify.
    tls = trio.SSLStream(stream, context, server_hostname=target.host, https_compatible=True)
    try:
        await tls.do_handshake()
    except trio.BrokenResourceError as exc:
        raise CheckFailed(_tls_failure(exc.__cause__, target)) from exc
    # The binary form is there whether or not the certificate was verified; the
    # decoded form is empty for an unverified one.
    der = tls.getpeercert(binary_form=True)
    if not isinstance(der, bytes):
        return tls, None
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise CheckFailed(f"unreadable TLS certificate from {place(target.host, target.port)}: "
                          f"{exc}") from exc
    return tls, certificate.not_valid_after_utc


def _tls_failure(cause: BaseException | None, target: Target) -> str:
    where = place(target.host, target.port)
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"TLS certificate of {where} failed verification: {cause.verify_message}"
    if isinstance(cause, ssl.SSLError):
        return f"TLS handshake with {where} failed: {cause.reason or cause}"
    return f"connection to {where} closed during the TLS handshake"


async def _exchange(
    stream: trio.abc.Stream, target: Target, headers: Sequence[tuple[str, str]],
    expires: datetime.datetime | None,
) -> Response:
    connection = h11.Connection(h11.CLIENT)
    request = h11.Request(method="GET", target=target.path, headers=[
        ("Host", target.host_header), ("User-Agent", _USER_AGENT), ("Accept", "*/*"),
        ("Connection", "close"), *headers])
    status: int | None = None
    body = bytearray()
    try:
        await stream.send_all(connection.send(request) + connection.send(h11.EndOfMessage()))
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(bytes(await stream.receive_some(65536)))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) >= BODY_LIMIT:
                    break
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
            elif event is h11.PAUSED:
                # Only after a whole response; anything read past it is not ours.
                break
    except trio.BrokenResourceError as exc:
        raise CheckFailed(f"connection to {target.url} broke: {exc.__cause__ or exc}") from exc
    except h11.RemoteProtocolError as exc:
        raise CheckFailed(f"bad HTTP response from {target.url}: {exc}") from exc
    if status is None:
        raise CheckFailed(f"no HTTP response from {target.url}")
    return Response(status, bytes(body[:BODY_LIMIT]), expires)
