"""Transcription backends behind one interface: `load_backend(spec, backend=...)`."""

from __future__ import annotations

import tempfile
from typing import TYPE_CHECKING, Literal

from soritune.errors import SoritunError

if TYPE_CHECKING:
    from soritune.infer.base import Backend

__all__ = ["load_backend", "Backend", "Transcription", "BACKENDS", "DecodeOptions"]
BACKENDS = ("torch", "ct2", "vosk")  # vosk: an independent Kaldi recogniser (infer/vosk_backend.py)


def __getattr__(name: str):
    """Backend, Transcription, DecodeOptions on first use (numpy stays out of `soritune --help`)."""
    if name in ("Backend", "Transcription"):
        from soritune.infer import base

        return getattr(base, name)
    if name == "DecodeOptions":
        from soritune.infer.options import DecodeOptions

        return DecodeOptions
    raise AttributeError(f"module 'soritune.infer' has no attribute {name!r}")


def load_backend(
    model_spec: str, backend: Literal["torch", "ct2", "vosk"] = "torch", adapter: str | None = None,
    device: str = "cpu", compute_type: str | None = None, quantization: str | None = None,
    threads: int | None = None, encoder_input: str = "padded",
) -> Backend:
    """Load `model_spec` (+ optional PEFT adapter) for greedy transcription on `backend`.

    compute_type: torch -> float32|float16|bfloat16; ct2 -> float32|int8|float16|int8_float16|...
    encoder_input: padded (30 s, as Whisper was trained) | trimmed (each batch's own length, rounded up to
    a second; for models fine-tuned with soritune's dynamic length: same accuracy, much faster on short clips).
    """
    from soritune.infer.base import check_encoder_input
    from soritune.models import load, parse_spec

    check_encoder_input(encoder_input)
    if backend not in BACKENDS:
        raise SoritunError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "vosk" or model_spec.startswith("vosk:"):
        from soritune.infer.vosk_backend import load_vosk

        return load_vosk(model_spec, backend, adapter=adapter, threads=threads)
    spec = parse_spec(model_spec)
    if backend == "ct2":
        from soritune.infer.ct2_backend import CT2Backend, convert_to_ct2
        from soritune.models.tokenizer import build_processor

        if spec.kind in ("ct2", "bundled") and not adapter:
            from soritune.models import bundled

            ct2_dir = bundled.ct2_dir() if spec.kind == "bundled" else spec.arg
            import json
            from pathlib import Path

            cfg = json.loads((Path(ct2_dir) / "config.json").read_text()) if (Path(ct2_dir) / "config.json").exists() else {}
            tok_file = Path(ct2_dir) / "tokenizer.json"
            processor = build_processor(_ct2_n_mels(ct2_dir, cfg), tok_file if tok_file.exists() else None)
            return CT2Backend(ct2_dir, processor, spec=model_spec, device=device, compute_type=compute_type,
                              threads=threads, info={"adapter": None}, encoder_input=encoder_input)
        loaded = load(model_spec)
        model = loaded.model
        if adapter:
            from soritune.models.adapters import apply_adapter

            model = apply_adapter(model, adapter, merge=True)
        tmp = tempfile.TemporaryDirectory(prefix="soritune-ct2-")
        convert_to_ct2(model, loaded.processor, tmp.name)
        return CT2Backend(tmp.name, loaded.processor, spec=model_spec, device=device, compute_type=compute_type,
                          threads=threads, info={"adapter": adapter}, owned_tmp=tmp,
                          encoder_input=encoder_input)
    import torch

    from soritune.infer.torch_backend import TorchBackend

    dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, None: None}.get(compute_type)
    if compute_type and dtype is None:
        raise SoritunError(f"torch backend compute_type must be float32, float16 or bfloat16, got {compute_type!r}")
    if threads:
        torch.set_num_threads(threads)
    loaded = load(model_spec, quantization=quantization, device=device, dtype=dtype)
    model = loaded.model
    if adapter:
        from soritune.models.adapters import apply_adapter

        model = apply_adapter(model, adapter, merge=True)
    return TorchBackend(model, loaded.processor, spec=model_spec, info={**loaded.info, "adapter": adapter}, device=device,
                        encoder_input=encoder_input)


def _ct2_n_mels(ct2_dir, cfg: dict) -> int:
    if "num_mel_bins" in cfg:
        return int(cfg["num_mel_bins"])
    from pathlib import Path

    from soritune.models.ct2_import import read_ct2_variables

    pre = Path(ct2_dir) / "preprocessor_config.json"
    if pre.exists():
        import json

        return int(json.loads(pre.read_text()).get("feature_size", 80))
    return int(read_ct2_variables(Path(ct2_dir) / "model.bin")[0]["encoder/conv1/weight"].shape[1])
