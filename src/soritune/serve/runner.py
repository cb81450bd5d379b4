"""Run the app under uvicorn: in the foreground (`soritune serve`) or in a thread (tests, benchmarks).

`BackgroundServer` binds its socket before uvicorn starts (port 0 -> a free port, no race), runs
uvicorn in a daemon thread and stops it on exit; every wait is bounded by a timeout.

Stopping (SIGTERM / SIGINT, or `BackgroundServer.stop`) drains: the app refuses new transcriptions
with 503, running ones get `shutdown_grace_s` to finish and then a 503, and uvicorn waits a little
longer than that for those answers to be written. The lifespan's end removes the backend's temp copy.

Read timeouts (uvicorn has only a keep-alive timeout): a connection must send a request's headers
within `header_timeout_s`, and a request body may not stall for more than `read_timeout_s`; else the
connection is closed (408 before the app saw the request).
"""

from __future__ import annotations

import socket
import threading
import time

from soritune.serve.app import ServeConfig, create_app


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


WRITE_MARGIN_S = 5.0  # after the drain grace, time for the 503 answers to be written


def _timed_protocol(header_timeout_s: float, read_timeout_s: float):
    """uvicorn's h11 protocol with a deadline for request headers and an idle limit while reading a body."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class TimedH11Protocol(H11Protocol):
        _read_timer = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm(header_timeout_s)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is h11.SEND_BODY:  # reading a body: limit the silence, not the total
                self._arm(read_timeout_s)
            elif self.conn.their_state is not h11.IDLE:  # headers (and body) are in
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm(header_timeout_s)  # the next request on this keep-alive connection

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self, seconds: float) -> None:
            self._disarm()
            self._read_timer = self.loop.call_later(seconds, self._read_timeout)

        def _disarm(self) -> None:
            if self._read_timer is not None:
                self._read_timer.cancel()
                self._read_timer = None

        def _read_timeout(self) -> None:
            self._read_timer = None
            state = self.conn.their_state
            if self.transport.is_closing() or state not in (h11.IDLE, h11.SEND_BODY):
                return
            if state is h11.IDLE and self.conn.our_state is h11.IDLE:
                try:  # nothing was handed to the app yet: say why
                    self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n"
                                         b"connection: close\r\n\r\n")
                except Exception:  # noqa: BLE001 - closing anyway
                    pass
            self.logger.info("closing a connection: request %s too slow", "headers" if state is h11.IDLE else "body")
            self.transport.close()

    return TimedH11Protocol


def _uvicorn_server(app, host: str, port: int, log_level: str):
    import uvicorn

    config = getattr(getattr(app, "state", None), "serve", None)
    config = config.config if config is not None else ServeConfig()

    class DrainingServer(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            state = app.state.serve
            loop = getattr(self, "_loop", None)
            if loop is not None and not state.draining:
                loop.call_soon_threadsafe(state.begin_drain)
            super().handle_exit(sig, frame)

        async def serve(self, sockets=None):
            import asyncio

            self._loop = asyncio.get_running_loop()
            await super().serve(sockets)

    cfg = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on", access_log=False,
                         timeout_graceful_shutdown=config.shutdown_grace_s + WRITE_MARGIN_S,
                         http=_timed_protocol(config.header_timeout_s, config.read_timeout_s))
    return DrainingServer(cfg)


def serve(config: ServeConfig, *, log_level: str = "info") -> str | None:
    """Serve until interrupted. Returns the model-loading error if loading failed (the server stops)."""
    failure: dict[str, str] = {}
    server = None

    def on_load_error(message: str) -> None:
        failure["error"] = message
        if server is not None:
            server.should_exit = True

    app = create_app(config, on_load_error=on_load_error)
    server = _uvicorn_server(app, config.host, config.port, log_level)
    server.run()
    return failure.get("error")


class BackgroundServer:
    """`with BackgroundServer(app) as srv: srv.url` -> a live server on 127.0.0.1 in a thread."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, *, log_level: str = "warning",
                 start_timeout_s: float = 60.0):
        self.app, self.host, self.log_level, self.start_timeout_s = app, host, log_level, start_timeout_s
        self._sock = _bind(host, port)
        self.port = self._sock.getsockname()[1]
        self._server = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> BackgroundServer:
        self._server = _uvicorn_server(self.app, self.host, self.port, self.log_level)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="soritune-uvicorn", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout_s
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the server thread exited during start-up")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"server did not start within {self.start_timeout_s:.0f} s")
            time.sleep(0.02)
        return self

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Block until GET /health answers 200 (the model is loaded), or raise TimeoutError."""
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.url}/health not ready within {timeout_s:.0f} s")

    def stop(self, timeout_s: float = 15.0) -> None:
        """Drain as on SIGTERM (see the module doc), waiting at most `timeout_s` + the drain grace."""
        if self._server is not None:
            self._server.handle_exit(15, None)  # signal.SIGTERM
            timeout_s += self._server.config.timeout_graceful_shutdown
        if self._thread is not None:
            self._thread.join(timeout_s)
        try:
            self._sock.close()
        except OSError:
            pass

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def background(config: ServeConfig, backend=None, **kwargs) -> BackgroundServer:
    """A not-yet-started BackgroundServer for `create_app(config, backend)` on config.host (port 0 = free)."""
    return BackgroundServer(create_app(config, backend), config.host, config.port, **kwargs)
