"""TrainConfig: every field of `soritune train`, typed and documented; presets; resolution.

Precedence: preset < config file < CLI flags < --set key=value. The resolved config (defaults
that depend on others filled in, e.g. lr by method) is written to RUN_DIR/config.yaml.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationError, create_model, field_validator, model_validator

from soritune.config import StageConfig
from soritune.data.augment import AugmentConfig
from soritune.infer.options import MAX_NEW_TOKENS
from soritune.train.methods import ADAPTERS, METHOD_PRESETS, preset_for

METHODS = tuple(METHOD_PRESETS)  # preset aliases of (adapter, quantization)
Method = Literal[METHODS]
AdapterName = Literal[tuple(ADAPTERS)]
Quantization = Literal["8bit", "4bit"]
TARGET_PRESETS = {
    "qv": ("q_proj", "v_proj"),
    "attn": ("q_proj", "k_proj", "v_proj", "out_proj"),
    "all-linear": ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"),
}
LINEAR_NAMES = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")
# Fields that must match the checkpoint's run for --resume to continue the same training.
RESUME_IDENTITY = ("model", "train", "adapter", "quantization", "lora_r", "lora_alpha", "target", "target_side",
                   "freeze_encoder", "text_field", "language", "task", "augment", "timestamp_probability",
                   "prompt_probability")


class TrainConfig(StageConfig):
    """Fine-tune a Whisper model on a manifest (LoRA / DoRA / QLoRA / full)."""

    # what and where
    model: str = Field(description="model spec: bundled:whisper-base | hf:ID_OR_DIR | tiny: | random:ARCH")
    train: str = Field(description="training manifest (JSONL)")
    dev: str | None = Field(None, description="dev manifest for CER during training (optional)")
    out: str = Field(description="run directory (config.yaml, checkpoints, adapter/ or model/, summary.json)")
    language: str = Field("ko", description="Whisper language code put in the decoder prompt")
    task: Literal["transcribe", "translate"] = Field("transcribe", description="Whisper task token")
    text_field: Literal["text", "text_pron"] = Field("text", description="manifest field used as the target")
    # method
    adapter: AdapterName = Field("lora", description="what trains: " + " | ".join(ADAPTERS) + " (full = every weight)")
    quantization: Quantization | None = Field(None, description="base weights under the adapter: 8bit (LLM.int8) | "
                                              "4bit (NF4, double-quantised); bitsandbytes, CPU and CUDA")
    method: Method | None = Field(None, description="preset alias of adapter + quantization: full | lora | dora | "
                               "qlora8 (lora + 8bit) | qlora4 (lora + 4bit)")
    lora_r: int = Field(32, ge=1, description="LoRA rank")
    lora_alpha: float = Field(64, gt=0, description="LoRA scaling alpha")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="dropout on the LoRA input")
    target: str | list[str] = Field("qv", description="qv | attn | all-linear, or module names (q_proj,v_proj,fc1,...)")
    target_side: Literal["encoder", "decoder", "both"] = Field("both", description="which stack gets adapters")
    freeze_encoder: bool = Field(False, description="full FT: train the decoder only")
    # optimisation
    batch_size: int = Field(8, ge=1, description="utterances per device per micro-batch")
    grad_accum: int = Field(1, ge=1, description="micro-batches per optimizer step")
    lr: float | None = Field(None, gt=0, description="peak learning rate (default: 1e-5 full, 1e-3 adapters)")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    epochs: float = Field(3.0, gt=0, description="passes over the training set (ignored with max_steps)")
    max_steps: int | None = Field(None, ge=1, description="optimizer steps; overrides epochs")
    schedule: Literal["linear", "cosine", "constant"] = Field("linear", description="LR decay after warm-up")
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="warm-up steps as a fraction of all steps")
    warmup_steps: int | None = Field(None, ge=0, description="warm-up steps (overrides warmup_ratio)")
    max_grad_norm: float = Field(1.0, ge=0, description="gradient clipping norm (0 = off)")
    optimizer: Literal["adamw", "adamw8bit", "paged_adamw8bit", "paged_adamw"] = Field(
        "adamw", description="torch AdamW or a bitsandbytes 8-bit / paged AdamW")
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = Field(
        "auto", description="auto = bf16 on a GPU that has it, else fp32")
    gradient_checkpointing: bool = Field(False, description="recompute activations in backward (less memory)")
    attn_implementation: Literal["sdpa", "eager"] = Field("sdpa", description="attention kernel")
    seed: int = Field(0, description="seed for initialisation, data order and dropout")
    # data
    group_by_length: bool = Field(True, description="batch utterances of similar length together")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes (audio decoding, features)")
    max_audio_s: float = Field(30.0, gt=0, le=30.0, description="skip longer utterances (reported)")
    max_label_tokens: int = Field(448, ge=8, le=448, description="skip longer transcripts (reported)")
    augment: AugmentConfig = Field(default_factory=AugmentConfig, description="on-the-fly augmentation of training "
                                   "batches (speed, reverb, noise, telephone, specaugment; all off by default)")
    max_skip_fraction: float = Field(0.1, ge=0, le=1, description="stop if more than this share of rows has missing or unreadable audio (skipped.jsonl)")
    # abilities kept through fine-tuning (distil-whisper's recipe; soritune.data.labels)
    timestamp_probability: float = Field(
        0.2, ge=0, le=1, description="share of targets written with segment timestamps (<|0.00|> text <|end|>) "
                                     "so the model still emits them; 0 = always <|notimestamps|>")
    prompt_probability: float = Field(
        0.2, ge=0, le=1, description="share of targets conditioned on the previous utterance's text of the same "
                                     "speaker or recording (<|startofprev|> ..., no loss on it); 0 = never")
    # efficiency
    dynamic_length: bool = Field(True, description="pad each batch to its longest clip (bucketed), not 30 s")
    length_bucket_s: float = Field(1.0, gt=0, le=30, description="bucket width for dynamic_length, seconds")
    cache_encoder: bool = Field(False, description="frozen encoder without adapters: cache its outputs across epochs")
    chunked_ce: int | None = Field(None, ge=0, description="cross-entropy over this many tokens at a time, logits "
                                   "recomputed in backward (0 = off; default: 1024 on GPU, off on CPU)")
    fit_gpu: str | None = Field(None, description="before training, set batch_size (and gradient_checkpointing when "
                                "needed) to the largest `soritune plan` predicts fits this card: 8GB, 24GB, a6000, ... "
                                "(applied by `soritune train` / soritune.plan.fit.run_fitted)")
    auto_batch: bool = Field(False, description="on CUDA out-of-memory, split micro-batches in half and retry")
    threads: int | None = Field(None, ge=1, description="torch CPU threads (default: torch's choice)")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto = the GPU when there is one")
    # evaluation, checkpoints, outputs
    eval_every: int | None = Field(None, ge=1, description="dev CER every N steps (default: once an epoch)")
    eval_at_start: bool = Field(True, description="score the dev set before training (zero-shot CER)")
    eval_max_utts: int | None = Field(200, ge=1, description="dev utterances scored per evaluation (None = all)")
    eval_input: Literal["padded", "trimmed"] = Field(
        "padded", description="dev decoding input: padded = 30 s as in deployment (honest); trimmed = cheaper")
    eval_batch_size: int = Field(16, ge=1, description="dev decoding batch size")
    eval_max_new_tokens: int = Field(128, ge=1, le=MAX_NEW_TOKENS, description="dev decoding token limit")
    early_stopping_patience: int | None = Field(None, ge=1, description="stop after N evaluations without a better dev CER")
    save_every: int | None = Field(None, ge=1, description="checkpoint every N steps (default: at every evaluation)")
    keep_last: int = Field(2, ge=1, description="checkpoints kept besides the best-by-dev-CER one")
    export: Literal["best", "last"] = Field("best", description="weights exported: best dev CER (when scored) or last")
    merge: bool = Field(False, description="also write RUN_DIR/merged/ (base with the adapter merged in)")
    resume: bool = Field(False, description="continue from the latest checkpoint in out")
    overwrite: bool = Field(False, description="start over in a non-empty out (deletes its checkpoints and outputs)")
    log_every: int = Field(10, ge=1, description="steps between rows of metrics.jsonl")
    tensorboard: bool = Field(False, description="also write TensorBoard logs to RUN_DIR/tb/")

    @model_validator(mode="before")
    @classmethod
    def _method_alias(cls, data):
        """method=qlora4 means adapter=lora + quantization=4bit; `method` names the pair when a preset does."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        method = data.get("method")
        if method is not None and method not in METHOD_PRESETS:
            return data  # the field's own check names it with the allowed values
        if method is not None:
            for key, value in zip(("adapter", "quantization"), METHOD_PRESETS[method]):
                if data.get(key) is not None and data[key] != value:
                    raise ValueError(f"method={method} means {key}={value!r}, but {key}={data[key]!r} was given; "
                                     f"set adapter and quantization instead of method")
                data[key] = value
        adapter = data.get("adapter", "lora")
        if adapter not in ADAPTERS:
            return data
        if adapter == "full" and data.get("quantization"):
            raise ValueError("quantization applies to adapter training (a quantised base is frozen); adapter=full "
                             "trains every weight in full precision")
        data["method"] = preset_for(adapter, data.get("quantization"))
        return data

    @field_validator("target")
    @classmethod
    def _check_target(cls, v):
        names = [v] if isinstance(v, str) and v in TARGET_PRESETS else (
            [s.strip() for s in v.split(",") if s.strip()] if isinstance(v, str) else list(v))
        if not names:
            raise ValueError("empty target")
        if len(names) == 1 and names[0] in TARGET_PRESETS:
            return names[0]
        bad = [n for n in names if n not in LINEAR_NAMES]
        if bad:
            raise ValueError(f"unknown module(s) {bad}; allowed: presets {', '.join(TARGET_PRESETS)} "
                             f"or module names {', '.join(LINEAR_NAMES)}")
        return names

    @field_validator("length_bucket_s")
    @classmethod
    def _check_bucket(cls, v):
        if round(v * 100) < 2:
            raise ValueError("must be at least 0.02 s (two log-mel frames)")
        return v

    @model_validator(mode="after")
    def _check_combination(self):
        if self.cache_encoder and self.adapter != "full" and self.target_side != "decoder":
            raise ValueError("cache_encoder needs a frozen encoder: set target_side=decoder (adapters) "
                             "or method=full with freeze_encoder=true")
        if self.cache_encoder and self.adapter == "full" and not self.freeze_encoder:
            raise ValueError("cache_encoder with method=full needs freeze_encoder=true")
        if self.cache_encoder and self.augment.active:
            raise ValueError("cache_encoder reuses encoder outputs across epochs, which augmentation changes every "
                             f"epoch: turn off cache_encoder or augment ({', '.join(self.augment.enabled())})")
        return self

    # ---- resolution -------------------------------------------------------------------------
    @property
    def uses_adapter(self) -> bool:
        return self.adapter != "full"

    def target_modules(self) -> tuple[str, ...]:
        return TARGET_PRESETS[self.target] if isinstance(self.target, str) else tuple(self.target)

    def resolved_lr(self) -> float:
        return self.lr if self.lr is not None else (1e-5 if self.adapter == "full" else 1e-3)

    def run_dir(self) -> Path:
        return Path(self.out)


def check_train_overrides(value: dict) -> dict:
    """TrainConfig fields given as a section of another stage's config (lottery rounds, the sweep,
    distillation), checked when that config loads: each key must be a TrainConfig field and its value
    pass the field's type, choices and bounds (cross-field checks run when a round builds its TrainConfig).
    The section stays the plain dict it was given."""
    unknown = sorted(set(value) - set(TrainConfig.model_fields))
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not TrainConfig field(s) (known fields: {', '.join(TrainConfig.model_fields)})")
    try:
        _overrides_model().model_validate(value)
    except ValidationError as e:
        from soritune.config import format_validation_error

        raise ValueError(format_validation_error(TrainConfig, e).split(": ", 1)[1]) from None
    return dict(value)


def _overrides_model():
    """TrainConfig's fields, each optional: what a train_overrides section may hold."""
    global _OVERRIDES
    if _OVERRIDES is None:
        fields = {}
        for name, info in TrainConfig.model_fields.items():
            optional = copy.copy(info)
            optional.default, optional.default_factory = None, None
            fields[name] = (info.annotation, optional)
        _OVERRIDES = create_model("TrainOverrides", __config__=TrainConfig.model_config, **fields)
    return _OVERRIDES


_OVERRIDES = None
# the type of a train_overrides field: `train_overrides: TrainOverrides = Field(default_factory=dict, ...)`
TrainOverrides = Annotated[dict, AfterValidator(check_train_overrides)]


def resume_mismatches(saved: dict, current: TrainConfig) -> list[str]:
    """Identity fields that differ between a run dir's saved config and the current one."""
    now = current.model_dump(mode="json")  # as config.yaml holds it (tuples as lists)
    return [f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in RESUME_IDENTITY if k in saved and saved.get(k) != now.get(k)]


def load_train_config(path: str | Path | None = None, overrides: list[str] | None = None,
                      preset: str | None = None, fields: dict | None = None) -> TrainConfig:
    """preset < YAML file < fields (flags that were given) < --set overrides, validated."""
    from soritune.config import apply_overrides, read_yaml, validate
    from soritune.train.presets import load_preset

    data: dict = dict(load_preset(preset)) if preset else {}
    if path:
        data.update(read_yaml(path))
    data.update({k: v for k, v in (fields or {}).items() if v is not None})
    return validate(TrainConfig, apply_overrides(data, overrides))
