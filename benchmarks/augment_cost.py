"""CPU cost of each training augmentation per batch, against the same collator with augmentation off.

    PYTHONPATH=src python benchmarks/augment_cost.py [--manifest M] [--batch-size 8] [--repeats 10]

Times WhisperCollator on one batch of already-decoded clips (audio decoding excluded): the log-mel
features alone ("off", the peer row), then with each augmentation on at probability 1, then all of
them. Median of `repeats` after 2 warm-ups, one thread. Without --manifest it synthesises a batch of
Korean lecture sentences with espeak-ng. Writes benchmarks/results/augment_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

SENTENCES = ["오늘은 미분 방정식의 해를 구하는 방법을 배우겠습니다", "행렬의 곱은 교환 법칙이 성립하지 않습니다",
             "확률 분포의 평균과 분산을 계산해 봅시다", "삼 더하기 사는 칠입니다", "이 함수는 영에서 연속입니다",
             "다음 시간에는 푸리에 변환을 다룹니다", "좋은 아침입니다 여러분", "질문이 있으면 손을 들어 주세요"]


def batch_items(manifest: str | None, batch_size: int, tokenizer) -> list[dict]:
    from soritune.data.dataset import ManifestDataset

    if manifest:
        ds = ManifestDataset(manifest, tokenizer)
        return [ds[i] for i in range(min(batch_size, len(ds)))]
    from soritune.data.dataset import prompt_ids
    from soritune.data.synth import VOICES, speak

    voices = [v for v in VOICES if v.startswith("ko")]
    prompt = prompt_ids(tokenizer)
    return [{"id": f"b{i}", "audio": speak(SENTENCES[i % len(SENTENCES)], voice=voices[i % len(voices)]),
             "tokens": prompt + tokenizer(SENTENCES[i % len(SENTENCES)], add_special_tokens=False)["input_ids"]}
            for i in range(batch_size)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--out", default="benchmarks/results/augment_cost.json")
    args = ap.parse_args()

    import torch

    from soritune.bench.timing import summarize
    from soritune.data.augment import NAMES, AugmentConfig, Augmenter
    from soritune.data.dataset import WhisperCollator
    from soritune.models.tokenizer import build_processor

    torch.set_num_threads(1)
    processor = build_processor(80)
    tok = processor.tokenizer
    items = batch_items(args.manifest, args.batch_size, tok)
    audio_s = sum(len(it["audio"]) for it in items) / 16000
    rows = []
    settings = [("off", None)] + [(n, AugmentConfig(**{f"{n}_p": 1.0})) for n in NAMES]
    settings.append(("all", AugmentConfig(**{f"{n}_p": 1.0 for n in NAMES})))
    for name, cfg in settings:
        coll = WhisperCollator(processor.feature_extractor, pad_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
                               augment=Augmenter(cfg) if cfg else None)
        times = []
        for rep in range(args.repeats + 2):
            rngs = [Augmenter.rng(0, rep, i) for i in range(len(items))] if cfg else None
            t0 = time.perf_counter()
            coll(items, augment_rngs=rngs)
            if rep >= 2:
                times.append(time.perf_counter() - t0)
        rows.append({"augmentation": name, "ms_per_batch": summarize(t * 1000 for t in times)})
    base = rows[0]["ms_per_batch"]["median"]
    for r in rows:
        r["added_ms_per_batch"] = round(r["ms_per_batch"]["median"] - base, 2)
        r["x_of_features_alone"] = round(r["ms_per_batch"]["median"] / base, 2)
    result = {"batch_size": len(items), "audio_s_in_batch": round(audio_s, 2), "repeats": args.repeats, "threads": 1,
              "load_avg_1min": os.getloadavg()[0], "machine": platform.processor() or platform.machine(),
              "cpus": os.cpu_count(), "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"batch of {len(items)} clips, {audio_s:.1f} s of audio; load {result['load_avg_1min']:.1f}")
    for r in rows:
        print(f"{r['augmentation']:<12} {r['ms_per_batch']['median']:8.1f} ms  (+{r['added_ms_per_batch']:.1f} ms, "
              f"{r['x_of_features_alone']:.2f}x features alone)")


if __name__ == "__main__":
    main()
