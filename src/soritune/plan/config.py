"""PlanConfig: one training setup to plan (the TrainConfig fields that decide memory, plus shapes)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from soritune.config import StageConfig
from soritune.train.config import METHODS, Method, TrainConfig

Precision = Literal["fp32", "bf16-mixed", "fp16-mixed", "bf16"]
PRECISIONS = ("fp32", "bf16-mixed", "fp16-mixed", "bf16")
Optimizer = Literal["adamw", "adamw8bit", "paged_adamw8bit", "paged_adamw"]
OPTIMIZERS = ("adamw", "adamw8bit", "paged_adamw8bit", "paged_adamw")
__all__ = ["METHODS", "OPTIMIZERS", "PRECISIONS", "PlanConfig"]


class PlanConfig(StageConfig):
    """Predict the peak GPU memory of one training step of `soritune train`."""

    model: str = Field(description="model spec: random:ARCH | tiny: | bundled:whisper-base | hf:DIR (only its config is read)")
    method: Method = Field("lora", description="full | lora | dora | qlora8 (8-bit base + LoRA) | qlora4 (NF4 base + LoRA)")
    precision: Precision = Field("bf16-mixed", description="fp32 | bf16-mixed | fp16-mixed (autocast, fp32 weights) | bf16 (pure)")
    batch_size: int = Field(8, ge=1, description="utterances per micro-batch")
    audio_s: float = Field(30.0, gt=0, le=30.0, description="input length in seconds (30 = Whisper's padded input)")
    label_tokens: int = Field(128, ge=2, le=448, description="decoder tokens per utterance (prompt + text)")
    grad_accum: int = Field(1, ge=1, description="micro-batches per optimizer step (2 or more keep gradients through backward)")
    gradient_checkpointing: bool = Field(False, description="recompute activations in backward")
    optimizer: Optimizer = Field("adamw", description="adamw | adamw8bit | paged_adamw8bit | paged_adamw")
    lora_r: int = Field(32, ge=1, description="LoRA rank")
    target: str | list[str] = Field("qv", description="qv | attn | all-linear, or module names")
    target_side: Literal["encoder", "decoder", "both"] = Field("both", description="which stack gets adapters")
    freeze_encoder: bool = Field(False, description="full FT: train the decoder only")
    chunked_ce: int | None = Field(None, ge=0, description="cross-entropy chunk in tokens (default: 1024, as train on a GPU)")
    attn_implementation: Literal["sdpa", "eager"] = Field("sdpa", description="attention kernel (eager keeps the "
                                                                          "[heads x L x L] attention matrices)")
    gpu_foreach: bool = Field(True, description="optimizer in torch's multi-tensor (foreach) form, its CUDA default")
    # CUDA overheads on top of the traced peak (stated constants, reported separately)
    cuda_context_gb: float = Field(0.45, ge=0, description="CUDA context + kernels (outside PyTorch's allocator)")
    cublas_workspace_gb: float = Field(0.03125, ge=0, description="cuBLAS workspace (32 MiB on Hopper, 8 MiB before)")
    allocator_overhead: float = Field(0.10, ge=0, le=1, description="caching-allocator rounding and fragmentation, "
                                                                      "as a fraction of the traced peak")

    @classmethod
    def from_train(cls, cfg: TrainConfig) -> PlanConfig:
        """The plan of a TrainConfig on a GPU: its longest admitted input and label, its precision there."""
        precision = {"auto": "bf16-mixed", "no": "fp32", "bf16": "bf16-mixed", "fp16": "fp16-mixed"}[cfg.mixed_precision]
        return cls(model=cfg.model, method=cfg.method, precision=precision, batch_size=cfg.batch_size,
                   audio_s=cfg.max_audio_s, label_tokens=cfg.max_label_tokens, grad_accum=cfg.grad_accum,
                   gradient_checkpointing=cfg.gradient_checkpointing, optimizer=cfg.optimizer, lora_r=cfg.lora_r,
                   target=cfg.target, target_side=cfg.target_side, freeze_encoder=cfg.freeze_encoder,
                   chunked_ce=cfg.chunked_ce, attn_implementation=cfg.attn_implementation)

    def train_config(self) -> TrainConfig:
        mp = {"fp32": "no", "bf16": "no", "bf16-mixed": "bf16", "fp16-mixed": "fp16"}[self.precision]
        return TrainConfig(model=self.model, train="(plan)", out="(plan)", method=self.method, lora_r=self.lora_r,
                           lora_alpha=2 * self.lora_r, target=self.target, target_side=self.target_side,
                           freeze_encoder=self.freeze_encoder, batch_size=self.batch_size,
                           grad_accum=self.grad_accum, optimizer=self.optimizer,
                           mixed_precision=mp, gradient_checkpointing=self.gradient_checkpointing,
                           chunked_ce=self.resolved_chunk(), attn_implementation=self.attn_implementation,
                           max_steps=1)

    def resolved_chunk(self) -> int:
        return 1024 if self.chunked_ce is None else self.chunked_ce

    @property
    def frames(self) -> int:
        from soritune.models.encoder import bucket_frames

        return bucket_frames(round(self.audio_s * 16000))
