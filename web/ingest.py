"""POST /api/v1/ingest: batches from containers and other hosts, with body limits and
bearer-token access for anything not on loopback."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ttamond.ingest.decode import AckMode, BatchRefused, decode_request
from ttamond.receipts import NotStored

IngestFunction = Callable[[list[msgspec.Raw], AckMode, str | None], Awaitable[object]]
ErrorResponse = Callable[..., Response]
RETRY_AFTER_S = "5"


def ingest_endpoint(
    ingest: IngestFunction,
    *,
    max_body_bytes: int,
    token: str,
    json_response: Callable[[object, int], Response],
    error_response: ErrorResponse,
) -> Callable[[Request], Awaitable[Response]]:
    """The route handler. `token` empty means only loopback clients may ingest."""
    expected = token.encode()

    async def endpoint(request: Request) -> Response:
        refused = check_access(request, expected, error_response)
        if refused is not None:
            return refused
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_body_bytes:
            return _too_large(error_response, max_body_bytes)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body_bytes:
                return _too_large(error_response, max_body_bytes)
        try:
            batch = decode_request(bytes(body))
            result = await ingest(batch.messages, batch.ack, batch.batch_id)
        except BatchRefused as exc:
            status = 413 if exc.code == "batch_too_large" else 400
            return error_response(status, exc.code, exc.message)
        except NotStored as exc:
            return error_response(503, "not_stored", str(exc), {"Retry-After": RETRY_AFTER_S})
        return json_response(result, 200)

    return endpoint


def check_access(request: Request, expected: bytes, error_response: ErrorResponse, *,
                 what: str = "ingest") -> Response | None:
    """None when the request may write: it comes from loopback (or a Unix socket), or
    carries the bearer token. Otherwise the 401 or 403 response to send."""
    if _is_local(request):
        return None
    if not expected:
        return error_response(403, "forbidden", f"{what} from other hosts needs [ingest]"
                              " token (or token_file) set on the daemon")
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    # Constant-time, so the comparison's duration says nothing about the token.
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(),
                                                             expected):
        return error_response(401, "unauthorized", "a valid bearer token is required",
                              {"WWW-Authenticate": 'Bearer realm="ttamond"'})
    return None


def _is_local(request: Request) -> bool:
    client = request.client
    if client is None or not client.host:
        return True  # a Unix socket: its file permissions decided already
    try:
        address = ipaddress.ip_address(client.host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _too_large(error_response: ErrorResponse, limit: int) -> Response:
    return error_response(413, "request_too_large",
                          f"body exceeds {limit} bytes (ingest.max_body_bytes)")
