"""PyTorch backend: transformers generate(), greedy, language and task forced.

encoder_input="trimmed" runs the encoder on the batch's own length (soritune.models.encoder) and
hands its output to generate(); "padded" (default) is plain Whisper with 30-s input."""

from __future__ import annotations

import numpy as np

from soritune.infer.base import MAX_NEW_TOKENS, Transcription, batches, check_encoder_input, features


class TorchBackend:
    name = "torch"

    def __init__(self, model, processor, spec: str = "", info: dict | None = None, device: str = "cpu",
                 encoder_input: str = "padded", bucket_s: float = 1.0):
        self.model, self.processor, self.spec = model, processor, spec
        self.encoder_input = check_encoder_input(encoder_input)
        self.bucket_s = bucket_s
        self.info = dict(info or {})
        self.device = device
        self.eos = processor.tokenizer.eos_token_id

    def features(self, audios: list[np.ndarray]):
        import torch

        feats = features(self.processor, audios, self.encoder_input, return_tensors="pt", bucket_s=self.bucket_s)
        dtype = next(p.dtype for p in self.model.parameters() if p.is_floating_point())
        if dtype not in (torch.float32, torch.float16, torch.bfloat16):
            dtype = torch.float32
        return feats.to(self.device, dtype=dtype)

    def transcribe(self, audios, *, language="ko", task="transcribe", batch_size=8,
                   max_new_tokens=MAX_NEW_TOKENS, progress=None) -> list[Transcription]:
        import torch

        out: list[Transcription | None] = [None] * len(audios)
        trimmed = self.encoder_input == "trimmed"
        for idx in batches(len(audios), batch_size, [len(a) for a in audios] if trimmed else None):
            feats = self.features([audios[i] for i in idx])
            with torch.inference_mode():
                inputs = {"encoder_outputs": self.encode(feats)} if trimmed else {"input_features": feats}
                seqs = self.model.generate(
                    **inputs, language=language, task=task, do_sample=False, num_beams=1,
                    max_new_tokens=max_new_tokens, return_timestamps=False,
                )
            for i, seq in zip(idx, seqs.tolist()):
                out[i] = self._decode(seq, max_new_tokens)
            if progress:
                progress(len(idx))
        return out  # type: ignore[return-value]

    def encode(self, feats):
        from transformers.modeling_outputs import BaseModelOutput

        from soritune.models.encoder import encode

        whisper = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        return BaseModelOutput(last_hidden_state=encode(whisper.model.encoder, feats))

    def _decode(self, seq: list[int], max_new_tokens: int) -> Transcription:
        tok = self.processor.tokenizer
        specials = set(tok.all_special_ids)
        content = [t for t in seq if t not in specials and t < tok.convert_tokens_to_ids("<|endoftext|>")]
        text = tok.decode(content, skip_special_tokens=True).strip()
        ended = self.eos in seq  # generate() returns only the new tokens
        return Transcription(text=text, tokens=content, n_tokens=len(content),
                             hit_max_tokens=(not ended) and len(content) >= max_new_tokens - 1)

    def describe(self) -> dict:
        dtype = str(next(self.model.parameters()).dtype).replace("torch.", "")
        return {"backend": self.name, "spec": self.spec, "dtype": dtype, "device": self.device,
                "decoding": "greedy", "encoder_input": self.encoder_input, **self.info}
