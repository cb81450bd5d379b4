"""The optional audio-event encoder: a CED-style ViT on 64-mel patches, beside the Whisper speech encoder.

CED (Dinkel et al. 2023) cuts a 64-band log-mel spectrogram (16 kHz, 25-ms window... here n_fft 512,
hop 10 ms) into non-overlapping 16x16 patches, adds separate time and frequency position embeddings and
runs a ViT. Specs: `ced:tiny` | `ced:mini` | `ced:small` | `ced:base` (the published widths, random
init offline), or `ced:PATH` to a local checkpoint (`.pt` / `.safetensors` state dict in the CED /
timm layout: patch_embed.proj, time_pos_embed, freq_pos_embed, blocks.N.{norm1,attn.qkv,attn.proj,norm2,
mlp.fc1,mlp.fc2}, norm; a classifier head is ignored; `ced:small:PATH` picks the width). SALMONN aligns
its audio-event features to the speech encoder's frames and concatenates them channel-wise before the
Q-Former; `align` does the same: each 160-ms patch column (mean over the 4 frequency patches) is repeated
over the 8 Whisper frames (20 ms) it spans, then cut or zero-padded to the speech frame count.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from soritune.errors import ModelSpecError

SIZES = {  # name: (embed_dim, depth, heads) of the published CED models
    "tiny": (192, 12, 3), "mini": (256, 12, 4), "small": (384, 12, 6), "base": (768, 12, 12),
    "test": (32, 2, 4),  # tests
}
N_MELS, PATCH, HOP_S = 64, 16, 0.01
FRAMES_PER_PATCH = int(round(PATCH * HOP_S / 0.02))  # Whisper frames (20 ms) per patch column: 8


def _build(dim: int, depth: int, heads: int, max_time_patches: int = 200):
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
            self.attn = nn.Module()
            self.attn.qkv, self.attn.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
            self.mlp = nn.Module()
            self.mlp.fc1, self.mlp.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

        def forward(self, x):
            b, n, _ = x.shape
            q, k, v = self.attn.qkv(self.norm1(x)).view(b, n, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
            a = torch.nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, dim)
            x = x + self.attn.proj(a)
            return x + self.mlp.fc2(torch.nn.functional.gelu(self.mlp.fc1(self.norm2(x))))

    class CEDEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.init_bn = nn.BatchNorm2d(N_MELS, momentum=0.01)
            self.patch_embed = nn.Module()
            self.patch_embed.proj = nn.Conv2d(1, dim, PATCH, PATCH)
            self.time_pos_embed = nn.Parameter(torch.randn(1, dim, 1, max_time_patches) * 0.02)
            self.freq_pos_embed = nn.Parameter(torch.randn(1, dim, N_MELS // PATCH, 1) * 0.02)
            self.blocks = nn.ModuleList([Block() for _ in range(depth)])
            self.norm = nn.LayerNorm(dim, eps=1e-6)

        def forward(self, logmel):
            """logmel [B, 64, T] -> [B, T // 16, dim]: one vector per 160-ms patch column."""
            x = self.init_bn(logmel.unsqueeze(1).transpose(1, 2)).transpose(1, 2)  # BN over mel bands
            x = self.patch_embed.proj(x)  # [B, dim, 4, T/16]
            t = x.shape[-1]
            if t > self.time_pos_embed.shape[-1]:
                raise ValueError(f"{t} patch columns exceed the {self.time_pos_embed.shape[-1]} this encoder has")
            x = x + self.time_pos_embed[..., :t] + self.freq_pos_embed
            b, d, f, _ = x.shape
            x = x.permute(0, 3, 2, 1).reshape(b, t * f, d)  # time-major tokens
            for block in self.blocks:
                x = block(x)
            return self.norm(x).view(b, t, f, d).mean(dim=2)

    return CEDEncoder()


class EventEncoder:
    """`encode(pieces)` -> per piece [n_patch_columns, dim]; `align(feats, n_frames)` -> [n_frames, dim]."""

    def __init__(self, spec: str, seed: int = 0):
        import torch

        kind, _, rest = spec.partition(":")
        if kind != "ced" or not rest:
            raise ModelSpecError(f"event encoder {spec!r}: use ced:tiny|mini|small|base or ced:[SIZE:]PATH")
        size, _, path = rest.partition(":") if rest.split(":")[0] in SIZES else ("small", "", rest)
        if size not in SIZES:
            raise ModelSpecError(f"event encoder {spec!r}: unknown size {size!r}; sizes: {', '.join(SIZES)}")
        dim, depth, heads = SIZES[size]
        torch.manual_seed(seed)
        self.module, self.d_model, self.spec = _build(dim, depth, heads), dim, spec
        self.info = {"spec": spec, "size": size, "params": sum(p.numel() for p in self.module.parameters()),
                     "checkpoint": path or None}
        if path:
            self._load(Path(path))
        self.module.eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        from transformers.audio_utils import mel_filter_bank

        self._mel = torch.tensor(mel_filter_bank(num_frequency_bins=257, num_mel_filters=N_MELS, min_frequency=0.0,
                                                 max_frequency=8000.0, sampling_rate=16000, norm=None,
                                                 mel_scale="htk"), dtype=torch.float32)

    def _load(self, path: Path) -> None:
        import torch

        if not path.is_file():
            raise ModelSpecError(f"event encoder checkpoint {path}: no such file")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
            state = state.get("model", state) if isinstance(state, dict) else state
        own = self.module.state_dict()
        if "time_pos_embed" in state and state["time_pos_embed"].shape != own["time_pos_embed"].shape:
            n = state["time_pos_embed"].shape[-1]  # a checkpoint trained on another length: keep its own
            self.module.time_pos_embed = torch.nn.Parameter(torch.zeros(*own["time_pos_embed"].shape[:-1], n))
        result = self.module.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
        if result.missing_keys:
            raise ModelSpecError(f"event encoder checkpoint {path}: lacks {result.missing_keys[:4]} "
                                 f"({len(result.missing_keys)} tensors) of the CED layout at width {self.d_model}")
        self.info["ignored_keys"] = sorted(k for k in state if k not in own)[:8]

    def logmel(self, piece: np.ndarray):
        import torch

        x = torch.as_tensor(np.asarray(piece, dtype=np.float32))
        spec = torch.stft(x, n_fft=512, hop_length=160, win_length=512, window=torch.hann_window(512),
                          center=True, return_complex=True).abs().pow(2)  # [257, T]
        mel = self._mel.T @ spec
        return 10.0 * torch.log10(mel.clamp(min=1e-10))

    def encode(self, pieces: list[np.ndarray]) -> list:
        """Patch-column features per piece (each padded to whole 16-frame patches, encoded alone)."""
        import torch

        out = []
        with torch.no_grad():
            for piece in pieces:
                mel = self.logmel(piece)
                t = max(PATCH, -(-mel.shape[-1] // PATCH) * PATCH)
                mel = torch.nn.functional.pad(mel, (0, t - mel.shape[-1]), value=float(mel.min()))
                out.append(self.module(mel[None])[0])
        return out

    @staticmethod
    def align(feats, n_frames: int):
        """[n_columns, dim] -> [n_frames, dim] on the Whisper frame grid (repeat 8x, cut or zero-pad)."""
        import torch

        rep = feats.repeat_interleave(FRAMES_PER_PATCH, dim=0)[:n_frames]
        if rep.shape[0] < n_frames:
            rep = torch.cat([rep, rep.new_zeros(n_frames - rep.shape[0], rep.shape[1])])
        return rep
