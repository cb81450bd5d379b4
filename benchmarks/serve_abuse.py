"""Abuse benchmark of `soritune serve`: replays the fault-and-abuse probe of issue 19 against a live server.

    python benchmarks/serve_abuse.py                                   # bundled whisper-base, ct2
    python benchmarks/serve_abuse.py --bomb-s 1800 --out /tmp/abuse.json  # a quicker run

The server runs as its own process (`soritune serve`, started as benchmarks/serve_load.py starts it,
default limits) on 127.0.0.1; its RSS is sampled from /proc every 50 ms. Scenarios, in order:

1. bombs: `--bombs` parallel uploads of a FLAC of `--bomb-s` seconds of 48 kHz stereo silence (2 h:
   ~1.4 MB, 2.8 GB as float32 samples at its native rate). The clients give up after
   `--bomb-hold-s` and disconnect. Reported: peak server RSS above idle while they ran, and how long
   after the disconnects the server's queue was empty and its model calls stopped. A bomb longer than
   the server's max_audio_s is also sent: it must be refused (400) before decoding.
2. long + short: one `--bomb-s` upload runs while a ~3-s speech request is sent `--short-repeats`
   times (the first 5 s after the long upload started); reported: each short request's latency;
   then the long client disconnects and the drain time is measured as above.
3. slow connections: `--slow-conns` connections that send a request's headers one byte a second
   (slowloris) and one that stalls in the middle of a body; reported: when the server closed each,
   and a short request's latency meanwhile.

Every request and wait is bounded; the script prints and writes one JSON (--out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).parent))
import serve_load  # noqa: E402 - the sibling benchmark's server start/stop, /metrics and clips

HOST = serve_load.HOST


class RssSampler:
    """Peak resident memory of one process, sampled from /proc/PID/status."""

    def __init__(self, pid: int, every_s: float = 0.05):
        self.pid, self.every_s = pid, every_s
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now_mb(self) -> float:
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.peak_mb = max(self.peak_mb, self.now_mb())

    def reset(self) -> None:
        self.peak_mb = self.now_mb()

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()


def silence_flac(seconds: float, cache_dir: Path) -> bytes:
    """FLAC of 48 kHz stereo silence, written block by block (cached: 2 h takes ~30 s to encode)."""
    import numpy as np
    import soundfile as sf

    path = cache_dir / f"silence-{int(seconds)}s-48k-stereo.flac"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        block = np.zeros((48000 * 60, 2), dtype=np.float32)
        with sf.SoundFile(str(tmp), "w", samplerate=48000, channels=2, format="FLAC") as f:
            left = int(seconds * 48000)
            while left > 0:
                f.write(block[: min(left, len(block))])
                left -= len(block)
        os.replace(tmp, path)
    return path.read_bytes()


def post(base: str, name: str, data: bytes, timeout_s: float) -> dict:
    """One transcription request; never raises: status (or the client-side error) and latency."""
    import httpx

    t0 = time.perf_counter()
    try:
        r = httpx.post(base + "/v1/audio/transcriptions", files={"file": (name, data)},
                       data={"language": "ko", "response_format": "json"}, timeout=timeout_s)
        out = {"status": r.status_code}
        if r.status_code >= 400 and r.headers.get("content-type", "").startswith("application/json"):
            out["code"] = (r.json().get("error") or {}).get("code")
    except Exception as e:  # noqa: BLE001 - reported
        out = {"status": None, "error": type(e).__name__}
    out["latency_s"] = round(time.perf_counter() - t0, 2)
    return out


def drain_after_disconnect(base: str, timeout_s: float = 60.0) -> dict:
    """Seconds until the queue is empty and model calls stopped (no new call for 2 s)."""
    t0 = time.perf_counter()
    last_calls, last_change, empty_at = None, t0, None
    while time.perf_counter() - t0 < timeout_s:
        m = serve_load.metrics(base)
        calls = m.get("soritune_batch_size_count", 0)
        if calls != last_calls:
            last_calls, last_change = calls, time.perf_counter()
        if empty_at is None and m.get("soritune_queue_depth", 0) == 0:
            empty_at = time.perf_counter()
        if empty_at is not None and time.perf_counter() - last_change >= 2.0:
            return {"queue_empty_s": round(empty_at - t0, 2), "model_calls_stopped_s": round(last_change - t0, 2)}
        time.sleep(0.25)
    return {"queue_empty_s": None if empty_at is None else round(empty_at - t0, 2), "model_calls_stopped_s": None,
            "timed_out": True}


def scenario_bombs(args, base, rss, bomb: bytes, too_long: bytes) -> dict:
    idle_mb = rss.now_mb()
    rss.reset()
    threads, results = [], [None] * args.bombs
    for i in range(args.bombs):
        def run(i=i):
            results[i] = post(base, f"bomb{i}.flac", bomb, args.bomb_hold_s)
        threads.append(threading.Thread(target=run))
    for t in threads:
        t.start()
    for t in threads:
        t.join(args.bomb_hold_s + 60)
    peak_mb = rss.peak_mb
    drain = drain_after_disconnect(base)
    refused = post(base, "too_long.flac", too_long, 60)
    return {"bombs": args.bombs, "bomb_bytes": len(bomb), "bomb_audio_s": args.bomb_s,
            "client_hold_s": args.bomb_hold_s, "results": results, "idle_rss_mb": round(idle_mb, 1),
            "peak_rss_mb": round(peak_mb, 1), "peak_above_idle_mb": round(peak_mb - idle_mb, 1),
            "after_disconnect": drain, "over_max_audio": {"bytes": len(too_long), **refused}}


def scenario_long_and_short(args, base, rss, bomb: bytes, short: tuple) -> dict:
    name, data, duration_s, _ref = short
    rss.reset()
    long_result = {}

    def long_upload():
        long_result.update(post(base, "long.flac", bomb, args.long_hold_s))

    t = threading.Thread(target=long_upload)
    t.start()
    time.sleep(5.0)
    shorts = [post(base, name, data, 120) for _ in range(args.short_repeats)]
    t.join(args.long_hold_s + 60)
    drain = drain_after_disconnect(base)
    latencies = [s["latency_s"] for s in shorts if s["status"] == 200]
    return {"long_audio_s": args.bomb_s, "short_audio_s": round(duration_s, 2), "short": shorts,
            "short_latency_s_max": max(latencies) if latencies else None,
            "short_errors": sum(s["status"] != 200 for s in shorts), "long": long_result,
            "long_client_hold_s": args.long_hold_s, "after_disconnect": drain, "peak_rss_mb": round(rss.peak_mb, 1)}


def _closed_after(sock: socket.socket, t0: float, limit_s: float, trickle: bytes | None) -> float | None:
    """Seconds until the server closed `sock` (sending `trickle` one byte a second meanwhile)."""
    sock.settimeout(1.0)
    i = 0
    while time.perf_counter() - t0 < limit_s:
        try:
            if trickle is not None and i < len(trickle):
                sock.sendall(trickle[i:i + 1])
                i += 1
            if sock.recv(4096) == b"":
                return round(time.perf_counter() - t0, 2)
        except TimeoutError:
            continue
        except OSError:
            return round(time.perf_counter() - t0, 2)
    return None


def scenario_slow(args, base, short: tuple) -> dict:
    port = int(base.rsplit(":", 1)[1])
    closed: list = [None] * (args.slow_conns + 1)
    head = b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"

    def slowloris(i):
        with socket.create_connection((HOST, port), timeout=10) as s:
            closed[i] = _closed_after(s, time.perf_counter(), args.slow_limit_s, head + b"X-Pad: " + b"a" * 200)

    def stalled_body(i):
        with socket.create_connection((HOST, port), timeout=10) as s:
            s.sendall(head + b"Content-Length: 100000\r\n\r\n--b\r\n")
            closed[i] = _closed_after(s, time.perf_counter(), args.slow_limit_s, None)

    threads = [threading.Thread(target=slowloris, args=(i,)) for i in range(args.slow_conns)]
    threads.append(threading.Thread(target=stalled_body, args=(args.slow_conns,)))
    for t in threads:
        t.start()
    time.sleep(2.0)
    name, data, _d, _r = short
    during = post(base, name, data, 120)
    for t in threads:
        t.join(args.slow_limit_s + 30)
    slow = [c for c in closed[:-1] if c is not None]
    return {"slowloris_connections": args.slow_conns, "slowloris_closed": len(slow),
            "slowloris_closed_after_s_max": max(slow) if slow else None,
            "stalled_body_closed_after_s": closed[-1], "short_request_meanwhile": during}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="bundled:whisper-base")
    ap.add_argument("--backend", default="ct2")
    ap.add_argument("--scenarios", default="bombs,long,slow", help="which of bombs, long, slow to run")
    ap.add_argument("--bombs", type=int, default=4)
    ap.add_argument("--bomb-s", type=float, default=7200.0, help="seconds of silence in a bomb / the long upload")
    ap.add_argument("--bomb-hold-s", type=float, default=30.0, help="bomb clients disconnect after this")
    ap.add_argument("--long-hold-s", type=float, default=60.0, help="the long upload's client disconnects after this")
    ap.add_argument("--short-repeats", type=int, default=3)
    ap.add_argument("--slow-conns", type=int, default=20)
    ap.add_argument("--slow-limit-s", type=float, default=60.0)
    ap.add_argument("--batch-window-ms", type=float, default=20.0)
    ap.add_argument("--load-timeout-s", type=float, default=600.0)
    ap.add_argument("--cache-dir", default=os.path.join(tempfile.gettempdir(), "soritune-serve-abuse"))
    ap.add_argument("--out", default="benchmarks/results/serve_abuse.json")
    args = ap.parse_args()

    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    t_prep = time.perf_counter()
    bomb = silence_flac(args.bomb_s, cache)
    too_long = silence_flac(5 * 3600, cache)  # over the server's default max_audio_s (4 h)
    clips = serve_load.make_clips()
    short = min(clips, key=lambda c: abs(c[2] - 3.0))
    print(f"inputs ready in {time.perf_counter() - t_prep:.0f} s: bomb {len(bomb) / 1e6:.2f} MB, "
          f"short clip {short[2]:.1f} s", flush=True)

    port = serve_load.free_port()
    base = f"http://{HOST}:{port}"
    log_path = str(cache / "serve_abuse_server.log")
    server_args = SimpleNamespace(model=args.model, backend=args.backend, batch_window_ms=args.batch_window_ms)
    proc = serve_load.start_server(server_args, 8, port, log_path)
    rss = RssSampler(proc.pid).start()
    load_before = os.getloadavg()
    try:
        health = serve_load.wait_ready(proc, base, args.load_timeout_s)
        # warm-up: one batch of 8 short requests, so "idle" includes the model's own batch-8 working memory
        warm = [threading.Thread(target=post, args=(base, short[0], short[1], 300)) for _ in range(8)]
        for t in warm:
            t.start()
        for t in warm:
            t.join(330)
        results = {"idle_rss_mb": round(rss.now_mb(), 1)}
        scenarios = {"bombs": ("bombs", lambda: scenario_bombs(args, base, rss, bomb, too_long)),
                     "long": ("long_and_short", lambda: scenario_long_and_short(args, base, rss, bomb, short)),
                     "slow": ("slow_connections", lambda: scenario_slow(args, base, short))}
        for name in args.scenarios.split(","):
            key, run = scenarios[name.strip()]
            print(f"{key} ...", flush=True)
            results[key] = run()
            print(json.dumps(results[key]), flush=True)
        results["health_after"] = post(base, short[0], short[1], 120)
        results["rss_after_mb"] = round(rss.now_mb(), 1)
    finally:
        rss.stop()
        serve_load.stop_server(proc)
    report = {
        "benchmark": "serve_abuse", "model": args.model, "backend": args.backend, "server": health.get("backend", {}),
        "targets": {"bomb_peak_above_idle_mb": 1000, "short_latency_s": 15, "drain_s": "a few"},
        **results, "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(),
        "machine": platform.platform(), "python": platform.python_version(),
        "settings": {k: v for k, v in vars(args).items() if k not in ("cache_dir",)},
        "server_log": log_path,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
