"""Transcription speed of a model on synthesised Korean clips: greedy, batch 1 and 8, both backends.

    python benchmarks/transcribe_rtfx.py --model bundled:whisper-base --n 8

Prints one JSON line per (backend, batch size): audio seconds, wall seconds (median of repeats
after a warm-up), RTFx = audio s / wall s. Also times the bundled model's one-off conversion when
--convert is given (the cache is cleared first).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="bundled:whisper-base")
    ap.add_argument("--n", type=int, default=8, help="clips")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-sizes", default="1,8")
    ap.add_argument("--backends", default="torch,ct2")
    ap.add_argument("--convert", action="store_true", help="time the bundled conversion from a cold cache")
    args = ap.parse_args()

    from soritune.audio import SAMPLE_RATE
    from soritune.data.synth import speak
    from soritune.infer import load_backend

    if args.convert:
        from soritune.cache import cache_root
        from soritune.models import bundled

        shutil.rmtree(cache_root() / "bundled", ignore_errors=True)
        t = time.perf_counter()
        bundled.hf_dir()
        print(json.dumps({"bundled_conversion_s": round(time.perf_counter() - t, 2)}))
    texts = ["오늘은 미분 방정식을 배우겠습니다.", "사과 세 개를 샀어요.", "행렬의 고윳값을 구해 봅시다.",
             "대한민국의 수도는 서울입니다.", "이 회로의 전압은 오 볼트입니다.", "내일 오전 열 시에 만나요.",
             "엑스 제곱 더하기 이 엑스는 영입니다.", "강의 자료는 홈페이지에 있습니다."]
    audios = [speak(texts[i % len(texts)], rate=140 + 10 * (i % 5)) for i in range(args.n)]
    audio_s = sum(len(a) for a in audios) / SAMPLE_RATE
    for backend in args.backends.split(","):
        be = load_backend(args.model, backend)
        for bs in (int(b) for b in args.batch_sizes.split(",")):
            be.transcribe(audios[:bs], batch_size=bs)  # warm-up
            walls = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                be.transcribe(audios, batch_size=bs)
                walls.append(time.perf_counter() - t)
            med = statistics.median(walls)
            print(json.dumps({"model": args.model, "backend": backend, "batch_size": bs, "clips": args.n,
                              "audio_s": round(audio_s, 2), "wall_s_median": round(med, 3), "wall_s_min": round(min(walls), 3),
                              "rtfx": round(audio_s / med, 2), "utt_per_s": round(args.n / med, 2),
                              "threads": os.cpu_count()}), flush=True)


if __name__ == "__main__":
    main()
