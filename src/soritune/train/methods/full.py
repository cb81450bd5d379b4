"""Full fine-tuning: every weight trains except the positional embeddings (optionally the decoder only)."""

from __future__ import annotations


def build(model, config):
    """All parameters trainable; the encoder frozen with `config.freeze_encoder`."""
    for p in model.parameters():
        p.requires_grad_(True)
    model.model.encoder.embed_positions.requires_grad_(False)
    if config.freeze_encoder:
        model.model.encoder.requires_grad_(False)
    return model
