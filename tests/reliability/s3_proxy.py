"""A real HTTP proxy on 127.0.0.1 in front of the moto S3 server that fails requests on purpose.

Every S3 client in the tests (pyarrow's C++ SDK, boto3, pyiceberg) reaches moto through it, so
a test can make real requests fail the ways S3 does: 503 SlowDown (throttling), 500
InternalError, a connection closed before any response, or a response cut off mid-body.
Faults follow a deterministic schedule (every Nth matching request, at most so many times, or
forever), and the proxy counts requests and injected faults by kind. A transient fault never
hits the same request twice in a row (its retry passes), so whether a job survives does not
depend on how its requests happen to interleave; a permanent one fails every attempt. Requests that pass are
forwarded with their headers and body bytes unchanged; only the transfer framing
(``Transfer-Encoding: chunked``) is re-framed, which HTTP defines as per hop.
"""

from __future__ import annotations

import http.client
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

KINDS = ("slowdown", "internal", "reset", "truncate")
_ERRORS = {"slowdown": (503, "Slow Down", "SlowDown", "Please reduce your request rate."),
           "internal": (500, "Internal Server Error", "InternalError",
                        "We encountered an internal error. Please try again.")}
# Per-hop headers (RFC 9110 section 7.6.1) and the framing the proxy redoes itself.
_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "expect", "content-length"}


@dataclass
class Fault:
    """Inject ``kind`` into every ``every``-th request matching ``method`` and ``path``.

    ``path`` is a regular expression searched in ``/bucket/key`` (the query string excluded);
    ``times`` caps the injections (``None``: no cap); with ``every=1, times=None`` the fault is
    permanent, otherwise transient (see the module docstring). ``reset`` closes the
    connection before the request reaches S3; ``truncate`` forwards it, then sends the headers
    and half the body and closes, as a connection dropped mid-response.
    """

    kind: str
    every: int = 1
    times: int | None = 1
    method: str | None = None
    path: str | None = None
    matched: int = field(default=0, init=False)
    injected: int = field(default=0, init=False)

    def __post_init__(self):
        if self.kind not in KINDS or self.every < 1:
            raise ValueError(f"fault kind must be one of {KINDS} with every >= 1, got {self.kind!r}, {self.every}")

    @property
    def permanent(self) -> bool:
        return self.every == 1 and self.times is None

    def fires(self, method: str, path: str) -> bool:
        """Count a request; whether this one gets the fault."""
        if (self.method and method != self.method) or (self.path and not re.search(self.path, path)):
            return False
        self.matched += 1
        if self.matched % self.every or (self.times is not None and self.injected >= self.times):
            return False
        self.injected += 1
        return True


class S3FaultProxy:
    """Start with :meth:`start`; point ``AWS_ENDPOINT_URL`` at :attr:`url`; schedule with :meth:`set_faults`."""

    def __init__(self, upstream: str, latency: float = 0.0):
        """latency: seconds each request waits before it is forwarded, as S3's round trip (moto
        on 127.0.0.1 answers in about a millisecond, where S3 takes tens)."""
        self.latency = latency
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.requests: Counter = Counter()
        self.faults: Counter = Counter()
        self.injected: list[tuple[str, str, str]] = []
        self._retries: set[tuple[str, str]] = set()  # requests whose last attempt got a transient fault
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "S3FaultProxy":
        threading.Thread(target=self._server.serve_forever, name="s3-fault-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def set_faults(self, *faults: Fault) -> None:
        """Replace the schedule (none: forward everything) and zero the counters."""
        with self._lock:
            self._faults = list(faults)
            self.requests.clear()
            self.faults.clear()
            self.injected.clear()
            self._retries.clear()

    def counts(self) -> dict:
        """Requests by method (and in total), faults by kind, and each fault's (kind, method, path)."""
        with self._lock:
            return {"requests": dict(self.requests), "total": sum(self.requests.values()),
                    "faults": {kind: self.faults[kind] for kind in KINDS}, "injected": list(self.injected)}

    def wait_quiet(self, seconds: float = 3.0, limit: float = 90.0) -> None:
        """Return once no request has arrived for `seconds` (at most `limit`), so that a task still
        inside an S3 client's retry loop (which no Ray cancel interrupts) has had its chance to show."""
        deadline, last, since = time.monotonic() + limit, self.counts()["total"], time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - since < seconds:
            time.sleep(0.25)
            total = self.counts()["total"]
            if total != last:
                last, since = total, time.monotonic()

    def _decide(self, method: str, target: str) -> str | None:
        """The fault for this request, if any: the first rule that fires wins."""
        path = urlsplit(target).path
        with self._lock:
            self.requests[method] += 1
            retry = (method, target) in self._retries
            self._retries.discard((method, target))
            fault = next((f for f in self._faults if (f.permanent or not retry) and f.fires(method, path)), None)
            if fault is None:
                return None
            if not fault.permanent:
                self._retries.add((method, target))
            self.faults[fault.kind] += 1
            self.injected.append((fault.kind, method, path))
            return fault.kind


def _handler(proxy: S3FaultProxy):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive and 100-continue, as S3 clients expect
        upstream: http.client.HTTPConnection | None = None

        def log_message(self, format, *args):  # noqa: A002 - quiet: the counters are the record
            pass

        def _body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers: S3 clients put theirs inside the aws-chunked body instead
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _handle(self):
            body = self._body()
            time.sleep(proxy.latency)
            kind = proxy._decide(self.command, self.path)
            if kind in _ERRORS:
                return self._error(*_ERRORS[kind])
            if kind == "reset":
                return self._drop()
            status, reason, headers, payload = self._forward(body)
            self.send_response_only(status, reason)
            for name, value in headers:
                self.send_header(name, value)
            if self.command != "HEAD" and status not in (204, 304):
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if kind == "truncate":
                self.wfile.write(payload[:len(payload) // 2])
                return self._drop()
            self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        def _forward(self, body: bytes):
            for attempt in range(2):  # moto may have closed an idle keep-alive connection
                if self.upstream is None:
                    self.upstream = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                try:
                    self.upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                    for name, value in self.headers.items():
                        if name.lower() not in _HOP:
                            self.upstream.putheader(name, value)
                    self.upstream.putheader("Content-Length", str(len(body)))
                    self.upstream.endheaders(body)
                    resp = self.upstream.getresponse()
                    payload = resp.read()
                    headers = [(k, v) for k, v in resp.getheaders()
                               if k.lower() not in _HOP or (k.lower() == "content-length" and self.command == "HEAD")]
                    return resp.status, resp.reason, headers, payload
                except (ConnectionError, http.client.HTTPException):
                    self.upstream.close()
                    self.upstream = None
                    if attempt:
                        raise

        def _error(self, status: int, reason: str, code: str, message: str):
            xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
                   f"<Resource>{self.path}</Resource><RequestId>roomtone-fault-proxy</RequestId></Error>").encode()
            self.send_response_only(status, reason)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(xml)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(xml)

        def _drop(self):
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

        def finish(self):
            super().finish()
            if self.upstream is not None:
                self.upstream.close()

    return Handler
