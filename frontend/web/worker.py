"""gunicorn's gthread worker with a probe lane: `/livez`, `/readyz`, `/health` and `/metrics`
never wait for a thread behind page requests.

In gunicorn's gthread worker (gunicorn/workers/gthread.py, 27.0) the main thread accepts
connections (`accept`) and hands each one to ONE thread pool (`enqueue_req`); a request is
read and answered by whichever pool thread takes it. When every thread waits on a slow
backend, a probe waits behind them: with the backend stalled, `/livez` took up to 30 s, long
enough for a liveness probe to restart a healthy frontend.

This worker keeps a second, small pool for the probes and decides per request which pool
serves it, from the request line, before any thread is committed:

- `enqueue_req` peeks (MSG_PEEK: nothing is consumed; the parser reads the same bytes later)
  at the first bytes of a readable connection; `GET`/`HEAD` of a probe path goes to the probe
  pool, anything else to gunicorn's pool, exactly as before.
- `accept` does not hand a fresh connection to a pool thread before its request has arrived
  (gthread's `handle` would wait for it inside a pool thread): it parks it in the main loop's
  poller, as gthread itself does with a connection whose data is late (its `pending_conns`
  and `on_pending_socket_readable`), and enqueues it once readable.

`request_arrived_at()` tells the app when the request it serves became readable here, so the
backend client can count the time a page waited for a thread against its budget
(web/backend_client.py).

Kept-alive connections come back through `on_client_socket_readable` -> `enqueue_req`, so
every request of a connection is routed on its own. TLS connections (gunicorn terminating
TLS, not used here: TLS ends at the proxy) cannot be peeked and go to the main pool.
"""

from __future__ import annotations

import errno
import re
import selectors
import socket
import threading
import time
from concurrent import futures
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

_arrival = threading.local()


def request_arrived_at() -> float | None:
    """`time.monotonic()` when the current request became readable in this worker's main loop
    (before it waited for a thread), or None outside a ProbeLaneWorker request thread."""
    return getattr(_arrival, "at", None)


# Threads of the probe lane per worker. The probes are milliseconds of work (/readyz and
# /health call the backend at most for READINESS_TIMEOUT_SECONDS, and not at all while the
# circuit breaker is open), so a few threads serve any probe rate.
PROBE_THREADS = 4
_PROBE_REQUEST = re.compile(rb"^(?:GET|HEAD) /(?:livez|readyz|health|metrics)(?:[ ?])")


def is_probe(first_bytes: bytes) -> bool:
    """Whether an HTTP/1.x request starting with `first_bytes` is a probe or the scrape."""
    return _PROBE_REQUEST.match(first_bytes) is not None


def _peek(sock: socket.socket) -> bytes:
    """The bytes waiting on `sock` (at most a request line's start), without consuming them;
    b"" when none are there yet or the socket cannot be peeked."""
    try:
        return sock.recv(32, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError, OSError, ValueError):
        return b""


class ProbeLaneWorker(ThreadWorker):
    """`worker_class = "web.worker.ProbeLaneWorker"` (gunicorn.conf.py); see the module doc."""

    probe_pool: futures.ThreadPoolExecutor

    def init_process(self) -> None:
        self.probe_pool = futures.ThreadPoolExecutor(
            max_workers=PROBE_THREADS, thread_name_prefix="probe"
        )
        super().init_process()

    def enqueue_req(self, conn: Any) -> None:
        """Submit `conn` to the probe pool when its request is a probe, else as gthread does."""
        conn.arrived_at = time.monotonic()  # the page budget counts the wait for a thread
        if self.cfg.is_ssl or not is_probe(_peek(conn.sock)):
            super().enqueue_req(conn)
            return
        future = self.probe_pool.submit(self.handle, conn)
        future.add_done_callback(
            lambda fut: self.method_queue.defer(self.finish_request, conn, fut)
        )

    def accept(self, listener: Any) -> None:
        """Accept a connection; route it once its request arrived (see the module doc)."""
        try:
            client_sock, client_addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        client_sock.setblocking(True)
        conn = self._new_conn(client_sock, client_addr, listener)
        if _peek(conn.sock):
            self.enqueue_req(conn)
            return
        # Nothing to read yet: wait in the poller (no thread), like gthread's deferred
        # connections, then enqueue_req routes it (on_pending_socket_readable).
        conn.sock.setblocking(False)
        conn.timeout = time.monotonic() + self.cfg.keepalive
        self.pending_conns.append(conn)
        self.poller.register(
            conn.sock, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn)
        )

    def handle(self, conn: Any) -> Any:
        """gthread's `handle`, with the request's arrival time visible to the app's thread."""
        _arrival.at = getattr(conn, "arrived_at", None)
        try:
            return super().handle(conn)
        finally:
            _arrival.at = None

    def _new_conn(self, client_sock: socket.socket, client_addr: Any, listener: Any) -> Any:
        return TConn(self.cfg, client_sock, client_addr, listener.getsockname())

    def run(self) -> None:
        try:
            super().run()
        finally:
            self.probe_pool.shutdown(wait=False)

    def handle_quit(self, sig: int, frame: Any) -> None:
        self.probe_pool.shutdown(wait=False)
        super().handle_quit(sig, frame)
