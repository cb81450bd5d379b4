"""Projectors from encoder frames to LLM embeddings, each a small registered unit.

| name | layout | per 30 s (1500 frames) |
|---|---|---|
| `salmonn` | SALMONN window-level Q-Former: windows of 17 frames (~0.33 s), 1 query each, 2 BERT-style layers (self-attention, cross-attention to the window, feed-forward; post-LN), linear to the LLM | 88 tokens |
| `granite` | Granite-speech window Q-Former: 15 frames -> 3 queries | 300 tokens |
| `slam` | SLAM-ASR: stack 5 frames, 2-layer MLP (ReLU) | 300 tokens |
| `ultravox` | Ultravox: stack 8 frames, RMSNorm, SwiGLU MLP | 187 tokens |

Every projector maps [B, T, d_enc] to [B, tokens, d_llm] with `frames_per_token` frames per group.
Windows never straddle chunks; a partial last window (trimmed input) is zero-padded, never dropped.
`covered_frames(T)` is the number of frames a full pass keeps whole (SALMONN: 88 x 17 = 1496 of 1500,
so a padded 30-s pass covers 29.92 s and longer audio is chunked at that length).
"""

from __future__ import annotations

import math
from functools import lru_cache

# name -> index of its module class in _modules() (window Q-Former, stacking MLP, stacking SwiGLU)
PROJECTORS: dict[str, int] = {"salmonn": 0, "granite": 0, "slam": 1, "ultravox": 2}
DEFAULTS: dict[str, dict] = {
    "salmonn": dict(window=17, queries=1, layers=2, hidden=768, heads=12),
    "granite": dict(window=15, queries=3, layers=2, hidden=768, heads=12),
    "slam": dict(stack=5, hidden=2048),
    "ultravox": dict(stack=8, hidden=4096),
}


def build_projector(name: str, d_enc: int, d_llm: int, **options):
    """A projector by registry name; options override DEFAULTS[name] (unknown options are an error)."""
    from soritune.errors import ConfigError

    if name not in PROJECTORS:
        raise ConfigError(f"projector: unknown {name!r}; accepted: {', '.join(PROJECTORS)}")
    unknown = set(options) - set(DEFAULTS[name])
    if unknown:
        raise ConfigError(f"projector {name}: unknown options {sorted(unknown)}; accepted: {sorted(DEFAULTS[name])}")
    return _modules()[PROJECTORS[name]](d_enc, d_llm, **{**DEFAULTS[name], **options})


@lru_cache(maxsize=1)
def _modules():  # torch is imported only when a projector is built
    import torch
    from torch import nn

    class QFormerLayer(nn.Module):
        """BERT-style: self-attention over the window's queries, cross-attention to its frames, FFN."""

        def __init__(self, hidden: int, heads: int, d_enc: int):
            super().__init__()
            self.self_attn = nn.MultiheadAttention(hidden, heads, batch_first=True)
            self.cross_attn = nn.MultiheadAttention(hidden, heads, kdim=d_enc, vdim=d_enc, batch_first=True)
            self.ffn = nn.Sequential(nn.Linear(hidden, 4 * hidden), nn.GELU(), nn.Linear(4 * hidden, hidden))
            self.ln1, self.ln2, self.ln3 = nn.LayerNorm(hidden), nn.LayerNorm(hidden), nn.LayerNorm(hidden)

        def forward(self, q, kv):
            q = self.ln1(q + self.self_attn(q, q, q, need_weights=False)[0])
            q = self.ln2(q + self.cross_attn(q, kv, kv, need_weights=False)[0])
            return self.ln3(q + self.ffn(q))

    class WindowQFormer(nn.Module):
        def __init__(self, d_enc, d_llm, *, window, queries, layers, hidden, heads):
            super().__init__()
            self.frames_per_token = window / queries
            self.window, self.queries = window, queries
            self.ln_speech = nn.LayerNorm(d_enc)
            self.query = nn.Parameter(torch.randn(1, queries, hidden) * 0.02)
            self.layers = nn.ModuleList(QFormerLayer(hidden, heads, d_enc) for _ in range(layers))
            self.proj = nn.Linear(hidden, d_llm)

        def n_groups(self, frames: int) -> int:
            return math.ceil(frames / self.window)

        def forward(self, x):
            b, t, d = x.shape
            n = self.n_groups(t)
            x = self.ln_speech(x)
            if n * self.window != t:
                x = torch.nn.functional.pad(x, (0, 0, 0, n * self.window - t))
            kv = x.reshape(b * n, self.window, d)
            q = self.query.expand(b * n, -1, -1)
            for layer in self.layers:
                q = layer(q, kv)
            return self.proj(q).reshape(b, n * self.queries, -1)

    class FrameStacker(nn.Module):
        def __init__(self, stack: int):
            super().__init__()
            self.stack = self.window = stack
            self.queries = 1
            self.frames_per_token = stack

        def n_groups(self, frames: int) -> int:
            return math.ceil(frames / self.stack)

        def stacked(self, x):
            b, t, d = x.shape
            n = self.n_groups(t)
            if n * self.stack != t:
                x = torch.nn.functional.pad(x, (0, 0, 0, n * self.stack - t))
            return x.reshape(b, n, self.stack * d)

    class StackMLP(FrameStacker):
        def __init__(self, d_enc, d_llm, *, stack, hidden):
            super().__init__(stack)
            self.mlp = nn.Sequential(nn.Linear(stack * d_enc, hidden), nn.ReLU(), nn.Linear(hidden, d_llm))

        def forward(self, x):
            return self.mlp(self.stacked(x))

    class StackSwiGLU(FrameStacker):
        def __init__(self, d_enc, d_llm, *, stack, hidden):
            super().__init__(stack)
            self.norm = nn.RMSNorm(stack * d_enc)
            self.gate_up = nn.Linear(stack * d_enc, 2 * hidden)
            self.down = nn.Linear(hidden, d_llm)
            self.out_norm = nn.RMSNorm(d_llm)

        def forward(self, x):
            gate, up = self.gate_up(self.norm(self.stacked(x))).chunk(2, dim=-1)
            return self.out_norm(self.down(torch.nn.functional.silu(gate) * up))

    return WindowQFormer, StackMLP, StackSwiGLU


def covered_frames(projector, frames: int) -> int:
    """Frames of a full pass that fill whole windows (the rest of a padded pass is padding only)."""
    return (frames // projector.window) * projector.window
