"""Dev-set CER during training, scored with soritune.eval.metrics.cer.

input "padded" (default): greedy decoding exactly as `soritune transcribe` does it (30-s padded
log-mel, language and task forced), the honest number. "trimmed": the encoder sees the clip padded
only to its length bucket, as in dynamic-length training (several times cheaper on short clips;
for frequent model selection, not for reporting).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field


@dataclass
class DevScore:
    cer: float
    n_utts: int
    wall_s: float
    rows: list[dict] = field(default_factory=list)  # id, ref, hyp


def dev_rows(path: str, text_field: str, limit: int | None) -> list[dict]:
    """The first `limit` dev utterances (<= 30 s, with text), evenly spread over the manifest."""
    from soritune.data.manifest import read_manifest

    rows = [r for r in read_manifest(path) if (r.get(text_field) or r["text"]).strip() and r["duration"] <= 30.0]
    if limit is not None and len(rows) > limit:
        step = len(rows) / limit
        rows = [rows[int(i * step)] for i in range(limit)]
    return rows


def score_dev(model, processor, rows: list[dict], *, text_field: str = "text", language: str = "ko",
              task: str = "transcribe", batch_size: int = 16, max_new_tokens: int = 128, device: str = "cpu",
              autocast=None, input: str = "padded", bucket_s: float = 1.0) -> DevScore:
    """Transcribe `rows` with `model` (a Whisper model, adapters active) and return the set CER."""
    import torch

    from soritune.data.dataset import load_segment
    from soritune.eval.metrics import cer
    from soritune.infer.torch_backend import TorchBackend

    t0 = time.perf_counter()
    backend = TorchBackend(model, processor, device=str(device), encoder_input=input, bucket_s=bucket_s)
    was_training = model.training
    model.eval()
    refs, hyps, out = [], [], []
    try:
        for i in range(0, len(rows), batch_size):
            chunk = rows[i:i + batch_size]
            audios = [load_segment(r["audio"], r.get("offset"), r["duration"] if r.get("offset") is not None else None)
                      for r in chunk]
            with (autocast or contextlib.nullcontext)(), torch.no_grad():
                result = backend.transcribe(audios, language=language, task=task, batch_size=batch_size,
                                            max_new_tokens=max_new_tokens)
            for r, t in zip(chunk, result):
                ref = (r.get(text_field) or r["text"]).strip()
                refs.append(ref)
                hyps.append(t.text)
                out.append({"id": r["id"], "ref": ref, "hyp": t.text})
    finally:
        model.train(was_training)
    return DevScore(cer=cer(refs, hyps) if refs else float("nan"), n_utts=len(refs),
                    wall_s=time.perf_counter() - t0, rows=out)
