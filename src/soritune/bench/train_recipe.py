"""The peer of `bench train`: the standard Whisper LoRA recipe of peft's examples/int8_training
(https://github.com/huggingface/peft/tree/main/examples/int8_training, the Whisper large-v2 LoRA notebook;
published: r=32 on q,v, under 8 GB on a T4 at batch 24, 0.90 samples/s), written with today's APIs:

    model = WhisperForConditionalGeneration.from_pretrained(dir, quantization_config=BitsAndBytesConfig(load_in_8bit=True))
    model.config.forced_decoder_ids = None; model.config.suppress_tokens = []
    model = prepare_model_for_kbit_training(model)          # was prepare_model_for_int8_training
    model.model.encoder.conv1.register_forward_hook(make_inputs_require_grad)
    model = get_peft_model(model, LoraConfig(r=32, lora_alpha=64, target_modules=["q_proj", "v_proj"],
                                             lora_dropout=0.05, bias="none"))
    Seq2SeqTrainer(..., per_device_train_batch_size=B, learning_rate=1e-3, remove_unused_columns=False,
                   label_names=["labels"]).train()

Its data pipeline: log-mel features padded to 30 s, computed before training (dataset.map), labels =
the tokenizer's prefix tokens + text + <|endoftext|>, padded with -100 by DataCollatorSpeechSeq2SeqWithPadding.
Precision follows the soritune rows (the notebook's fp16=True is a GPU setting).
"""

from __future__ import annotations

from pathlib import Path

from soritune.bench.memory import MemoryMeter
from soritune.bench.train_measure import StepClock, memory_fields, resolve_device, resolved_precision

LORA = {"r": 32, "lora_alpha": 64, "target_modules": ["q_proj", "v_proj"], "lora_dropout": 0.05, "bias": "none"}


def model_dir(job: dict) -> Path:
    """The model's Hugging Face directory: its own (bundled:, hf:DIR) or one exported by a worker."""
    from soritune.models import model_dir_for, parse_spec

    if job.get("hf_dir"):
        return Path(job["hf_dir"])
    src = model_dir_for(parse_spec(job["model"]))
    if src is None:
        raise ValueError(f"{job['model']}: no Hugging Face directory (the parent exports one first)")
    return src


class SpeechCollator:
    """DataCollatorSpeechSeq2SeqWithPadding of the recipe."""

    def __init__(self, processor, decoder_start_token_id: int):
        self.processor, self.start = processor, decoder_start_token_id

    def __call__(self, features: list[dict]) -> dict:
        batch = self.processor.feature_extractor.pad([{"input_features": f["input_features"]} for f in features],
                                                     return_tensors="pt")
        labels_batch = self.processor.tokenizer.pad([{"input_ids": f["labels"]} for f in features], return_tensors="pt")
        labels = labels_batch["input_ids"].masked_fill(labels_batch.attention_mask.ne(1), -100)
        if (labels[:, 0] == self.start).all().cpu().item():
            labels = labels[:, 1:]
        batch["labels"] = labels
        return batch


def build_dataset(manifest: str, processor) -> list[dict]:
    from soritune.data.dataset import ManifestDataset

    ds = ManifestDataset(manifest, processor.tokenizer)
    rows = []
    for i in range(len(ds)):
        audio = ds.audio(i)
        feats = processor.feature_extractor(audio, sampling_rate=16000).input_features[0]
        rows.append({"input_features": feats, "labels": ds.tokens(i)})
    return rows


def precision_flags(mixed_precision: str, device: str) -> dict:
    """fp16/bf16 flags of TrainingArguments matching soritune's resolution of mixed_precision."""
    mp = resolved_precision(mixed_precision, device)
    return {"fp16": mp == "fp16", "bf16": mp == "bf16"}


def run_recipe(job: dict) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import (
        BitsAndBytesConfig,
        Seq2SeqTrainer,
        Seq2SeqTrainingArguments,
        TrainerCallback,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    torch.set_num_threads(job["threads"])
    device = resolve_device(job["device"])
    src = model_dir(job)
    processor = WhisperProcessor.from_pretrained(str(src), language="ko", task="transcribe")
    if processor.tokenizer.pad_token is None:  # openai's Whisper tokenizers pad with <|endoftext|>
        processor.tokenizer.pad_token = processor.tokenizer.eos_token
    data = build_dataset(job["manifest"], processor)  # before training, as the recipe's dataset.map
    step_clock = StepClock(device, job["warmup_steps"], job.get("steps"), job.get("seconds"), raise_at_end=False)

    class Timer(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            step_clock.mark_start()

        def on_step_end(self, args, state, control, **kw):
            if step_clock.mark_step():
                control.should_training_stop = True

    meter = MemoryMeter(device, interval_s=0.01).start()
    try:
        model = WhisperForConditionalGeneration.from_pretrained(
            str(src), quantization_config=BitsAndBytesConfig(load_in_8bit=True), device_map={"": device})
        model.config.forced_decoder_ids = None
        model.config.suppress_tokens = []
        model = prepare_model_for_kbit_training(model)
        model.model.encoder.conv1.register_forward_hook(lambda module, inp, out: out.requires_grad_(True))
        model = get_peft_model(model, LoraConfig(**LORA))
        model.config.use_cache = False
        steps = job["warmup_steps"] + job["steps"] if job.get("steps") else 1_000_000
        args = Seq2SeqTrainingArguments(
            output_dir=str(Path(job["workdir"]) / "recipe-out"), per_device_train_batch_size=job["batch_size"],
            gradient_accumulation_steps=1, learning_rate=1e-3, warmup_steps=0, max_steps=steps,
            logging_steps=10 ** 6, save_strategy="no", eval_strategy="no", report_to=[],
            remove_unused_columns=False, label_names=["labels"], use_cpu=not device.startswith("cuda"),
            dataloader_num_workers=0, disable_tqdm=True, seed=0, **precision_flags(job["mixed_precision"], device))
        trainer = Seq2SeqTrainer(model=model, args=args, train_dataset=data,
                                 data_collator=SpeechCollator(processor, model.config.decoder_start_token_id),
                                 callbacks=[Timer()])
        trainer.train()
    finally:
        reading = meter.stop()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"method": "lora on 8-bit base", "runner": "hf-peft-recipe", **step_clock.summary(job["batch_size"]),
            **memory_fields(reading, device), "trainable_params": trainable, "total_params": total,
            "encoder_frames": "3000 (30 s)",
            "settings": {"loop": "transformers.Seq2SeqTrainer", "quantization": "bitsandbytes load_in_8bit",
                         "prepare_model_for_kbit_training": "defaults (gradient checkpointing on)", **LORA,
                         **precision_flags(job["mixed_precision"], device), "device": device}}
