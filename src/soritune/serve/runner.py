"""Run the app under uvicorn: in the foreground (`soritune serve`) or in a thread (tests, benchmarks).

`BackgroundServer` binds its socket before uvicorn starts (port 0 -> a free port, no race), runs
uvicorn in a daemon thread and stops it on exit; every wait is bounded by a timeout.
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


def _uvicorn_server(app, host: str, port: int, log_level: str):
    import uvicorn

    cfg = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="on", access_log=False,
                         timeout_graceful_shutdown=5)
    return uvicorn.Server(cfg)


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

    def start(self) -> "BackgroundServer":
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
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
        try:
            self._sock.close()
        except OSError:
            pass

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def background(config: ServeConfig, backend=None, **kwargs) -> BackgroundServer:
    """A not-yet-started BackgroundServer for `create_app(config, backend)` on config.host (port 0 = free)."""
    return BackgroundServer(create_app(config, backend), config.host, config.port, **kwargs)
