"""PyTorch backend: the Engine steps of `soritune.infer.decode` on a transformers Whisper.

Generation is transformers' own `GenerationMixin.generate` (beam search, sampling, repetition
penalties, suppression) run from soritune's prompt and encoder output, with transformers'
`WhisperTimeStampLogitsProcessor` when timestamps are asked for; one teacher-forced pass then gives
each output's average log-probability and the no-speech probability at the start token. Word times
come from dynamic time warping over the alignment heads' cross-attention (`infer/align_torch.py`).

encoder_input="trimmed" runs the encoder on the batch's own length (soritune.models.encoder);
"padded" (default) is plain Whisper with 30-s input."""

from __future__ import annotations

import numpy as np

from soritune.infer.base import check_encoder_input, features
from soritune.infer.decode import Decoder


class TorchBackend(Decoder):
    name = "torch"

    def __init__(self, model, processor, spec: str = "", info: dict | None = None, device: str = "cpu",
                 encoder_input: str = "padded", bucket_s: float = 1.0):
        self.model, self.processor, self.spec = model, processor, spec
        self.encoder_input = check_encoder_input(encoder_input)
        self.bucket_s = bucket_s
        self.info = dict(info or {})
        self.device = device
        self.eos = processor.tokenizer.eos_token_id

    @property
    def whisper(self):
        return self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model

    def features(self, audios: list[np.ndarray]):
        import torch

        feats = features(self.processor, audios, self.encoder_input, return_tensors="pt", bucket_s=self.bucket_s)
        dtype = next(p.dtype for p in self.model.parameters() if p.is_floating_point())
        if dtype not in (torch.float32, torch.float16, torch.bfloat16):
            dtype = torch.float32
        return feats.to(self.device, dtype=dtype)

    # --- the Engine steps of soritune.infer.decode ---
    def encode(self, audios: list[np.ndarray]):
        import torch

        from soritune.models.encoder import encode

        feats = self.features(audios)
        with torch.inference_mode():
            if self.encoder_input == "trimmed":
                return encode(self.whisper.model.encoder, feats)
            return self.whisper.model.encoder(feats).last_hidden_state

    def encoder_outputs(self, feats):
        """BaseModelOutput of the encoder on ready features (trimmed input: soritune's encoder), for generate()."""
        from transformers.modeling_outputs import BaseModelOutput

        from soritune.models.encoder import encode

        return BaseModelOutput(last_hidden_state=encode(self.whisper.model.encoder, feats))

    def take(self, encoded, idx: list[int]):
        return encoded[list(idx)]

    def _forward(self, encoded, decoder_input_ids, **kwargs):
        import torch
        from transformers.modeling_outputs import BaseModelOutput

        with torch.inference_mode():
            return self.whisper(encoder_outputs=BaseModelOutput(last_hidden_state=encoded),
                                decoder_input_ids=decoder_input_ids, use_cache=False, **kwargs)

    def detect_language(self, encoded) -> list[tuple[str, float]]:
        import torch

        lang_to_id = dict(getattr(self.whisper.generation_config, "lang_to_id", None) or {})
        sot = self.processor.tokenizer.convert_tokens_to_ids("<|startoftranscript|>")
        ids = torch.full((encoded.shape[0], 1), sot, dtype=torch.long, device=encoded.device)
        logits = self._forward(encoded, ids).logits[:, -1].float()
        codes, token_ids = [c.strip("<|>") for c in lang_to_id], list(lang_to_id.values())
        probs = logits[:, token_ids].softmax(-1)
        best = probs.argmax(-1).tolist()
        return [(codes[b], float(probs[i, b])) for i, b in enumerate(best)]

    def generate(self, encoded, prompts, temperature, options, tokenizer):
        import torch
        from transformers import GenerationConfig, GenerationMixin, LogitsProcessorList
        from transformers.generation.logits_process import (
            WhisperTimeStampLogitsProcessor,
        )
        from transformers.modeling_outputs import BaseModelOutput

        groups: dict[int, list[int]] = {}
        for i, p in enumerate(prompts):  # generate() needs one prompt length per call
            groups.setdefault(len(p), []).append(i)
        out: list = [None] * len(prompts)
        eot, ts_begin = tokenizer.eot, tokenizer.timestamp_begin
        suppress = list(getattr(self.whisper.generation_config, "suppress_tokens", None) or [])
        timestamps = tokenizer.no_timestamps not in prompts[0]
        if not timestamps:
            suppress += list(range(ts_begin, self.whisper.config.vocab_size))
        for length, members in groups.items():
            sampling = temperature > 0
            config = GenerationConfig(
                decoder_start_token_id=prompts[members[0]][0], eos_token_id=eot, pad_token_id=eot,
                max_new_tokens=options.max_new_tokens, num_beams=1 if sampling else options.beam_size,
                do_sample=sampling, num_return_sequences=options.best_of if sampling else 1,
                temperature=temperature if sampling else None, top_k=0 if sampling else None,
                length_penalty=options.length_penalty, repetition_penalty=options.repetition_penalty,
                no_repeat_ngram_size=options.no_repeat_ngram_size, suppress_tokens=suppress or None,
                begin_suppress_tokens=[tokenizer.encode(" ")[0], eot] if options.suppress_blank else None)
            processors = LogitsProcessorList()
            if timestamps:
                ts_config = GenerationConfig(no_timestamps_token_id=tokenizer.no_timestamps, eos_token_id=eot,
                                             max_initial_timestamp_index=50)
                processors.append(WhisperTimeStampLogitsProcessor(ts_config, begin_index=length))
            ids = torch.tensor([prompts[i] for i in members], dtype=torch.long, device=encoded.device)
            enc = encoded[members]
            with torch.inference_mode():
                seqs = GenerationMixin.generate(
                    self.whisper, encoder_outputs=BaseModelOutput(last_hidden_state=enc), decoder_input_ids=ids,
                    generation_config=config, logits_processor=processors)
            per = len(seqs) // len(members)  # best_of samples of each prompt at a temperature > 0, else 1
            for k, row in enumerate(seqs[:, length:].tolist()):
                out[members[k // per]] = (out[members[k // per]] or []) + [row[:row.index(eot)] if eot in row else row]
        return self._best(encoded, prompts, out, tokenizer, options.length_penalty)

    def _best(self, encoded, prompts, candidates, tokenizer, length_penalty: float):
        """Per prompt, its likeliest candidate (sum of log-probabilities / length ** length_penalty, as
        CTranslate2 ranks its hypotheses), scored by `_score`."""
        flat = [(i, c) for i, cs in enumerate(candidates) for c in cs]
        scored = self._score(encoded[[i for i, _c in flat]], [prompts[i] for i, _c in flat], [c for _i, c in flat],
                             tokenizer)
        best: list = [None] * len(prompts)
        for (i, _c), (tokens, avg, no_speech) in zip(flat, scored):
            rank = avg * (len(tokens) + 1) / max(len(tokens), 1) ** length_penalty
            if best[i] is None or rank > best[i][0]:
                best[i] = (rank, (tokens, avg, no_speech))
        return [b[1] for b in best]

    def _score(self, encoded, prompts, outputs, tokenizer):
        """(tokens, avg_logprob, no_speech_prob) by one teacher-forced pass over prompt + output + <|endoftext|>."""
        import torch

        eot, results = tokenizer.eot, []
        for i, (prompt, tokens) in enumerate(zip(prompts, outputs)):
            ids = torch.tensor([prompt + tokens + [eot]], dtype=torch.long, device=encoded.device)
            logprobs = self._forward(encoded[i:i + 1], ids[:, :-1]).logits[0].float().log_softmax(-1)
            target = ids[0, len(prompt):]
            total = logprobs[len(prompt) - 1:].gather(-1, target[:, None]).sum().item()
            sot_at = prompt.index(tokenizer.sot)
            no_speech = logprobs[sot_at, tokenizer.no_speech].exp().item()
            results.append((tokens, total / (len(tokens) + 1), no_speech))
        return results

    def align(self, encoded, start_sequence, text_tokens, num_frames, median_filter_width=7):
        from soritune.infer.align_torch import align

        return align(self, encoded, start_sequence, text_tokens, num_frames, median_filter_width)

    def describe(self) -> dict:
        dtype = str(next(self.model.parameters()).dtype).replace("torch.", "")
        return {"backend": self.name, "spec": self.spec, "dtype": dtype, "device": self.device,
                "encoder_input": self.encoder_input, **self.info}
