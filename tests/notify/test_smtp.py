"""The e-mail sender against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import datetime
import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.notify import notification
from tests.probes.checks.servers import free_port, self_signed_certificate, server_context
from ttamond.notify.errors import DeliveryFailed
from ttamond.notify.settings import EmailChannel
from ttamond.notify.smtp import send_email


@dataclass
class Mailbox:
    """An aiosmtpd handler that keeps what it is sent and refuses some recipients."""

    refuse: dict[str, str] = field(default_factory=dict)
    messages: list[tuple[Envelope, EmailMessage]] = field(default_factory=list)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        if not isinstance(parsed, EmailMessage):
            raise TypeError("the default policy parses to EmailMessage")
        self.messages.append((envelope, parsed))
        return "250 Message accepted for delivery"


def authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                 auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (b"alerts", b"hunter2")
    # handled=False: aiosmtpd answers the refusal itself (535).
    return AuthResult(success=ok, handled=False)


@dataclass
class Server:
    mailbox: Mailbox
    port: int


def start(mailbox: Mailbox, **options: Any) -> tuple[Controller, int]:
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    return controller, port


@pytest.fixture
def smtp_server() -> Iterator[Server]:
    mailbox = Mailbox()
    controller, port = start(mailbox, auth_require_tls=False, authenticator=authenticate)
    try:
        yield Server(mailbox, port)
    finally:
        controller.stop()


def channel(port: int, **overrides: Any) -> EmailChannel:
    settings: dict[str, Any] = {"name": "mail", "host": "127.0.0.1", "port": port,
                                "sender": "ttamond@h.example",
                                "to": ["ops@h.example", "lead@h.example"], "timeout": 5.0}
    settings.update(overrides)
    return EmailChannel(**settings)


async def test_a_mail_reaches_every_recipient(smtp_server: Server) -> None:
    await send_email(channel(smtp_server.port), notification(), now_ms=1_714_564_800_000)
    ((envelope, message),) = smtp_server.mailbox.messages
    assert envelope.mail_from == "ttamond@h.example"
    assert envelope.rcpt_tos == ["ops@h.example", "lead@h.example"]
    assert message["From"] == "ttamond@h.example"
    assert message["To"] == "ops@h.example, lead@h.example"
    assert message["Subject"] == "[ttamond] [FIRING:1] HighCpu"
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content().replace("\r\n", "\n")
    assert text.startswith("[FIRING:1] HighCpu\n")
    assert "  Summary: HighCpu on web1\n" in text
    html = message.get_body(("html",))
    assert html is not None and "<h2>[FIRING:1] HighCpu</h2>" in html.get_content()


async def test_a_login_uses_the_password_file(smtp_server: Server, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("hunter2\n")
    await send_email(channel(smtp_server.port, username="alerts", password_file=str(secret)),
                     notification(), now_ms=0)
    assert len(smtp_server.mailbox.messages) == 1
    secret.write_text("wrong\n")
    with pytest.raises(DeliveryFailed, match=r"^smtp 127\.0\.0\.1:\d+: login as 'alerts'"
                                             r" refused: 535 ") as failed:
        await send_email(channel(smtp_server.port, username="alerts",
                                 password_file=str(secret)), notification(), now_ms=0)
    assert failed.value.permanent


async def test_a_refused_connection_is_a_clear_transient_error() -> None:
    port = free_port()
    with pytest.raises(DeliveryFailed,
                       match=rf"^smtp 127\.0\.0\.1:{port}: connection refused$") as failed:
        await send_email(channel(port), notification(), now_ms=0)
    assert not failed.value.permanent


async def test_refused_recipients_are_named_and_only_transient_ones_retried(
        smtp_server: Server) -> None:
    smtp_server.mailbox.refuse["lead@h.example"] = "450 4.2.1 mailbox busy"
    with pytest.raises(DeliveryFailed, match=r"recipients refused: lead@h\.example: 450 4\.2\.1"
                                             r" mailbox busy$") as failed:
        await send_email(channel(smtp_server.port), notification(), now_ms=0)
    assert failed.value.partial and not failed.value.permanent
    retry = failed.value.retry
    assert isinstance(retry, EmailChannel) and retry.to == ["lead@h.example"]
    assert [env.rcpt_tos for env, _ in smtp_server.mailbox.messages] == [["ops@h.example"]]

    smtp_server.mailbox.refuse.update({"ops@h.example": "550 5.1.1 no such user",
                                       "lead@h.example": "550 5.1.1 no such user"})
    with pytest.raises(DeliveryFailed, match=r"recipients refused: lead@h\.example: 550 5\.1\.1"
                                             r" no such user; ops@h\.example: 550") as failed:
        await send_email(channel(smtp_server.port), notification(), now_ms=0)
    assert failed.value.permanent and not failed.value.partial


async def test_starttls_that_is_not_offered_or_not_trusted_is_permanent(
        smtp_server: Server, tmp_path: Path) -> None:
    with pytest.raises(DeliveryFailed, match=r"STARTTLS extension not supported") as failed:
        await send_email(channel(smtp_server.port, starttls=True), notification(), now_ms=0)
    assert failed.value.permanent

    not_after = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)
    context = server_context(self_signed_certificate(tmp_path, not_after=not_after))
    controller, port = start(Mailbox(), tls_context=context)
    try:
        with pytest.raises(DeliveryFailed, match=r"certificate not trusted: self.signed") \
                as failed:
            await send_email(channel(port, starttls=True), notification(), now_ms=0)
        assert failed.value.permanent
    finally:
        controller.stop()
