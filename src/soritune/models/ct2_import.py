"""CTranslate2 / faster-whisper Whisper directory -> transformers WhisperForConditionalGeneration.

model.bin layout (ctranslate2.specs.model_spec._serialize): version, name, revision, then each
variable as (name, rank, dims, dtype id, byte count, bytes), then aliases. CTranslate2 fuses the
self-attention q/k/v (`linear_0`) and the cross-attention k/v (`linear_1`); we split them back.
float16/float32 weights convert losslessly; int8 weights are de-quantised (w = q / scale) with a
warning, since the int8 rounding cannot be undone.
"""

from __future__ import annotations

import json
import logging
import re
import struct
from pathlib import Path

import numpy as np

from soritune.errors import ModelSpecError

log = logging.getLogger(__name__)
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}


def _read(f, fmt: str):
    return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]


def _read_string(f) -> str:
    n = _read(f, "<H")
    return f.read(n)[:-1].decode("utf-8")


def read_ct2_variables(model_bin: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """All variables of a CTranslate2 model.bin as numpy arrays (aliases resolved), plus header info."""
    path = Path(model_bin)
    variables: dict[str, np.ndarray] = {}
    with path.open("rb") as f:
        version = _read(f, "<I")
        if version < 5 or version > 6:
            raise ModelSpecError(f"{path}: unsupported CTranslate2 binary version {version}")
        name = _read_string(f)
        revision = _read(f, "<I")
        for _ in range(_read(f, "<I")):
            var = _read_string(f)
            shape = tuple(_read(f, "<I") for _ in range(_read(f, "<B")))
            dtype_id = _read(f, "<B")
            nbytes = _read(f, "<I")
            raw = f.read(nbytes)
            if dtype_id == 5:  # bfloat16 -> float32
                arr = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
            else:
                arr = np.frombuffer(raw, dtype=_DTYPES[dtype_id])
            variables[var] = arr.reshape(shape)
        for _ in range(_read(f, "<I")):
            alias, target = _read_string(f), _read_string(f)
            variables[alias] = variables[target]
    if name != "WhisperSpec":
        raise ModelSpecError(f"{path}: a {name} model, not a Whisper model")
    return variables, {"binary_version": version, "spec": name, "revision": revision}


def _weight(v: dict, prefix: str, dequantized: list) -> np.ndarray:
    w = v[f"{prefix}/weight"]
    scale = v.get(f"{prefix}/weight_scale")
    if w.dtype in (np.int8, np.int16):
        if scale is None:
            raise ModelSpecError(f"{prefix}: integer weight without weight_scale")
        dequantized.append(prefix)
        s = np.asarray(scale, dtype=np.float32)
        w = w.astype(np.float32) / (s.reshape(-1, *([1] * (w.ndim - 1))) if s.ndim else s)
    return np.asarray(w, dtype=np.float32)


def _f32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def _layer_norm(sd, v, src, dst):
    sd[f"{dst}.weight"] = _f32(v[f"{src}/gamma"])
    sd[f"{dst}.bias"] = _f32(v[f"{src}/beta"])


def _linear(sd, v, src, dst, dq, bias=True):
    sd[f"{dst}.weight"] = _weight(v, src, dq)
    if bias:
        sd[f"{dst}.bias"] = _f32(v[f"{src}/bias"])


def _self_attention(sd, v, src, dst, dq):
    qkv, b = _weight(v, f"{src}/linear_0", dq), _f32(v[f"{src}/linear_0/bias"])
    q, k, val = np.split(qkv, 3)
    bq, _bk, bv = np.split(b, 3)  # Whisper's k_proj has no bias (CTranslate2 stores zeros)
    sd.update({f"{dst}.q_proj.weight": q, f"{dst}.q_proj.bias": bq, f"{dst}.k_proj.weight": k,
               f"{dst}.v_proj.weight": val, f"{dst}.v_proj.bias": bv})
    _linear(sd, v, f"{src}/linear_1", f"{dst}.out_proj", dq)


def _cross_attention(sd, v, src, dst, dq):
    _linear(sd, v, f"{src}/linear_0", f"{dst}.q_proj", dq)
    kv, b = _weight(v, f"{src}/linear_1", dq), _f32(v[f"{src}/linear_1/bias"])
    k, val = np.split(kv, 2)
    sd.update({f"{dst}.k_proj.weight": k, f"{dst}.v_proj.weight": val, f"{dst}.v_proj.bias": np.split(b, 2)[1]})
    _linear(sd, v, f"{src}/linear_2", f"{dst}.out_proj", dq)


def _ffn(sd, v, src, dst, dq):
    _layer_norm(sd, v, f"{src}/layer_norm", f"{dst}.final_layer_norm")
    _linear(sd, v, f"{src}/linear_0", f"{dst}.fc1", dq)
    _linear(sd, v, f"{src}/linear_1", f"{dst}.fc2", dq)


def _count_layers(v: dict, side: str) -> int:
    return len({k.split("/")[1] for k in v if re.match(rf"{side}/layer_\d+/", k)})


def ct2_state_dict(v: dict) -> tuple[dict[str, np.ndarray], dict, list[str]]:
    """Map CTranslate2 variable names to transformers names; returns (state, dims, dequantized)."""
    sd: dict[str, np.ndarray] = {}
    dq: list[str] = []
    e, d = "model.encoder", "model.decoder"
    for conv in ("conv1", "conv2"):
        sd[f"{e}.{conv}.weight"] = _weight(v, f"encoder/{conv}", dq)
        sd[f"{e}.{conv}.bias"] = _f32(v[f"encoder/{conv}/bias"])
    sd[f"{e}.embed_positions.weight"] = _f32(v["encoder/position_encodings/encodings"])
    _layer_norm(sd, v, "encoder/layer_norm", f"{e}.layer_norm")
    n_enc, n_dec = _count_layers(v, "encoder"), _count_layers(v, "decoder")
    for i in range(n_enc):
        src, dst = f"encoder/layer_{i}", f"{e}.layers.{i}"
        _layer_norm(sd, v, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm")
        _self_attention(sd, v, f"{src}/self_attention", f"{dst}.self_attn", dq)
        _ffn(sd, v, f"{src}/ffn", dst, dq)
    sd[f"{d}.embed_tokens.weight"] = _weight(v, "decoder/embeddings", dq)
    sd[f"{d}.embed_positions.weight"] = _f32(v["decoder/position_encodings/encodings"])
    _layer_norm(sd, v, "decoder/layer_norm", f"{d}.layer_norm")
    for i in range(n_dec):
        src, dst = f"decoder/layer_{i}", f"{d}.layers.{i}"
        _layer_norm(sd, v, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm")
        _self_attention(sd, v, f"{src}/self_attention", f"{dst}.self_attn", dq)
        _layer_norm(sd, v, f"{src}/attention/layer_norm", f"{dst}.encoder_attn_layer_norm")
        _cross_attention(sd, v, f"{src}/attention", f"{dst}.encoder_attn", dq)
        _ffn(sd, v, f"{src}/ffn", dst, dq)
    conv1 = v["encoder/conv1/weight"]
    dims = {
        "d_model": int(conv1.shape[0]), "num_mel_bins": int(conv1.shape[1]),
        "encoder_layers": n_enc, "decoder_layers": n_dec,
        "encoder_attention_heads": int(v["encoder/num_heads"]), "decoder_attention_heads": int(v["decoder/num_heads"]),
        "encoder_ffn_dim": int(v["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        "decoder_ffn_dim": int(v["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        "vocab_size": int(v["decoder/embeddings/weight"].shape[0]),
        "max_source_positions": int(v["encoder/position_encodings/encodings"].shape[0]),
        "max_target_positions": int(v["decoder/position_encodings/encodings"].shape[0]),
    }
    return sd, dims, sorted(set(dq))


def find_tokenizer_file(ct2_dir: Path) -> Path | None:
    p = ct2_dir / "tokenizer.json"
    return p if p.exists() else None


def load_ct2_as_hf(ct2_dir: str | Path, torch_dtype=None):
    """Build (WhisperForConditionalGeneration, WhisperProcessor) from a CTranslate2 Whisper directory."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    from soritune.models.tokenizer import build_generation_config, build_processor

    ct2_dir = Path(ct2_dir)
    variables, _info = read_ct2_variables(ct2_dir / "model.bin")
    sd, dims, dq = ct2_state_dict(variables)
    if dq:
        log.warning("%s holds int8 weights: %d matrices de-quantised to float32 (lossy)", ct2_dir, len(dq))
    ct2_config = json.loads((ct2_dir / "config.json").read_text()) if (ct2_dir / "config.json").exists() else {}
    config = WhisperConfig(**dims, decoder_start_token_id=50258, pad_token_id=50257,
                           bos_token_id=50257, eos_token_id=50257, tie_word_embeddings=True)
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    state = {k: torch.from_numpy(np.array(a, dtype=np.float32, copy=True)) for k, a in sd.items()}
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    missing = [m for m in missing if m != "proj_out.weight"]
    if missing or unexpected:
        raise ModelSpecError(f"{ct2_dir}: conversion mismatch (missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.tie_weights()
    processor = build_processor(dims["num_mel_bins"], find_tokenizer_file(ct2_dir))
    model.generation_config = build_generation_config(processor.tokenizer, config, ct2_config)
    model.eval()
    if torch_dtype is not None:
        model = model.to(torch_dtype)
    model.soritune_dequantized = dq
    return model, processor


def import_ct2(ct2_dir: str | Path, out_dir: str | Path) -> Path:
    """`soritune import-ct2`: save a converted CTranslate2 model as a normal Hugging Face directory."""
    model, processor = load_ct2_as_hf(ct2_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
