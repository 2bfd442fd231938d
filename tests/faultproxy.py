"""A small HTTP fault proxy for tests: it sits on 127.0.0.1 in front of Azurite and, per
request, forwards it or injects a fault: an HTTP status (429/500/503, with or without
Retry-After), a connection reset, a stall (the request is read, no answer comes), or an
outage (the port refuses connections).

Each client connection carries one request: the proxy reads the request head and its
Content-Length body, decides, and when it forwards it asks Azurite to close after answering,
then relays the answer and closes. The SDK (requests/urllib3) opens a new connection for the
next request. `log` records (method, path, action) for every request, so a test can see
that a failed request was retried and then passed.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus

# action for one request: "forward", "reset", "stall", or an HTTP status code (as int)
Action = str | int


@dataclass
class Fault:
    """Inject `action` into the next `count` requests whose "METHOD path" contains `match`."""

    action: Action
    count: int = 1
    match: str = ""
    retry_after: str | None = None


# A test's own rule: (method, path) -> an action, or a Fault (for its Retry-After).
Decide = Callable[[str, str], "Action | Fault"]


@dataclass
class FaultProxy:
    upstream: tuple[str, int]
    faults: list[Fault] = field(default_factory=list)
    decide: Decide | None = None  # a test's own rule, asked before `faults`
    log: list[tuple[str, str, str]] = field(default_factory=list)
    port: int = 0
    _server: socketserver.ThreadingTCPServer | None = None
    _release: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._handle(self.request)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._release.clear()
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def down(self) -> None:
        """An outage: stop listening (connections are refused) and drop stalled requests."""
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def up(self) -> None:
        """Back on the same port."""
        if self._server is None:
            self.start()

    def connection_string(self, azurite: str) -> str:
        """Azurite's connection string with its blob endpoint moved to this proxy."""
        host, port = self.upstream
        return azurite.replace(f"{host}:{port}", f"127.0.0.1:{self.port}")

    # --- one request -------------------------------------------------------------------

    def _action(self, method: str, path: str) -> tuple[Action, str | None]:
        with self._lock:
            if self.decide is not None:
                chosen = self.decide(method, path)
                if isinstance(chosen, Fault):
                    return chosen.action, chosen.retry_after
                if chosen != "forward":
                    return chosen, None
            for fault in self.faults:
                if fault.count > 0 and fault.match in f"{method} {path}":
                    fault.count -= 1
                    return fault.action, fault.retry_after
        return "forward", None

    def _handle(self, client: socket.socket) -> None:
        head, body = _read_request(client)
        if head is None:
            return
        method, path = head.split(b" ", 2)[:2]
        action, retry_after = self._action(method.decode(), path.decode())
        self.log.append((method.decode(), path.decode(), str(action)))
        if action == "reset":
            # SO_LINGER 0: close sends RST, the client sees "connection reset by peer".
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
        elif action == "stall":
            self._release.wait(timeout=120)
            client.close()
        elif isinstance(action, int):
            phrase = HTTPStatus(action).phrase
            extra = f"Retry-After: {retry_after}\r\n" if retry_after is not None else ""
            # Azure Storage's throttling answer names itself in x-ms-error-code.
            client.sendall(
                f"HTTP/1.1 {action} {phrase}\r\nContent-Length: 0\r\nConnection: close\r\n"
                f"x-ms-error-code: ServerBusy\r\n{extra}\r\n".encode()
            )
            client.close()
        else:
            self._forward(client, head, body)

    def _forward(self, client: socket.socket, head: bytes, body: bytes) -> None:
        lines = [line for line in head.split(b"\r\n")
                 if not line.lower().startswith(b"connection:")]  # fmt: skip
        request = b"\r\n".join([*lines, b"Connection: close", b"", b""]) + body
        with socket.create_connection(self.upstream, timeout=60) as upstream:
            upstream.sendall(request)
            while chunk := upstream.recv(65536):
                client.sendall(chunk)
        client.close()


def _read_request(conn: socket.socket) -> tuple[bytes | None, bytes]:
    """The request head (without the blank line) and its Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(min(65536, length - len(body)))
        if not chunk:
            break
        body += chunk
    return head, body
