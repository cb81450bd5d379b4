"""Typed configs of the speech LLM: its composition, and a training stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from soritune.config import StageConfig

Task = Literal["transcribe", "caption", "question"]
TASKS = ("transcribe", "caption", "question")
DEFAULT_PROMPTS = {
    "transcribe": "Transcribe the audio exactly, in its own language.",
    "caption": "Describe the sounds in the audio in one sentence.",
    "question": "Answer the question about the audio.",
}
AUDIO_PLACEHOLDER = "<audio>"


ENCODER_SPEC = "Whisper encoder spec (soritune.models.load): bundled:whisper-base, hf:ID_OR_DIR, tiny:, random:large-v3-turbo, ..."
LLM_SPEC = ("LLM spec: offline:gemma3-270m | offline:smollm2-135m | PATH.gguf | hf:ID_OR_DIR | "
            "random:qwen2.5-0.5b|llama-3.2-1b|llama-3.2-3b|tiny")
Projector = Literal["salmonn", "granite", "slam", "ultravox"]


class SpeechLLMConfig(StageConfig):
    """Which encoder, projector and LLM make the model, and what of each is trained."""

    encoder: str = Field("bundled:whisper-base", description=ENCODER_SPEC)
    llm: str = Field("offline:gemma3-270m", description=LLM_SPEC)
    projector: Projector = Field("salmonn", description="Projector.")
    projector_options: dict = Field(default_factory=dict, description="Overrides of the projector's defaults.")
    event_encoder: str | None = Field(None, description="Optional audio-event encoder beside the speech encoder "
                                      "(SALMONN): ced:tiny|mini|small|base (random init) or ced:[SIZE:]PATH to a "
                                      "local CED checkpoint; its features are aligned to the speech frames and "
                                      "concatenated before the projector.")
    encoder_input: Literal["padded", "trimmed"] = Field(
        "padded", description="padded: 30-s passes as Whisper was trained; trimmed: each chunk's own frames.")
    freeze_encoder: bool = Field(True, description="Keep the speech encoder frozen.")
    lora: bool = Field(False, description="LoRA on the LLM (stage 2 turns it on).")
    lora_r: int = Field(8, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(16, ge=1, description="LoRA alpha.")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="LoRA dropout.")
    lora_targets: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"],
                                    description="LLM modules with LoRA (the study's best: q_proj,v_proj,gate_proj).")
    encoder_lora_r: int = Field(0, ge=0, description="LoRA rank on the speech encoder (0: none); trained in stage 2.")
    encoder_lora_targets: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"],
                                            description="Encoder modules with LoRA (Whisper attention names).")
    llm_quantization: Literal["8bit", "4bit"] | None = Field(
        None, description="Load the frozen LLM 8-bit (LLM.int8) or 4-bit (NF4) through bitsandbytes; LoRA trains on top.")
    llm_drop_layers: list[int] = Field(default_factory=list, description="LLM decoder layers removed (indices of "
                                       "the full model), chosen by `speechllm drop-layers` from measured sensitivity.")
    attn_implementation: Literal["eager", "sdpa", "flash_attention_2"] | None = Field(
        None, description="LLM attention kernel (None: transformers' default).")
    system_prompt: str | None = Field(None, description="System message, when the chat template takes one.")
    draft: str | None = Field(None, description="Whisper model spec (bundled:whisper-base, ct2:DIR, hf:..., a "
                              "fine-tuned model) whose greedy transcript of each clip is put in the prompt after "
                              "the instruction (generative error correction: the LLM hears the audio and reads "
                              "the draft); None: audio only. soritune.speechllm.draft.")
    seed: int = Field(0, description="Initialisation seed (projector, random specs).")


class StageTrainConfig(StageConfig):
    """One training stage: 1 = projector only, 2 = projector + LoRA on the LLM."""

    data: str = Field(..., description="Speech-LLM JSONL (soritune.speechllm.data schema).")
    out: str = Field(..., description="Run directory (model, config.yaml, summary.json, metrics.jsonl).")
    stage: Literal[1, 2] = Field(1, description="1: projector only; 2: projector + LoRA.")
    init: str | None = Field(None, description="Run directory of an earlier stage to start from.")
    model: SpeechLLMConfig = Field(default_factory=SpeechLLMConfig, description="Model composition (no init).")
    steps: int = Field(100, ge=1, description="Optimizer steps.")
    batch_size: int = Field(4, ge=1, description="Examples per step.")
    lr: float = Field(1e-4, gt=0, description="Peak learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up steps.")
    schedule: Literal["linear", "cosine", "constant"] = Field("linear", description="LR schedule after warm-up.")
    replay: str | None = Field(None, description="Stage-1 JSONL replayed in stage 2 (study's curriculum).")
    replay_fraction: float = Field(0.0, ge=0, le=1, description="Share of each batch drawn from replay.")
    self_distill_weight: float = Field(0.0, ge=0, description="Ultravox-style self-distillation: weight of the "
                                       "KL to the same LLM (LoRA off) given the transcript instead of the audio "
                                       "(transcribe rows); 0: off.")
    ce_weight: float = Field(1.0, ge=0, description="Weight of the cross-entropy on the response.")
    distill_temperature: float = Field(2.0, gt=0, description="Softmax temperature of the distillation KL (Ultravox: 2).")
    teacher: str | None = Field(None, description="Run directory of a trained speech LLM whose LLM has the same "
                                "tokenizer: token-level KL of the student's response distribution to its (weight "
                                "distill_weight, temperature distill_temperature), added to ce_weight * CE.")
    distill_weight: float = Field(0.0, ge=0, description="Weight of the KL to `teacher` (0: off).")
    encoder_teacher: str | None = Field(None, description="Whisper encoder spec the (smaller, trainable) speech "
                                        "encoder is pulled to: hidden-state MSE through a learned linear map.")
    hidden_mse_weight: float = Field(0.0, ge=0, description="Weight of the encoder hidden-state MSE (0: off).")
    log_every: int = Field(1, ge=1, description="Steps between metrics rows.")
    save_every: int = Field(0, ge=0, description="Steps between checkpoints (OUT/checkpoints/step-N, soritune's "
                            "format: trainable tensors, optimizer, scheduler, RNG, data position); 0: none.")
    keep_last: int = Field(2, ge=1, description="Checkpoints kept.")
    resume: bool = Field(False, description="Continue from OUT's newest checkpoint (exactly: same losses).")
    seed: int = Field(0, description="Data order seed.")
    threads: int | None = Field(None, ge=1, description="torch CPU threads.")
