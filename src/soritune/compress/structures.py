"""Structures of a Whisper model that structured pruning removes, their importance, and surgery.

- heads: attention heads of every self/cross-attention module (q/k/v rows + out_proj columns);
- ffn: feed-forward channels of every layer (fc1 row and bias + fc2 column);
- layers: whole encoder or decoder layers.

Importance scores (named, both computed over the same parameter groups):
- magnitude: L2 norm of the structure's weights;
- taylor: first-order Taylor estimate of the loss change when the structure is removed,
  (sum over its weights of w * dL/dw)^2 accumulated over calibration batches (Molchanov et al. 2019).

Surgery builds a new, smaller model: ffn and layer pruning change only `encoder_ffn_dim`,
`decoder_ffn_dim`, `encoder_layers`, `decoder_layers`, so the result is a standard Whisper
config that every loader (and CTranslate2's converter) reads; head pruning gives attention modules
fewer heads than the config says, recorded in `structure.json` and rebuilt by `soritune.models.formats.load_structured`.
"""

from __future__ import annotations

import re
from typing import Callable

from soritune.errors import CompressError
from soritune.models.formats import HEAD_PARTS, resize_heads


def attention_modules(model, side: str) -> dict:
    """name -> WhisperAttention for the chosen stack(s)."""
    from transformers.models.whisper.modeling_whisper import WhisperAttention

    rx = re.compile(r"model\.(encoder|decoder)\.layers\.\d+\.(self_attn|encoder_attn)")
    return {n: m for n, m in model.named_modules()
            if isinstance(m, WhisperAttention) and rx.fullmatch(n) and side in ("both", n.split(".")[1])}


def ffn_layers(model, side: str) -> dict:
    rx = re.compile(r"model\.(encoder|decoder)\.layers\.\d+")
    return {n: m for n, m in model.named_modules() if rx.fullmatch(n) and side in ("both", n.split(".")[1])}


def _head_sums(attn, fn: Callable) -> torch.Tensor:  # noqa: F821
    h, hd = attn.num_heads, attn.head_dim
    total = 0
    for part in HEAD_PARTS:
        lin = getattr(attn, part)
        total = total + fn(lin.weight).reshape(h, hd, -1).sum(dim=(1, 2))
        if lin.bias is not None:
            total = total + fn(lin.bias).reshape(h, hd).sum(dim=1)
    return total + fn(attn.out_proj.weight).reshape(-1, h, hd).sum(dim=(0, 2))


def _ffn_sums(layer, fn: Callable):
    s = fn(layer.fc1.weight).sum(dim=1) + fn(layer.fc2.weight).sum(dim=0)
    return s + fn(layer.fc1.bias) if layer.fc1.bias is not None else s


def _layer_sums(model, side: str, fn: Callable) -> dict:
    import torch

    out = {}
    for stack in ("encoder", "decoder"):
        if side not in ("both", stack):
            continue
        layers = getattr(model.model, stack).layers
        out[stack] = torch.stack([sum(fn(p).sum() for p in layer.parameters()) for layer in layers])
    return out


def group_sums(model, target: str, side: str, fn: Callable) -> dict:
    """key -> tensor[n_structures] of sum(fn(param)) over each structure's parameters."""
    if target == "heads":
        return {n: _head_sums(m, fn) for n, m in attention_modules(model, side).items()}
    if target == "ffn":
        return {n: _ffn_sums(m, fn) for n, m in ffn_layers(model, side).items()}
    return _layer_sums(model, side, fn)


def magnitude_importance(model, target: str, side: str) -> dict:
    import torch

    with torch.no_grad():
        return {k: v.sqrt() for k, v in group_sums(model, target, side, lambda w: w.detach().float() ** 2).items()}


def taylor_importance(model, target: str, side: str, batches) -> dict:
    """(sum w * grad)^2 per structure, summed over batches (each a dict the HF model accepts)."""
    import torch

    was = model.training
    model.eval()
    scores: dict = {}
    n = 0
    for batch in batches:
        model.zero_grad(set_to_none=True)
        out = model(input_features=batch["input_features"], decoder_input_ids=batch["decoder_input_ids"],
                    labels=batch["labels"])
        out.loss.backward()

        def fn(w):
            return (w.detach().float() * (w.grad.float() if w.grad is not None else torch.zeros_like(w)))
        with torch.no_grad():
            for k, v in group_sums(model, target, side, fn).items():
                scores[k] = scores.get(k, 0) + v ** 2
        n += 1
    model.zero_grad(set_to_none=True)
    model.train(was)
    if n == 0:
        raise CompressError("calib_manifest: no calibration batch could be formed (no usable utterance)")
    return scores


def choose_kept(scores: dict, fraction: float) -> dict:
    """key -> sorted indices kept: the round(fraction * n) lowest removed, at least one kept."""
    import torch

    kept = {}
    for k, s in scores.items():
        n = s.numel()
        remove = min(n - 1, round(fraction * n))
        order = torch.argsort(s.float(), stable=True)
        kept[k] = sorted(int(i) for i in order[remove:])
    return kept


# ---- surgery ---------------------------------------------------------------------------------

def _new_model(config, like):
    from transformers import WhisperForConditionalGeneration

    new = WhisperForConditionalGeneration(config)
    new.generation_config = like.generation_config
    return new.to(next(like.parameters()).dtype).eval()


def shrink_ffn(model, kept: dict):
    """A new model whose layers keep only the `kept` FFN channels (same count in every layer)."""
    import copy

    import torch

    counts = {len(v) for v in kept.values()}
    if len(counts) != 1:
        raise ValueError("ffn pruning keeps the same number of channels in every layer")
    sd = dict(model.state_dict())
    cfg = copy.deepcopy(model.config)
    for name, idx in kept.items():
        ix = torch.tensor(idx)
        sd[f"{name}.fc1.weight"] = sd[f"{name}.fc1.weight"][ix].clone()
        sd[f"{name}.fc1.bias"] = sd[f"{name}.fc1.bias"][ix].clone()
        sd[f"{name}.fc2.weight"] = sd[f"{name}.fc2.weight"][:, ix].clone()
        setattr(cfg, f"{name.split('.')[1]}_ffn_dim", len(idx))
    new = _new_model(cfg, model)
    new.load_state_dict(sd, strict=True)
    return new


def keep_layers(model, kept: dict):
    """A new model with only the `kept` layer indices of each stack ({"encoder": [...], ...})."""
    import copy

    cfg = copy.deepcopy(model.config)
    sd = {}
    for key, value in model.state_dict().items():
        m = re.match(r"model\.(encoder|decoder)\.layers\.(\d+)\.(.*)", key)
        if not m:
            sd[key] = value
            continue
        stack, i, rest = m.group(1), int(m.group(2)), m.group(3)
        idx = kept.get(stack)
        if idx is None:
            sd[key] = value
        elif i in idx:
            sd[f"model.{stack}.layers.{idx.index(i)}.{rest}"] = value
    for stack, idx in kept.items():
        setattr(cfg, f"{stack}_layers", len(idx))
    cfg.num_hidden_layers = cfg.encoder_layers
    new = _new_model(cfg, model)
    new.load_state_dict(sd, strict=True)
    fix_alignment_heads(new)
    return new


def fix_alignment_heads(model) -> None:
    """Drop alignment heads (timestamps only) that point at layers or heads no longer there."""
    gc = model.generation_config
    heads = getattr(gc, "alignment_heads", None)
    if heads:
        n_layers, n_heads = model.config.decoder_layers, model.config.decoder_attention_heads
        gc.alignment_heads = [h for h in heads if h[0] < n_layers and h[1] < n_heads] or None


def prune_heads(model, kept: dict):
    """A copy of `model` whose attention modules keep only the `kept` heads."""
    import copy

    import torch

    new = copy.deepcopy(model)
    modules = dict(new.named_modules())
    with torch.no_grad():
        for name, idx in kept.items():
            attn = modules[name]
            hd = attn.head_dim
            rows = torch.cat([torch.arange(h * hd, (h + 1) * hd) for h in idx])
            old = {p: getattr(attn, p) for p in (*HEAD_PARTS, "out_proj")}
            resize_heads(new, {name: len(idx)})
            for part in HEAD_PARTS:
                getattr(attn, part).weight.copy_(old[part].weight[rows])
                if old[part].bias is not None:
                    getattr(attn, part).bias.copy_(old[part].bias[rows])
            attn.out_proj.weight.copy_(old["out_proj"].weight[:, rows])
            if old["out_proj"].bias is not None:
                attn.out_proj.bias.copy_(old["out_proj"].bias)
    if any(n.endswith("encoder_attn") for n in kept):  # alignment heads index the old cross-attention heads
        new.generation_config.alignment_heads = None
    return new.eval()
