"""Load benchmark of `soritune serve`: the real `openai` client, concurrent requests, micro-batching on vs off.

    python benchmarks/serve_load.py                       # 200 requests at concurrency 8, both modes
    python benchmarks/serve_load.py --requests 64 --out /tmp/serve_load.json

For each mode the server is started as its own process (`soritune serve`, so client and server do
not share a GIL) on 127.0.0.1 with a free port; it serves the bundled whisper-base on the
CTranslate2 backend (torch if ctranslate2 is missing). After a warm-up, `--requests` transcription
requests of synthesised Korean clips (2-5 s) are sent by `--concurrency` client threads with the
official openai client. Mode `on` batches up to --max-batch clips per model call; mode `off` is
--max-batch 1 (one clip per call, requests queue). Reported per mode: errors (must be 0), latency
p50/p95/max, throughput (requests/s and audio s/s), mean batch size (from the server's /metrics),
and whether each clip's transcript matched across modes. Loopback only; every loop is bounded in
count and in time (--time-limit-s per mode; a request times out after 300 s).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

TEXTS = ["오늘은 미분 방정식을 배우겠습니다.", "사과 세 개를 샀어요.", "행렬의 고윳값을 구해 봅시다.",
         "대한민국의 수도는 서울입니다.", "이 회로의 전압은 오 볼트입니다.", "내일 오전 열 시에 만나요.",
         "엑스 제곱 더하기 이 엑스는 영입니다.", "강의 자료는 홈페이지에 있습니다.", "질문이 있으면 손을 들어 주세요.",
         "다음 주 화요일에 중간고사가 있습니다.", "이 함수의 극한값은 무한대입니다.", "전화 상담은 오후 여섯 시까지입니다."]
CLI = [sys.executable, "-c", "import sys; from soritune.cli import main; main(sys.argv[1:])"]
HOST = "127.0.0.1"


def make_clips() -> list[tuple[str, bytes, float, str]]:
    """(name, wav bytes, duration s, reference text) per sentence, synthesised deterministically."""
    import soundfile as sf

    from soritune.data.synth import speak

    clips = []
    for i, text in enumerate(TEXTS):
        audio = speak(text, rate=140 + 10 * (i % 4))
        buf = io.BytesIO()
        sf.write(buf, audio, 16000, format="WAV", subtype="PCM_16")
        clips.append((f"clip{i:02d}.wav", buf.getvalue(), len(audio) / 16000, text))
    return clips


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start_server(args, max_batch: int, port: int, log_path: str) -> subprocess.Popen:
    cmd = CLI + ["serve", "--model", args.model, "--backend", args.backend, "--host", HOST, "--port", str(port),
                 "--max-batch", str(max_batch), "--batch-window-ms", str(args.batch_window_ms),
                 "--log-level", "warning"]
    log = open(log_path, "w")  # noqa: SIM115 - closed when the process ends
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(proc: subprocess.Popen, base: str, timeout_s: float) -> dict:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it was ready")
        try:
            r = httpx.get(base + "/health", timeout=5)
            if r.status_code == 200:
                return r.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"server not ready within {timeout_s:.0f} s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def metrics(base: str) -> dict[str, float]:
    import httpx

    from soritune.serve.metrics import parse_text

    return parse_text(httpx.get(base + "/metrics", timeout=10).text)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def run_load(base: str, clips, n_requests: int, concurrency: int, time_limit_s: float) -> dict:
    """n_requests spread over `concurrency` threads, each with its own openai client; stops at the deadline."""
    import openai

    lock = threading.Lock()
    state = {"next": 0}
    latencies, errors, texts = [], [], {}
    deadline = time.monotonic() + time_limit_s

    def worker() -> None:
        client = openai.OpenAI(base_url=base + "/v1", api_key="bench", max_retries=0, timeout=300)
        while time.monotonic() < deadline:
            with lock:
                i = state["next"]
                if i >= n_requests:
                    return
                state["next"] += 1
            name, data, _dur, _ref = clips[i % len(clips)]
            t0 = time.perf_counter()
            try:
                out = client.audio.transcriptions.create(model="whisper-1", file=(name, data), language="ko",
                                                         response_format="json")
            except Exception as e:  # noqa: BLE001 - every failure is counted and reported
                with lock:
                    errors.append(f"{type(e).__name__}: {e}"[:300])
                continue
            dt = time.perf_counter() - t0
            with lock:
                latencies.append(dt)
                texts.setdefault(name, set()).add(out.text)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(1.0, deadline - time.monotonic() + 310))
    wall_s = time.perf_counter() - t0
    return {"latencies": latencies, "errors": errors, "texts": texts, "wall_s": wall_s,
            "sent": state["next"], "timed_out": state["next"] < n_requests}


def cer(ref: str, hyp: str) -> float:
    from rapidfuzz.distance import Levenshtein

    ref, hyp = ref.replace(" ", ""), hyp.replace(" ", "")
    return Levenshtein.distance(ref, hyp) / max(1, len(ref))


def bench_mode(args, mode: str, clips) -> dict:
    max_batch = args.max_batch if mode == "on" else 1
    port = free_port()
    base = f"http://{HOST}:{port}"
    log_path = os.path.join(args.log_dir, f"serve_load_{mode}.log")
    proc = start_server(args, max_batch, port, log_path)
    try:
        t_load = time.perf_counter()
        health = wait_ready(proc, base, args.load_timeout_s)
        load_s = time.perf_counter() - t_load
        run_load(base, clips, args.warmup, min(args.concurrency, args.warmup), 300)  # warm-up, not counted
        before = metrics(base)
        res = run_load(base, clips, args.requests, args.concurrency, args.time_limit_s)
        after = metrics(base)
    finally:
        stop_server(proc)
    lat_ms = [x * 1000 for x in res["latencies"]]
    n_ok = len(lat_ms)
    batches = after["soritune_batch_size_count"] - before["soritune_batch_size_count"]
    clips_run = after["soritune_batch_size_sum"] - before["soritune_batch_size_sum"]
    audio_s = after["soritune_audio_seconds_total"] - before["soritune_audio_seconds_total"]
    refs = {name: ref for name, _d, _s, ref in clips}
    return {
        "mode": mode, "max_batch": max_batch, "batch_window_ms": args.batch_window_ms if mode == "on" else None,
        "requests": args.requests, "sent": res["sent"], "ok": n_ok, "errors": len(res["errors"]),
        "error_samples": res["errors"][:5], "stopped_by_time_limit": res["timed_out"],
        "latency_ms_p50": round(percentile(lat_ms, 0.5), 1) if lat_ms else None,
        "latency_ms_p95": round(percentile(lat_ms, 0.95), 1) if lat_ms else None,
        "latency_ms_max": round(max(lat_ms), 1) if lat_ms else None,
        "latency_ms_mean": round(statistics.fmean(lat_ms), 1) if lat_ms else None,
        "wall_s": round(res["wall_s"], 2), "requests_per_s": round(n_ok / res["wall_s"], 3),
        "audio_s": round(audio_s, 2), "audio_s_per_s": round(audio_s / res["wall_s"], 2),
        "model_calls": int(batches), "mean_batch_size": round(clips_run / batches, 2) if batches else None,
        "model_load_s": round(load_s, 1), "server": health.get("backend", {}),
        "cer_mean": round(statistics.fmean(cer(refs[n], t) for n, ts in res["texts"].items() for t in ts), 4)
        if res["texts"] else None,
        "texts": {n: sorted(ts) for n, ts in sorted(res["texts"].items())},
        "server_log": log_path,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="bundled:whisper-base")
    ap.add_argument("--backend", default=None, help="ct2 (default when ctranslate2 imports) or torch")
    ap.add_argument("--requests", type=int, default=200, help="requests per mode (after the warm-up)")
    ap.add_argument("--concurrency", type=int, default=8, help="client threads sending at once")
    ap.add_argument("--modes", default="on,off", help="on (micro-batching) and/or off (--max-batch 1)")
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--batch-window-ms", type=float, default=20.0)
    ap.add_argument("--warmup", type=int, default=8, help="requests before timing starts")
    ap.add_argument("--time-limit-s", type=float, default=900.0, help="stop sending after this long, per mode")
    ap.add_argument("--load-timeout-s", type=float, default=600.0)
    ap.add_argument("--log-dir", default=None, help="server logs (default: a temporary directory)")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args()
    if args.backend is None:
        try:
            import ctranslate2  # noqa: F401

            args.backend = "ct2"
        except ImportError:
            args.backend = "torch"
    if args.log_dir is None:
        import tempfile

        args.log_dir = tempfile.mkdtemp(prefix="soritune-serve-load-")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not set(modes) <= {"on", "off"}:
        ap.error("--modes takes on and/or off")

    clips = make_clips()
    results = {"model": args.model, "backend": args.backend, "concurrency": args.concurrency,
               "clips": len(clips), "clip_s_mean": round(statistics.fmean(c[2] for c in clips), 2),
               "cpu_count": os.cpu_count(), "python": platform.python_version(), "modes": {}}
    for mode in modes:
        print(f"[serve_load] mode {mode}: {args.requests} requests at concurrency {args.concurrency} ...",
              file=sys.stderr, flush=True)
        results["modes"][mode] = r = bench_mode(args, mode, clips)
        print(json.dumps({k: v for k, v in r.items() if k not in ("texts", "server")}, ensure_ascii=False),
              flush=True)
    if {"on", "off"} <= set(results["modes"]):
        on, off = results["modes"]["on"], results["modes"]["off"]
        same = sum(on["texts"].get(n) == off["texts"].get(n) for n in on["texts"])
        results["comparison"] = {
            "throughput_ratio_on_vs_off": round(on["requests_per_s"] / off["requests_per_s"], 2)
            if off["requests_per_s"] else None,
            "p50_ratio_on_vs_off": round(on["latency_ms_p50"] / off["latency_ms_p50"], 2)
            if on["latency_ms_p50"] and off["latency_ms_p50"] else None,
            "clips_with_identical_transcripts": f"{same}/{len(on['texts'])}",
        }
        print(json.dumps(results["comparison"]), flush=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(results, f, ensure_ascii=False, indent=2)
    failed = sum(r["errors"] for r in results["modes"].values())
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
