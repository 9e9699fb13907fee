"""The HTTP side of ``tidelog serve``: uvicorn's httptools protocol with deadlines and connection limits.

uvicorn has no deadline for a request's headers and no minimum body rate, and its keep-alive timer
is armed only after a response and cancelled by any byte, so a client that sends one header byte a
second, or declares a large ``Content-Length`` and trickles it, holds its connection (and its
request's in-flight slot) for ever. ``BrokerHttpProtocol`` adds, per connection:

- **connection limits** at accept, named after Kafka's socket-server settings: ``max_connections``
  (503, error_code 50310) and ``max_connections_per_ip`` with ``max_connections_per_ip_overrides``
  (429, 42902). The answer is written at once and the connection closed, before any request is
  read. A peer listed in ``forwarded_allow_ips`` is a proxy carrying many clients: it counts
  towards ``max_connections`` only.
- **a header deadline**: from the connection's first byte (or its accept), the request line and
  headers must be complete within ``request_header_timeout_ms``, else 408 (40801) and close.
- **a minimum body rate**: after ``request_body_grace_ms``, a request body must have arrived at
  ``request_body_min_rate_bytes_per_s`` on average, else 408 (40802) if no answer has started,
  and close. Time during which the broker itself stopped reading (backpressure) does not count,
  as in Kestrel's MinRequestBodyDataRate.
- **an idle deadline**: ``connections_max_idle_ms`` between requests (uvicorn's keep-alive
  timeout, which the broker sets to it).
- **a send deadline**: an answer whose client reads nothing for ``sse_send_timeout_ms`` (the
  socket's write buffer stays above its high-water mark, so uvicorn's ``send`` waits) has its
  connection aborted. uvicorn's ``send`` would wait for ever, holding the stream's chunk and its
  fetched records; an event stream is where this matters, and its client resumes with
  ``Last-Event-ID``. An event stream's socket also gets a kernel send buffer of
  ``sse_max_buffer_bytes`` (``SO_SNDBUF``) instead of one that autotunes up to 4 MiB, so 2,000
  streams whose clients stopped reading hold neither process nor kernel memory without bound.
- **malformed requests** answered ``application/problem+json`` 400 (40003) instead of uvicorn's
  plain text.

``check_fd_budget`` compares RLIMIT_NOFILE with what ``max_connections`` and the logs need before
the server starts, raising the soft limit when the hard one allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import Settings
from app.error_codes import ErrorCode
from app.errors import PROBLEM_JSON, problem_body
from app.security.authn.scheme import PEER_PRINCIPAL_KEY
from app.security.authn.tls import parse_rules, principal_of_certificate

__all__ = ["BrokerHttpProtocol", "ConnectionGuard", "check_fd_budget", "protocol_class", "trusted_proxies"]

logger = logging.getLogger("tidelog.server")

#: How often a connection's body rate is checked (seconds).
_RATE_CHECK_S = 0.5
#: After a refusal is written, how long the connection stays half-closed, reading and dropping what
#: the client still sends: closing at once with unread bytes would reset the connection (RST) and
#: the client could lose the answer.
_LINGER_S = 1.0
#: File descriptors kept aside for the catalog, logs being rolled or compacted, pipes and the like.
FD_RESERVE = 256


def trusted_proxies(settings: Settings) -> Callable[[str | None], bool]:
    """``host in forwarded_allow_ips``, with uvicorn's own parsing of the list (IPs, CIDRs, ``*``)."""
    middleware = ProxyHeadersMiddleware(_no_app, trusted_hosts=settings.forwarded_allow_ips)
    hosts = middleware.trusted_hosts
    return lambda host: host in hosts


async def _no_app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - never called
    raise RuntimeError("only the trusted-host list of this middleware is used")


class ConnectionGuard:
    """Counts open connections overall and per peer address; shared by every connection of a server."""

    def __init__(self, settings: Settings) -> None:
        self.max_connections = settings.max_connections
        self.max_per_ip = settings.max_connections_per_ip
        self.overrides = settings.connection_overrides
        self.is_proxy = trusted_proxies(settings)
        # mTLS: the peer certificate's principal (app/security/authn/tls.py), when certificates are asked for.
        self.client_certificates = settings.ssl_ca_certs is not None
        self.principal_rules = parse_rules(settings.ssl_principal_mapping_rules)
        self.header_timeout_s = settings.request_header_timeout_ms / 1000
        self.min_rate = settings.request_body_min_rate_bytes_per_s
        self.grace_s = settings.request_body_grace_ms / 1000
        self.send_timeout_s = settings.sse_send_timeout_ms / 1000
        self.stream_send_buffer = settings.sse_max_buffer_bytes
        self.total = 0
        self.by_ip: Counter[str] = Counter()
        self.closed_by: Counter[str] = Counter()  # reason → connections closed by a limit (logs, tests)

    def admit(self, host: str) -> tuple[ErrorCode, str] | None:
        """Count a new connection from ``host``; the refusal (code, detail) when over a limit."""
        if self.total >= self.max_connections:
            return ErrorCode.TOO_MANY_CONNECTIONS, (
                f"the broker has {self.total} open connections, its limit (max_connections)"
            )
        if not self.is_proxy(host):
            limit = self.overrides.get(host, self.max_per_ip)
            if self.by_ip[host] >= limit:
                return ErrorCode.TOO_MANY_CONNECTIONS_PER_IP, (
                    f"{host} has {self.by_ip[host]} open connections, the limit per address "
                    "(max_connections_per_ip)"
                )
        self.total += 1
        self.by_ip[host] += 1
        return None

    def leave(self, host: str) -> None:
        self.total -= 1
        left = self.by_ip[host] - 1
        if left > 0:
            self.by_ip[host] = left
        else:
            del self.by_ip[host]


def _problem_bytes(code: ErrorCode, detail: str, *, retry_after: bool = False) -> bytes:
    """A complete ``Connection: close`` HTTP/1.1 answer with a problem+json body."""
    body = orjson.dumps(problem_body(code, detail))
    status = code.http_status
    reason = {400: "Bad Request", 408: "Request Timeout", 429: "Too Many Requests",
              503: "Service Unavailable"}.get(status, "Error")
    head = [
        f"HTTP/1.1 {status} {reason}",
        f"content-type: {PROBLEM_JSON}",
        f"content-length: {len(body)}",
        "connection: close",
    ]
    if retry_after:
        head.append("retry-after: 1")
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body


class _CoalescedWrites:
    """A response's transport that sends its head and its body in one ``write`` (one syscall, one
    TCP segment for a small answer) when the answer has a ``Content-Length``.

    uvicorn writes the status line and headers when ``http.response.start`` arrives and the body
    when ``http.response.body`` does: two ``send`` calls per request, about a sixth of the broker's
    CPU for a single-record produce (py-spy, docs/benchmarks.md). A response of known length sends
    its body right after its start, so the head is held until then; a streamed (chunked) answer, a
    ``100 Continue`` and everything else are written at once, as before.
    """

    __slots__ = ("_cycle", "_head_seen", "_held", "_transport")

    def __init__(self, transport: asyncio.Transport, cycle: Any) -> None:
        self._transport = transport
        self._cycle = cycle
        self._held: bytes | None = None
        #: Only the head is ever held: every write after it goes out at once.
        self._head_seen = False

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
            return
        cycle = self._cycle
        if (
            not self._head_seen
            and cycle.response_started
            and cycle.chunked_encoding is False
            and not cycle.response_complete
            and cycle.scope["method"] != "HEAD"  # uvicorn writes no body for HEAD: nothing would follow
        ):
            # The head of a response with a Content-Length: its body follows in the next write.
            self._head_seen = True
            self._held = data
            return
        self._transport.write(data)

    def close(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._transport.write(held)
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class BrokerHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of this module; ``guard`` is set by ``protocol_class``."""

    guard: ConnectionGuard

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._peer = "-"
        self._admitted = False
        self._header_timer: asyncio.TimerHandle | None = None
        self._rate_timer: asyncio.TimerHandle | None = None
        self._send_timer: asyncio.TimerHandle | None = None
        self._body_started = 0.0
        self._body_paused_s = 0.0
        self._body_bytes = 0
        self._lingering = False
        self._peer_principal: str | None = None

    # --- connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._peer = self.client[0] if self.client else "-"
        refusal = self.guard.admit(self._peer)
        if refusal is not None:
            code, detail = refusal
            self.guard.closed_by[code.name] += 1
            logger.warning("connection from %s refused: %s", self._peer, detail)
            self._answer_and_close(_problem_bytes(code, detail, retry_after=True))
            return
        self._admitted = True
        self._peer_principal = self._certificate_principal(transport)
        self._arm_header_deadline()

    def _certificate_principal(self, transport: asyncio.Transport) -> str | None:
        """The mapped principal of the verified client certificate (the handshake is over here)."""
        if not self.guard.client_certificates:
            return None
        ssl_object = transport.get_extra_info("ssl_object")
        certificate = ssl_object.getpeercert() if ssl_object is not None else None
        return principal_of_certificate(certificate, self.guard.principal_rules)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        if self._admitted:
            self._admitted = False
            self.guard.leave(self._peer)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._admitted or self._lingering:
            return  # refused or cut off: the answer is written, the connection closing
        if self._header_timer is None and (self.cycle is None or self.cycle.response_complete):
            self._arm_header_deadline()  # the first byte of the next request on a kept-alive connection
        super().data_received(data)

    def pause_writing(self) -> None:
        """The write buffer is above its high-water mark: the client has this long to read some."""
        super().pause_writing()
        if self._send_timer is None and not self._lingering:
            self._send_timer = self.loop.call_later(self.guard.send_timeout_s, self._send_timeout)

    def resume_writing(self) -> None:
        self._cancel_send_timer()
        super().resume_writing()

    def send_400_response(self, msg: str) -> None:
        self._cancel_timers()
        detail = "the bytes received are not an HTTP/1.1 request (malformed request line, header or framing)"
        self._answer_and_close(_problem_bytes(ErrorCode.MALFORMED_HTTP_REQUEST, detail))

    # --- parser callbacks

    def on_headers_complete(self) -> None:
        self._cancel_header_deadline()
        if self._peer_principal is not None:
            self.scope[PEER_PRINCIPAL_KEY] = self._peer_principal  # type: ignore[typeddict-unknown-key]
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and str(cycle.scope.get("path", "")).endswith("/events"):
            self._bound_send_buffer()
        if cycle is not None and self.transport is not None:
            cycle.transport = _CoalescedWrites(self.transport, cycle)  # type: ignore[assignment]
        if self.guard.min_rate > 0 and cycle is not None and cycle.more_body and self._expects_body():
            self._body_started = time.monotonic()
            self._body_paused_s = 0.0
            self._body_bytes = 0
            self._rate_timer = self.loop.call_later(_RATE_CHECK_S, self._check_rate, self._body_started)

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._cancel_rate_timer()
        super().on_message_complete()

    # --- deadlines

    def _bound_send_buffer(self) -> None:
        """An event stream's kernel send buffer: ``sse_max_buffer_bytes``, not autotuned up to 4 MiB."""
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.guard.stream_send_buffer)

    def _expects_body(self) -> bool:
        for name, value in self.headers:
            if name == b"content-length":
                return value.strip() not in (b"0", b"")
            if name == b"transfer-encoding":
                return True
        return False

    def _arm_header_deadline(self) -> None:
        self._header_timer = self.loop.call_later(self.guard.header_timeout_s, self._header_timeout)

    def _cancel_header_deadline(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _cancel_rate_timer(self) -> None:
        if self._rate_timer is not None:
            self._rate_timer.cancel()
            self._rate_timer = None

    def _cancel_send_timer(self) -> None:
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None

    def _cancel_timers(self) -> None:
        self._cancel_header_deadline()
        self._cancel_rate_timer()
        self._cancel_send_timer()

    def _send_timeout(self) -> None:
        self._send_timer = None
        if self.transport.is_closing() and not self.flow.write_paused:
            return
        self.guard.closed_by["send_timeout"] += 1
        logger.info(
            "aborting the connection from %s: it read nothing for %.0f ms (sse_send_timeout_ms)",
            self._peer, self.guard.send_timeout_s * 1000,
        )
        # abort, not close: close would wait for the unread buffer to drain, which it never does.
        # connection_lost follows, which ends the answer's ``send`` wait and cancels the stream.
        self.transport.abort()

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being served (pipelining): its own deadlines apply
        self.guard.closed_by["header_timeout"] += 1
        detail = f"the request's headers did not arrive within {self.guard.header_timeout_s * 1000:.0f} ms"
        self._close_with(ErrorCode.REQUEST_HEADER_TIMEOUT, detail)

    def _check_rate(self, started: float) -> None:
        self._rate_timer = None
        if self.transport.is_closing() or started != self._body_started or self.cycle is None:
            return
        if not self.cycle.more_body:
            return
        if self.flow.read_paused:
            # The broker is not reading (the body is buffered up to its high-water mark): not the
            # client's fault, so this interval does not count against its rate.
            self._body_paused_s += _RATE_CHECK_S
        else:
            elapsed = time.monotonic() - started - self._body_paused_s
            if elapsed > self.guard.grace_s and self._body_bytes < self.guard.min_rate * elapsed:
                self.guard.closed_by["body_too_slow"] += 1
                detail = (
                    f"the request body arrived at {self._body_bytes / elapsed:.0f} bytes/s, below the "
                    f"minimum of {self.guard.min_rate} bytes/s (request_body_min_rate_bytes_per_s)"
                )
                self._close_with(ErrorCode.REQUEST_BODY_TOO_SLOW, detail)
                return
        self._rate_timer = self.loop.call_later(_RATE_CHECK_S, self._check_rate, started)

    def _close_with(self, code: ErrorCode, detail: str) -> None:
        logger.info("closing connection from %s: %s", self._peer, detail)
        cycle = self.cycle
        answer = _problem_bytes(code, detail) if cycle is None or not cycle.response_started else b""
        if cycle is not None:
            cycle.disconnected = True  # the handler's answer, if it comes, is dropped by uvicorn
            cycle.message_event.set()  # a handler waiting for the body sees http.disconnect
        self._answer_and_close(answer)

    def _answer_and_close(self, answer: bytes) -> None:
        """Write ``answer``, half-close, drop whatever still arrives, close after ``_LINGER_S``."""
        self._lingering = True
        self._cancel_timers()
        transport = self.transport
        if answer:
            transport.write(answer)
        if transport.can_write_eof():
            transport.write_eof()
        self.flow.resume_reading()  # keep reading (and dropping) so the close is not a reset
        self.loop.call_later(_LINGER_S, transport.close)


def protocol_class(guard: ConnectionGuard) -> type[BrokerHttpProtocol]:
    """A ``BrokerHttpProtocol`` subclass bound to ``guard`` (uvicorn instantiates the class itself)."""
    return type("BoundBrokerHttpProtocol", (BrokerHttpProtocol,), {"guard": guard})


def _log_fds_needed(data_dir: Path) -> int:
    """Descriptors the logs hold open: one per segment file and one lock per partition directory."""
    if not data_dir.is_dir():
        return 0
    needed = 0
    for child in data_dir.iterdir():
        if child.is_dir():
            needed += 1 + sum(1 for f in child.iterdir() if f.suffix == ".log")
    return needed


def check_fd_budget(settings: Settings) -> Settings:
    """The settings to serve with once RLIMIT_NOFILE covers ``max_connections`` plus the logs' needs.

    Raises the soft limit towards the hard one when it is too low. When even the hard limit is too
    low: a ``max_connections`` set explicitly is refused (``SystemExit`` with the figures); the
    default is lowered to what fits, with a warning, so the broker refuses connections with 503
    rather than failing ``accept`` with EMFILE.
    """
    logs = _log_fds_needed(settings.data_dir)
    needed = settings.max_connections + logs + FD_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            logger.info("raised the open-file limit (RLIMIT_NOFILE) from %d to %d", soft, target)
            soft = target
        except (ValueError, OSError) as exc:
            logger.warning("cannot raise the open-file limit from %d: %s", soft, exc)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return settings
    fits = soft - logs - FD_RESERVE
    message = (
        f"the open-file limit (RLIMIT_NOFILE) is {soft} (hard {hard}); "
        f"max_connections={settings.max_connections} needs {needed} with the logs' {logs} "
        f"descriptors and {FD_RESERVE} in reserve"
    )
    if "max_connections" in settings.model_fields_set or fits < 1:
        raise SystemExit(f"tidelog serve: {message}; raise `ulimit -n` or lower --max-connections")
    logger.warning("%s: serving with max_connections=%d instead", message, fits)
    return settings.model_copy(update={"max_connections": fits})
