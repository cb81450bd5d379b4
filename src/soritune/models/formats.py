"""The directory formats soritune writes, recognised by one table (`FORMATS`), for `models.load`.

Each format is a marker (a file or sub-directory whose presence names it) and a loader. A loader
returns `(model, processor)`, or a `Redirect` to another spec (+ adapter) when the directory only
points at its weights: a train run holds `adapter/` on top of `config.yaml`'s base, a lottery run
`merged/`, a distillation run `student/`. The first matching row wins; a plain Hugging Face
directory is the fallback. Adding a format is one loader plus one row.

| format      | marker              | written by                                        |
|-------------|---------------------|---------------------------------------------------|
| ct2         | model.bin           | `soritune export --to ct2`, faster-whisper models |
| head-pruned | structure.json      | `soritune prune --method structured --target heads` |
| torch-int8  | int8_model.pt       | `soritune export --to torch-int8`                 |
| ggml        | ggml-model.bin      | `soritune export --to ggml` (whisper.cpp)         |
| adapter     | adapter_config.json | `soritune train` (RUN/adapter), any PEFT adapter  |
| run         | merged/ student/ model/ adapter/ | train, lottery, distill run directories |
| hf          | config.json         | HF save_pretrained: merged, full FT, ffn/layer-pruned, magnitude/lottery (+ masks) |

Masks (`masks.safetensors`, magnitude and lottery pruning) ride along with an HF directory; the
loader re-applies them after an adapter merge (a merge adds BA to every weight, pruned ones too).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from soritune.errors import CompressError, ModelSpecError
from soritune.models.ggml import read_ggml_as_hf

MASK_FILE = "masks.safetensors"
STRUCTURE_FILE = "structure.json"
INT8_FILE = "int8_model.pt"
RUN_OUTPUTS = ("merged", "student", "model", "adapter")  # a run dir's deployable output, best first


@dataclass(frozen=True)
class Redirect:
    """Load `spec` (+ `adapter`) instead: the directory names its weights rather than holding them."""

    spec: str
    adapter: str | None = None
    seed: int | None = None


@dataclass(frozen=True)
class DirFormat:
    name: str
    detect: Callable[[Path], bool]
    load: Callable[[Path], object]  # -> (model, processor) | Redirect
    takes_adapter: bool = True  # False: an adapter cannot be merged into it (int8 weights)
    quantizable: bool = False  # bitsandbytes can re-load it (a standard HF directory)


# ---- masks and structure (written by the compress stage, read by every loader) ----------------

def load_masks(directory: str | Path | None) -> dict | None:
    """The masks saved in DIR (name -> bool keep-mask), or None when it has none."""
    if directory is None:
        return None
    path = Path(directory) / MASK_FILE
    if not path.exists():
        return None
    from safetensors.torch import load_file

    return {k: v.bool() for k, v in load_file(str(path)).items()}


def apply_masks(model, masks: dict) -> int:
    """Zero the pruned weights in place; returns how many masks were applied."""
    import torch

    params = dict(model.named_parameters())
    missing = [n for n in masks if n not in params]
    if missing:
        raise CompressError(f"masks do not fit this model: {len(missing)} unknown weights (e.g. {missing[0]})")
    with torch.no_grad():
        for n, m in masks.items():
            p = params[n]
            if tuple(p.shape) != tuple(m.shape):
                raise CompressError(f"mask {n}: shape {tuple(m.shape)} does not fit weight {tuple(p.shape)}")
            p.mul_(m.to(p.device, p.dtype))
    return len(masks)


def read_structure(directory: str | Path) -> dict | None:
    path = Path(directory) / STRUCTURE_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


HEAD_PARTS = ("q_proj", "k_proj", "v_proj")


def resize_heads(model, counts: dict) -> None:
    """Give the named attention modules `counts[name]` heads (new, uninitialised Linear layers)."""
    from torch import nn

    modules = dict(model.named_modules())
    for name, n in counts.items():
        attn = modules[name]
        d, hd = attn.embed_dim, attn.head_dim
        inner = n * hd
        for part in HEAD_PARTS:
            old = getattr(attn, part)
            setattr(attn, part, nn.Linear(d, inner, bias=old.bias is not None, dtype=old.weight.dtype))
        attn.out_proj = nn.Linear(inner, d, bias=attn.out_proj.bias is not None, dtype=attn.out_proj.weight.dtype)
        attn.num_heads = n


def quantize_int8(model):
    """torch.ao dynamic int8 (per-tensor weights, dynamic activations) of every nn.Linear, CPU."""
    import torch
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # torch.ao eager quantisation prints deprecation notices
        warnings.simplefilter("ignore")
        return quantize_dynamic(model.float().cpu().eval(), {torch.nn.Linear}, dtype=torch.qint8)


# ---- loaders ----------------------------------------------------------------------------------

def _skeleton(directory: Path):
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    return WhisperForConditionalGeneration(WhisperConfig.from_pretrained(str(directory)))


def _processor_and_generation(model, directory: Path):
    from transformers import GenerationConfig, WhisperProcessor

    if (directory / "generation_config.json").exists():
        model.generation_config = GenerationConfig.from_pretrained(str(directory))
    return model.eval(), WhisperProcessor.from_pretrained(str(directory))


def load_hf(directory: Path):
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    try:
        model = WhisperForConditionalGeneration.from_pretrained(str(directory))
        processor = WhisperProcessor.from_pretrained(str(directory))
    except OSError as e:
        raise ModelSpecError(
            f"hf:{directory}: cannot load ({str(e).splitlines()[0]}); offline, only local directories "
            f"and models already in the Hugging Face cache load"
        ) from None
    return model.eval(), processor


def load_structured(directory: str | Path):
    """(model, processor) of a head-pruned directory (the head counts of structure.json re-applied)."""
    from safetensors.torch import load_file

    directory = Path(directory)
    model = _skeleton(directory)
    resize_heads(model, (read_structure(directory) or {}).get("heads", {}))
    state = {}
    for f in sorted(directory.glob("model*.safetensors")):
        state.update(load_file(str(f)))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [m for m in missing if m != "proj_out.weight"]:
        raise ModelSpecError(f"{directory}: weights do not fit structure.json (missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]})")
    model.tie_weights()
    return _processor_and_generation(model, directory)


def load_int8(directory: str | Path):
    """(model, processor) of a torch-int8 export (the state dict loads with weights_only: no code runs)."""
    import torch

    directory = Path(directory)
    q = quantize_int8(_skeleton(directory).eval())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = torch.load(directory / INT8_FILE, map_location="cpu", weights_only=True)
        q.load_state_dict(state, strict=True)
    return _processor_and_generation(q, directory)


def load_ct2(directory: Path):
    from soritune.models.ct2_import import load_ct2_as_hf

    return load_ct2_as_hf(directory)


def _run_seed(run_dir: Path) -> int | None:
    """The seed of the run that wrote `run_dir` (tiny:/random: bases are rebuilt from it)."""
    cfg = run_dir / "config.yaml"
    if not cfg.exists():
        return None
    from soritune.config import read_yaml

    return read_yaml(cfg).get("seed")


def redirect_adapter(directory: Path) -> Redirect:
    """A PEFT adapter: its base is the train run's `model` (config.yaml beside it) or PEFT's base name."""
    base = None
    parent_cfg = directory.parent / "config.yaml"
    if parent_cfg.exists():
        from soritune.config import read_yaml

        base = read_yaml(parent_cfg).get("model")
    if not base:
        base = json.loads((directory / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base:
        raise ModelSpecError(f"{directory}: a PEFT adapter that names no base model; pass the base as the model "
                             f"spec and this directory as --adapter")
    return Redirect(str(base), str(directory), _run_seed(directory.parent))


def redirect_run(directory: Path) -> Redirect:
    """A stage's run directory: load the deployable output it holds (merged/, student/, model/, adapter/)."""
    for name in RUN_OUTPUTS:
        if (directory / name).is_dir():
            return Redirect(str(directory / name), None, _run_seed(directory))
    raise AssertionError("detect() checked for a run output")  # pragma: no cover


def _is_run(d: Path) -> bool:
    return not (d / "config.json").exists() and any((d / n).is_dir() for n in RUN_OUTPUTS)


FORMATS: tuple[DirFormat, ...] = (
    DirFormat("ct2", lambda d: (d / "model.bin").is_file() and not (d / INT8_FILE).exists(), load_ct2),
    DirFormat("head-pruned", lambda d: (d / STRUCTURE_FILE).is_file(), load_structured),
    DirFormat("torch-int8", lambda d: (d / INT8_FILE).is_file(), load_int8, takes_adapter=False),
    DirFormat("ggml", lambda d: (d / "ggml-model.bin").is_file(), lambda d: read_ggml_as_hf(d / "ggml-model.bin")),
    DirFormat("adapter", lambda d: (d / "adapter_config.json").is_file(), redirect_adapter),
    DirFormat("run", _is_run, redirect_run),
    DirFormat("hf", lambda d: True, load_hf, quantizable=True),
)


def detect(directory: str | Path) -> DirFormat:
    """The format of a directory soritune (or Hugging Face, or CTranslate2) wrote."""
    directory = Path(directory)
    return next(f for f in FORMATS if f.detect(directory))


def names() -> list[str]:
    return [f.name for f in FORMATS]
