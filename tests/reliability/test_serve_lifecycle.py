"""Defects 7 and 10: SIGTERM drains with 503s and leaves no temp model copy; read timeouts; /health
detail behind the key; the OpenAI 25 MB upload default."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from soritune.serve.app import ServeConfig


def test_drain_answers_503_to_what_does_not_finish_in_the_grace(make_server, slow_backend, bomb):
    backend = slow_backend(0.3)
    srv = make_server(backend, max_batch=1, batch_window_ms=0, shutdown_grace_s=1.0)
    answer, data = {}, bomb(600)

    def long_upload():
        answer["r"] = httpx.post(srv.url + "/v1/audio/transcriptions", files={"file": ("l.flac", data)}, timeout=30)

    t = threading.Thread(target=long_upload)
    t.start()
    time.sleep(1.0)
    t0 = time.perf_counter()
    srv.stop(timeout_s=10)  # the same path as SIGTERM (uvicorn's handle_exit)
    t.join(15)
    r = answer["r"]
    assert r.status_code == 503 and r.json()["error"]["code"] == "server_shutting_down"
    assert r.headers["retry-after"] == "5"
    assert time.perf_counter() - t0 < 8  # grace 1 s + writing the answer, not a hang
    assert srv.app.state.serve.batcher.queue_depth == 0


def test_sigterm_removes_the_converted_ct2_copy(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "soritune", "serve", "--model", "tiny:", "--backend", "ct2",
                             "--port", str(port), "--log-level", "warning", "--shutdown-grace-s", "1"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError(f"server not ready: {proc.stdout.read1().decode()}")
        assert list(tmp_path.glob("soritune-ct2-*"))  # the converted copy lives while serving
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert list(tmp_path.glob("soritune-ct2-*")) == []


def _raw(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    sock.settimeout(seconds)
    data = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return True, data
            data += chunk
    except TimeoutError:
        return False, data
    except ConnectionResetError:
        return True, data


def test_slow_request_headers_are_cut(make_server, slow_backend):
    srv = make_server(slow_backend(0.0), header_timeout_s=0.5)
    with _raw(srv.url) as sock:
        sock.sendall(b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n")  # ... and never the rest
        closed, data = _closed_within(sock, 5)
    assert closed and data.startswith(b"HTTP/1.1 408")


def test_stalled_request_body_is_cut(make_server, slow_backend):
    srv = make_server(slow_backend(0.0), read_timeout_s=0.5)
    with _raw(srv.url) as sock:
        sock.sendall(b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; "
                     b"boundary=b\r\nContent-Length: 100000\r\n\r\n--b\r\n")
        closed, _ = _closed_within(sock, 5)
    assert closed
    assert httpx.get(srv.url + "/health", timeout=5).status_code == 200  # the server goes on


def test_health_detail_needs_the_key(make_server, slow_backend):
    srv = make_server(slow_backend(0.0), api_key="k3y")
    anonymous = httpx.get(srv.url + "/health", timeout=5)
    assert anonymous.status_code == 200 and anonymous.json() == {"status": "ok", "auth": True}
    assert "secret" not in anonymous.text
    keyed = httpx.get(srv.url + "/health", headers={"Authorization": "Bearer k3y"}, timeout=5).json()
    assert keyed["model"] == "fake:secret-spec" and keyed["backend"]["adapter"] == "/secret/adapter/path"


def test_open_server_health_keeps_its_detail(make_server, slow_backend):
    srv = make_server(slow_backend(0.0))
    assert httpx.get(srv.url + "/health", timeout=5).json()["model"] == "fake:secret-spec"


def test_upload_limit_defaults_to_openais_25_mb(make_server, slow_backend):
    assert ServeConfig().max_upload_mb == 25.0
    srv = make_server(slow_backend(0.0))
    r = httpx.post(srv.url + "/v1/audio/transcriptions", files={"file": ("big.wav", b"\0" * 26_000_000)}, timeout=30)
    assert r.status_code == 413 and "25 MB" in r.json()["error"]["message"]
