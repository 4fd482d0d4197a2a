"""A real webhook receiver on loopback, in a thread: records each JSON body it is sent."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """Answers 200 to every POST and keeps its JSON body, for tests that drive a daemon
    subprocess (a thread, not trio: the test itself blocks on the daemon)."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return  # the test reads `received`; nothing to say on stderr

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def statuses(self) -> list[str]:
        """The `status` of each body received, in order."""
        return [body["status"] for body in self.received]

    def notified(self, status: str, alertname: str, instance: str) -> int:
        """Alerts of this name and instance notified with this status, over all bodies
        (Alertmanager's webhook payload)."""
        return sum(1 for body in self.received for alert in body["alerts"]
                   if alert["status"] == status
                   and alert["labels"].get("alertname") == alertname
                   and alert["labels"].get("instance") == instance)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
