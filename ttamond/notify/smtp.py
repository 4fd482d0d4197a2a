"""The e-mail sender: one message through an SMTP server, in a worker thread."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path

import msgspec
import trio

from ttamond.messages import Notification
from ttamond.notify.errors import DeliveryFailed, describe
from ttamond.notify.payloads import email_message
from ttamond.notify.settings import EmailChannel


async def send_email(channel: EmailChannel, notification: Notification, *, now_ms: int) -> None:
    """Mail the notification to every address in `to`.

    smtplib blocks, so it runs in a thread, abandoned (it ends at its own socket
    timeout) if the delivery is cancelled. Raises DeliveryFailed: permanent for a
    refused login, STARTTLS or AUTH the server does not offer, a certificate that does
    not verify and 5xx replies; transient for 4xx replies, timeouts and network errors.
    When only some recipients are refused, it is `partial` and a retry goes only to
    those refused for a transient reason.
    """
    message = email_message(notification, sender=channel.sender, to=channel.to,
                            subject_prefix=channel.subject_prefix, now_ms=now_ms)
    await trio.to_thread.run_sync(_send, channel, message, abandon_on_cancel=True)


def _send(channel: EmailChannel, message: EmailMessage) -> None:
    target = f"smtp {channel.host}:{channel.port}"
    password = _read_password(target, channel.password_file) if channel.password_file else ""
    try:
        with smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout) as server:
            if channel.starttls:
                server.starttls(context=ssl.create_default_context())
            if channel.username:
                server.login(channel.username, password)
            refused = server.send_message(message, from_addr=channel.sender,
                                          to_addrs=channel.to)
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryFailed(f"{target}: login as {channel.username!r} refused:"
                             f" {_reply(exc.smtp_code, exc.smtp_error)}", permanent=True) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise DeliveryFailed(f"{target}: {describe(exc)}", permanent=True) from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise _refused(target, channel, exc.recipients, partial=False) from None
    except smtplib.SMTPResponseException as exc:
        raise DeliveryFailed(f"{target}: {_reply(exc.smtp_code, exc.smtp_error)}",
                             permanent=exc.smtp_code >= 500) from None
    except ssl.SSLCertVerificationError as exc:
        raise DeliveryFailed(f"{target}: certificate not trusted: {exc.verify_message}",
                             permanent=True) from None
    except TimeoutError:
        raise DeliveryFailed(f"{target}: no answer within {channel.timeout:g} s") from None
    except smtplib.SMTPServerDisconnected as exc:
        raise DeliveryFailed(f"{target}: server hung up: {describe(exc)}") from None
    except OSError as exc:
        raise DeliveryFailed(f"{target}: {describe(exc)}") from None
    if refused:
        raise _refused(target, channel, refused, partial=True)


def _refused(target: str, channel: EmailChannel,
             refused: dict[str, tuple[int, bytes]], *, partial: bool) -> DeliveryFailed:
    details = "; ".join(f"{address}: {_reply(code, text)}"
                        for address, (code, text) in sorted(refused.items()))
    later = [address for address in channel.to if address in refused and refused[address][0] < 500]
    return DeliveryFailed(
        f"{target}: recipients refused: {details}",
        permanent=not later,
        retry=msgspec.structs.replace(channel, to=later) if later else None,
        partial=partial,
    )


def _reply(code: int, text: bytes | str) -> str:
    words = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {' '.join(words.split())}"


def _read_password(target: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        # A missing or unreadable secret will not appear between two tries.
        raise DeliveryFailed(f"{target}: cannot read password_file {path}: {exc.strerror}",
                             permanent=True) from None
