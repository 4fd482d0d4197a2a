"""Connecting to a checked service over trio, with failures put as one actionable line."""

from __future__ import annotations

import errno
import os
import socket

import trio


class CheckFailed(Exception):
    """The checked service is down or answered wrongly; str() is the result's message."""


def place(host: str, port: int) -> str:
    """host:port as a person would type it, IPv6 addresses in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def open_connection(host: str, port: int) -> trio.SocketStream:
    """A TCP connection to host:port. Raises CheckFailed when none can be made."""
    try:
        return await trio.open_tcp_stream(host, port)
    except OSError as exc:
        raise CheckFailed(connect_failure(exc, host, port)) from exc


def connect_failure(exc: OSError, host: str, port: int) -> str:
    """Why a connection failed, from trio.open_tcp_stream's error: it raises a bare
    OSError whose cause groups the error of each address tried."""
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {host}: {exc.strerror}"
    attempts = [exc]
    if isinstance(exc.__cause__, BaseExceptionGroup):
        attempts = [error for error in exc.__cause__.exceptions if isinstance(error, OSError)]
    codes = [error.errno for error in attempts if error.errno is not None]
    if errno.ECONNREFUSED in codes:
        return f"connection refused on {place(host, port)}"
    if codes:
        # The error's own text repeats the address as a tuple; the code's text reads better.
        return f"cannot connect to {place(host, port)}: {os.strerror(codes[0])}"
    return f"cannot connect to {place(host, port)}: {exc}"
