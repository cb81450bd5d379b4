"""Whisper architectures by name (random weights: same memory and speed as the real ones)."""

from __future__ import annotations

# d_model, encoder_layers, decoder_layers, heads, num_mel_bins, vocab_size
ARCH_DIMS = {
    "tiny": (384, 4, 4, 6, 80, 51865),
    "base": (512, 6, 6, 8, 80, 51865),
    "small": (768, 12, 12, 12, 80, 51865),
    "medium": (1024, 24, 24, 16, 80, 51865),
    "large-v2": (1280, 32, 32, 20, 80, 51865),
    "large-v3": (1280, 32, 32, 20, 128, 51866),
    "large-v3-turbo": (1280, 32, 4, 20, 128, 51866),
}


def whisper_config(arch: str, **overrides):
    from transformers import WhisperConfig

    d, enc, dec, heads, mels, vocab = ARCH_DIMS[arch]
    kw = dict(
        d_model=d, encoder_layers=enc, decoder_layers=dec, encoder_attention_heads=heads,
        decoder_attention_heads=heads, encoder_ffn_dim=4 * d, decoder_ffn_dim=4 * d,
        num_mel_bins=mels, vocab_size=vocab, max_source_positions=1500, max_target_positions=448,
        decoder_start_token_id=50258, pad_token_id=50257, bos_token_id=50257, eos_token_id=50257,
    )
    kw.update(overrides)
    return WhisperConfig(**kw)


def tiny_test_config():
    """2+2 layers, d_model 32: the test model (real multilingual vocabulary, 80 mels)."""
    return whisper_config(
        "tiny", d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
    )
