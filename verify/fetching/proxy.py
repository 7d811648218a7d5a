"""An in-process HTTP proxy that holds every connection of one fetch to the egress policy.

yt-dlp does its own HTTP, through handlers and redirects this service does not control. Given
this proxy, every request it makes arrives here: ``CONNECT host:port`` for HTTPS, an absolute
``GET http://…`` for plain HTTP. The proxy resolves the host itself, checks every address
(``egress.connect_checked``), and connects to the address it checked, so neither DNS rebinding
nor a redirect to an internal host gets past it. It also bounds what the fetch may cost: bytes
received, redirects seen, total time and time without a byte.

A refusal or a limit is recorded on the ``EgressSession``: yt-dlp only sees a failed request,
and the fetch reports the recorded reason instead of whatever yt-dlp made of it.
"""

from __future__ import annotations

import logging
import selectors
import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from verify.fetching.egress import ALLOWED_SCHEMES, EgressPolicy, EgressRefused, connect_checked

logger = logging.getLogger(__name__)

_MAX_HEADER_BYTES = 64 * 1024
_MAX_HEADER_LINES = 200
_MAX_REQUEST_BODY_BYTES = 1024**2
_CHUNK_BYTES = 64 * 1024
# Hop-by-hop headers, and credentials meant for a proxy: never passed on.
_DROPPED_REQUEST_HEADERS = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te"})


@dataclass(frozen=True)
class FetchLimit:
    """A limit a fetch ran into: the failure code and the message a user sees."""

    code: str
    message: str


@dataclass
class EgressSession:
    """What one fetch did through the proxy. Shared by the proxy's threads; guarded by ``lock``."""

    policy: EgressPolicy
    max_bytes: int
    timeout_s: float
    stall_timeout_s: float
    max_redirects: int
    started: float = field(default_factory=time.monotonic)
    refusals: list[EgressRefused] = field(default_factory=list)
    limit: FetchLimit | None = None
    bytes_received: int = 0
    redirects: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def remaining_s(self) -> float:
        return self.timeout_s - (time.monotonic() - self.started)

    def refuse(self, refusal: EgressRefused) -> None:
        with self.lock:
            self.refusals.append(refusal)
        logger.warning("egress refused: %s", refusal.message)

    def limit_reached(self, code: str, message: str) -> None:
        with self.lock:
            if self.limit is None:
                self.limit = FetchLimit(code, message)
        logger.warning("fetch limit: %s", message)

    def receive(self, count: int) -> bool:
        """Count received bytes; return False (and record it) once the fetch has received too much."""
        with self.lock:
            self.bytes_received += count
            over = self.bytes_received > self.max_bytes
        if over:
            self.limit_reached("too_large", f"The source sent more than {self.max_bytes:,} bytes, the most fetched.")
        return not over

    def timed_out(self) -> bool:
        if self.remaining_s() > 0:
            return False
        self.limit_reached("fetch_timeout", f"The fetch took longer than {self.timeout_s:.0f} s, the most allowed.")
        return True

    def stalled(self) -> None:
        self.limit_reached(
            "fetch_stalled", f"The source sent nothing for {self.stall_timeout_s:.0f} s; the fetch was stopped."
        )


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, session: EgressSession):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.session = session


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        session = self.server.session
        self.connection.settimeout(session.stall_timeout_s)
        try:
            head = self._read_head(self.rfile)
            if head is None:
                return
            method, target, headers = head
            if session.timed_out():
                self._answer(504, "fetch_timeout")
            elif method == "CONNECT":
                self._tunnel(session, target)
            else:
                self._forward(session, method, target, headers)
        except (OSError, ValueError) as exc:
            logger.info("egress proxy: %s", exc)

    @staticmethod
    def _read_head(stream: Any) -> tuple[str, str, list[tuple[str, str]]] | None:
        line = stream.readline(_MAX_HEADER_BYTES).decode("latin-1").strip()
        if not line:
            return None
        method, target, _ = line.split(" ", 2)
        headers: list[tuple[str, str]] = []
        for _ in range(_MAX_HEADER_LINES):
            raw = stream.readline(_MAX_HEADER_BYTES).decode("latin-1")
            if raw in ("\r\n", "\n", ""):
                return method.upper(), target, headers
            name, _, value = raw.partition(":")
            headers.append((name.strip(), value.strip()))
        raise ValueError("too many header lines")

    def _answer(self, status: int, refused: str) -> None:
        self.wfile.write(
            f"HTTP/1.1 {status} Refused\r\nX-Verify-Refused: {refused}\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n".encode()
        )

    def _connect(self, session: EgressSession, host: str, port: int) -> socket.socket | None:
        try:
            return connect_checked(
                host, port, policy=session.policy, timeout_s=min(session.stall_timeout_s, session.remaining_s())
            )
        except EgressRefused as refusal:
            session.refuse(refusal)
            self._answer(403, "fetch_refused_address")
        return None

    def _tunnel(self, session: EgressSession, target: str) -> None:
        host, _, port_text = target.rpartition(":")
        upstream = self._connect(session, host.strip("[]"), int(port_text))
        if upstream is None:
            return
        with upstream:
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            _relay(session, self.connection, upstream)

    def _forward(self, session: EgressSession, method: str, target: str, headers: list[tuple[str, str]]) -> None:
        url = urlsplit(target)
        if url.scheme not in ALLOWED_SCHEMES or not url.hostname:
            self._answer(403, "unsupported_url")
            return
        upstream = self._connect(session, url.hostname, url.port or (443 if url.scheme == "https" else 80))
        if upstream is None:
            return
        with upstream:
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")
            kept = [(name, value) for name, value in headers if name.lower() not in _DROPPED_REQUEST_HEADERS]
            lines = [f"{method} {path} HTTP/1.1", *(f"{name}: {value}" for name, value in kept), "Connection: close"]
            upstream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            body_bytes = int(next((v for n, v in headers if n.lower() == "content-length"), "0") or 0)
            if body_bytes:
                upstream.sendall(self.rfile.read(min(body_bytes, _MAX_REQUEST_BODY_BYTES)))
            self._forward_response(session, upstream)

    def _forward_response(self, session: EgressSession, upstream: socket.socket) -> None:
        upstream.settimeout(min(session.stall_timeout_s, max(session.remaining_s(), 0.1)))
        reader = upstream.makefile("rb")
        try:
            status_line = reader.readline(_MAX_HEADER_BYTES)
        except TimeoutError:
            session.stalled()
            self._answer(504, "fetch_stalled")
            return
        head = [status_line]
        length = None
        for _ in range(_MAX_HEADER_LINES):
            raw = reader.readline(_MAX_HEADER_BYTES)
            if raw in (b"\r\n", b"\n", b""):
                # One request per connection to the proxy: the client must not send the next
                # one (a redirect, say) down this connection after the proxy has closed it.
                head += [b"Connection: close\r\n", b"\r\n"]
                break
            name, _, value = raw.decode("latin-1").partition(":")
            if name.strip().lower() in ("connection", "keep-alive", "proxy-connection"):
                continue
            head.append(raw)
            if name.strip().lower() == "content-length" and value.strip().isdigit():
                length = int(value.strip())
        status = int(status_line.split()[1]) if len(status_line.split()) > 1 else 0
        if 300 <= status < 400:
            with session.lock:
                session.redirects += 1
                too_many = session.redirects > session.max_redirects
            if too_many:
                session.limit_reached(
                    "too_many_redirects", f"The source redirected more than {session.max_redirects} times."
                )
                self._answer(502, "too_many_redirects")
                return
        if length is not None and length > session.max_bytes:
            # Refused on the header alone: not one byte of the body is read.
            session.limit_reached(
                "too_large", f"The source announced {length:,} bytes; the most fetched is {session.max_bytes:,}."
            )
            self._answer(502, "too_large")
            return
        self.wfile.write(b"".join(head))
        while True:
            if session.timed_out():
                return
            try:
                chunk = reader.read1(_CHUNK_BYTES)
            except TimeoutError:
                session.stalled()
                return
            if not chunk or not session.receive(len(chunk)):
                return
            self.wfile.write(chunk)


def _relay(session: EgressSession, client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes, a limit is reached, or the line goes quiet."""
    selector = selectors.DefaultSelector()
    selector.register(client, selectors.EVENT_READ, upstream)
    selector.register(upstream, selectors.EVENT_READ, client)
    last_sent = last_received = time.monotonic()
    with selector:
        while not session.timed_out():
            ready = selector.select(timeout=min(session.stall_timeout_s, max(session.remaining_s(), 0.1)))
            if not ready:
                if last_sent > last_received:  # a request is waiting for its answer; an idle pooled line is not
                    session.stalled()
                return
            for key, _ in ready:
                source: socket.socket = key.fileobj  # type: ignore[assignment]
                data = source.recv(_CHUNK_BYTES)
                if not data:
                    return
                if source is upstream:
                    last_received = time.monotonic()
                    if not session.receive(len(data)):
                        return
                else:
                    last_sent = time.monotonic()
                key.data.sendall(data)


class EgressProxy:
    """The proxy of one fetch, on 127.0.0.1 and an ephemeral port, for as long as the block runs."""

    def __init__(self, session: EgressSession):
        self.session = session
        self._server = _Server(session)
        self._thread = threading.Thread(target=self._server.serve_forever, name="verify-egress-proxy", daemon=True)

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def __enter__(self) -> EgressProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
