"""`soritune serve` as a user runs it: a real process on 127.0.0.1, stopped with Ctrl-C."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

CLI = [sys.executable, "-c", "import sys; from soritune.cli import main; main(sys.argv[1:])"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_help_lists_the_flags():
    r = subprocess.run(CLI + ["serve", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    for flag in ("--model", "--adapter", "--backend", "--host", "--port", "--api-key", "--max-upload-mb",
                 "--max-batch"):
        assert flag in r.stdout


def test_bad_model_spec_fails_in_one_line_before_serving():
    r = subprocess.run(CLI + ["serve", "--model", "nonsense:x", "--port", str(free_port())], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2
    assert "unknown model spec" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow  # two interpreter start-ups with torch: ~10-25 s on a shared 2-core machine
def test_a_model_that_fails_to_load_stops_the_server(tmp_path):
    r = subprocess.run(CLI + ["serve", "--model", f"hf:{tmp_path}", "--port", str(free_port()), "--log-level",
                              "error"], capture_output=True, text=True, timeout=180)
    assert r.returncode == 2, r.stderr
    assert "loading" in r.stderr and "failed" in r.stderr


def test_serve_answers_the_openai_client_then_stops_on_ctrl_c(wav_bytes):
    import openai

    port = free_port()
    proc = subprocess.Popen(CLI + ["serve", "--model", "tiny:", "--port", str(port), "--max-new-tokens", "4",
                                   "--api-key", "k"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, ready = time.monotonic() + 120, False
        while time.monotonic() < deadline and proc.poll() is None and not ready:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert ready, proc.stderr.read() if proc.poll() is not None else "not ready in 120 s"
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="k", max_retries=0, timeout=60)
        out = client.audio.transcriptions.create(model="whisper-1", file=("a.wav", wav_bytes), response_format="text")
        assert isinstance(out, str) and out.endswith("\n")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("server did not stop within 30 s of Ctrl-C")
    assert proc.returncode in (0, 130, -signal.SIGINT), proc.stderr.read()  # 130: uvicorn re-raises SIGINT
