"""whisper.cpp's ggml model file (`ggml-model.bin`): write one from a Whisper model, read one back.

Layout (whisper.cpp `whisper_model_load`, written by its models/convert-h5-to-ggml.py), all int32
and float32 little-endian:
1. magic 0x67676d6c ("ggml"), then n_vocab, n_audio_ctx, n_audio_state, n_audio_head,
   n_audio_layer, n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype (1 = f16);
2. mel filters: n_mel, n_fft, then n_mel * n_fft float32 (the feature extractor's filter bank);
3. vocabulary: count, then per token (in id order) its byte length and bytes (BPE text as bytes);
   whisper.cpp names the special tokens above the count itself;
4. tensors under openai-whisper names (encoder.blocks.0.attn.query.weight, ...): n_dims, name
   length, ftype, the dims innermost first, the name, the data. Matrices are float16 with
   ftype 1; vectors, convolution biases (stored [n, 1]) and positional embeddings float32.
   proj_out is not stored: whisper.cpp ties it to the token embedding.

whisper.cpp fixes the feed-forward width at 4 * d_model and needs equal encoder and decoder
widths; `write_ggml` refuses other shapes by name (FFN-pruned or head-pruned models). `read_ggml`
rebuilds a transformers model (f16 weights widened to float32) so soritune's parity check, eval and
serve run on exactly what whisper.cpp would load.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from soritune.errors import ModelSpecError

GGML_FILE = "ggml-model.bin"
MAGIC = 0x67676D6C
HPARAMS = ("n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer", "n_text_ctx",
           "n_text_state", "n_text_head", "n_text_layer", "n_mels", "ftype")
LAYER_NAMES = {  # HF module path inside a layer -> whisper.cpp (openai-whisper) name
    "self_attn.q_proj": "attn.query", "self_attn.k_proj": "attn.key", "self_attn.v_proj": "attn.value",
    "self_attn.out_proj": "attn.out", "self_attn_layer_norm": "attn_ln",
    "encoder_attn.q_proj": "cross_attn.query", "encoder_attn.k_proj": "cross_attn.key",
    "encoder_attn.v_proj": "cross_attn.value", "encoder_attn.out_proj": "cross_attn.out",
    "encoder_attn_layer_norm": "cross_attn_ln", "fc1": "mlp.0", "fc2": "mlp.2", "final_layer_norm": "mlp_ln",
}
TOP_NAMES = {
    "encoder.layer_norm.weight": "encoder.ln_post.weight", "encoder.layer_norm.bias": "encoder.ln_post.bias",
    "encoder.embed_positions.weight": "encoder.positional_embedding",
    "decoder.layer_norm.weight": "decoder.ln.weight", "decoder.layer_norm.bias": "decoder.ln.bias",
    "decoder.embed_positions.weight": "decoder.positional_embedding",
    "decoder.embed_tokens.weight": "decoder.token_embedding.weight",
}
FLOAT32_ALWAYS = ("encoder.conv1.bias", "encoder.conv2.bias", "encoder.positional_embedding",
                  "decoder.positional_embedding")


def ggml_name(hf_name: str) -> str | None:
    """model.encoder.layers.0.self_attn.q_proj.weight -> encoder.blocks.0.attn.query.weight (None: not stored)."""
    if hf_name == "proj_out.weight":
        return None
    parts = hf_name.split(".")[1:]  # drop "model."
    if len(parts) > 3 and parts[1] == "layers":
        return ".".join([parts[0], "blocks", parts[2], LAYER_NAMES[".".join(parts[3:-1])], parts[-1]])
    name = ".".join(parts)
    return TOP_NAMES.get(name, name)


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet, inverted: printable stand-in character -> byte."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {c: b for b, c in bytes_to_unicode().items()}


def base_vocabulary(tokenizer) -> list[bytes]:
    """The BPE tokens up to and including <|endoftext|>, as bytes, in id order (the file's vocabulary)."""
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    by_id = {i: t for t, i in tokenizer.get_vocab().items() if i <= eot}
    if sorted(by_id) != list(range(eot + 1)):
        raise ModelSpecError("ggml: the tokenizer's ids below <|endoftext|> are not contiguous")
    dec = _byte_decoder()
    return [bytes(dec[c] for c in by_id[i]) if by_id[i] != "<|endoftext|>" else b"<|endoftext|>"
            for i in range(eot + 1)]


def check_layout(config) -> None:
    """Refuse what whisper.cpp's fixed layout cannot hold, naming the field."""
    problems = [f"{side}_ffn_dim {getattr(config, f'{side}_ffn_dim')} != 4 * d_model ({4 * config.d_model})"
                for side in ("encoder", "decoder") if getattr(config, f"{side}_ffn_dim") != 4 * config.d_model]
    if problems:
        raise ModelSpecError("ggml: whisper.cpp fixes the feed-forward width at 4 * d_model: " + "; ".join(problems)
                             + " (an FFN-pruned model cannot go to whisper.cpp; export it --to hf or ct2)")


def write_ggml(model, processor, path: str | Path, f16: bool = True) -> Path:
    """Write `model` (a plain WhisperForConditionalGeneration) as whisper.cpp's ggml-model.bin."""
    c = model.config
    check_layout(c)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    filters = np.asarray(processor.feature_extractor.mel_filters, dtype=np.float32).T  # (n_mels, n_fft // 2 + 1)
    vocab = base_vocabulary(processor.tokenizer)
    hparams = (c.vocab_size, c.max_source_positions, c.d_model, c.encoder_attention_heads, c.encoder_layers,
               c.max_target_positions, c.d_model, c.decoder_attention_heads, c.decoder_layers, c.num_mel_bins, int(f16))
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        f.write(struct.pack("<12i", MAGIC, *hparams))
        f.write(struct.pack("<2i", *filters.shape))
        f.write(filters.astype("<f4").tobytes())
        f.write(struct.pack("<i", len(vocab)))
        for token in vocab:
            f.write(struct.pack("<i", len(token)) + token)
        for hf_name, tensor in model.state_dict().items():
            name = ggml_name(hf_name)
            if name is None:
                continue
            data = tensor.detach().float().cpu().numpy().squeeze()
            if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
                data = data.reshape(-1, 1)
            half = f16 and data.ndim >= 2 and name not in FLOAT32_ALWAYS
            data = data.astype("<f2" if half else "<f4")
            encoded = name.encode("utf-8")
            f.write(struct.pack("<3i", data.ndim, len(encoded), int(half)))
            f.write(struct.pack(f"<{data.ndim}i", *reversed(data.shape)))
            f.write(encoded)
            f.write(data.tobytes())
    tmp.replace(path)
    return path


def export_target(source, out: Path, cfg) -> None:
    """`soritune export --to ggml`: OUT/ggml-model.bin (f16 matrices, as whisper.cpp's own models)."""
    write_ggml(source.model, source.processor, Path(out) / GGML_FILE)


def _hf_names(config) -> dict[str, str]:
    import torch
    from transformers import WhisperForConditionalGeneration

    with torch.device("meta"):
        skeleton = WhisperForConditionalGeneration(config)
    return {ggml_name(n): n for n in skeleton.state_dict() if ggml_name(n) is not None}


def read_ggml(path: str | Path) -> tuple[dict, np.ndarray, list[bytes], dict[str, np.ndarray]]:
    """(hparams, mel filters, vocabulary, tensors by ggml name) of a ggml-model.bin."""
    data = Path(path).read_bytes()
    pos = 0

    def take(fmt: str):
        nonlocal pos
        values = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return values

    magic, *values = take("<12i")
    if magic != MAGIC:
        raise ModelSpecError(f"{path}: not a ggml model file (magic {magic:#x})")
    hparams = dict(zip(HPARAMS, values))
    n_mel, n_fft = take("<2i")
    filters = np.frombuffer(data, "<f4", n_mel * n_fft, pos).reshape(n_mel, n_fft)
    pos += 4 * n_mel * n_fft
    vocab = []
    for _ in range(take("<i")[0]):
        (n,) = take("<i")
        vocab.append(data[pos:pos + n])
        pos += n
    tensors = {}
    while pos < len(data):
        n_dims, name_len, ftype = take("<3i")
        dims = take(f"<{n_dims}i")
        name = data[pos:pos + name_len].decode("utf-8")
        pos += name_len
        dtype = np.dtype("<f2" if ftype == 1 else "<f4")
        count = int(np.prod(dims))
        tensors[name] = np.frombuffer(data, dtype, count, pos).reshape(tuple(reversed(dims)))
        pos += count * dtype.itemsize
    return hparams, filters, vocab, tensors


def read_ggml_as_hf(path: str | Path):
    """(WhisperForConditionalGeneration, WhisperProcessor) rebuilt from a whisper.cpp ggml file."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    from soritune.models.tokenizer import build_generation_config, build_processor

    hp, _filters, vocab, tensors = read_ggml(path)
    processor = build_processor(hp["n_mels"])
    if vocab != base_vocabulary(processor.tokenizer)[: len(vocab)]:
        raise ModelSpecError(f"{path}: its vocabulary is not Whisper's multilingual one (soritune's tokenizer)")
    config = WhisperConfig(
        vocab_size=hp["n_vocab"], num_mel_bins=hp["n_mels"], d_model=hp["n_audio_state"],
        encoder_layers=hp["n_audio_layer"], encoder_attention_heads=hp["n_audio_head"],
        decoder_layers=hp["n_text_layer"], decoder_attention_heads=hp["n_text_head"],
        encoder_ffn_dim=4 * hp["n_audio_state"], decoder_ffn_dim=4 * hp["n_text_state"],
        max_source_positions=hp["n_audio_ctx"], max_target_positions=hp["n_text_ctx"],
        decoder_start_token_id=50258, pad_token_id=50257, bos_token_id=50257, eos_token_id=50257,
        tie_word_embeddings=True)
    names = _hf_names(config)
    missing = sorted(set(names) - set(tensors))
    unknown = sorted(set(tensors) - set(names))
    if missing or unknown:
        raise ModelSpecError(f"{path}: tensors do not fit a Whisper model (missing {missing[:3]}, unknown {unknown[:3]})")
    state = {names[n]: torch.from_numpy(a.astype(np.float32).reshape(-1) if n in FLOAT32_ALWAYS[:2] else
                                        a.astype(np.float32)) for n, a in tensors.items()}
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    model.load_state_dict(state, strict=False, assign=True)
    model.tie_weights()
    model.generation_config = build_generation_config(processor.tokenizer, config)
    return model.eval(), processor
