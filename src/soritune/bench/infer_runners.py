"""The systems `bench infer` times, each behind the same two calls on one batch of clips:

- `e2e(audios) -> BatchRun`: the system's own transcription call, audio in -> text out;
- `steps(audios) -> (StepTiming, tokens)`: the same decoding, instrumented for TTFT and TPOT.

Runners: soritune torch backend, soritune CTranslate2 backend, and the peers faster-whisper
(same CTranslate2 directory) and Hugging Face `generate` (same weights). How each derives TTFT/TPOT
is in its `ttft_method` (written to the report).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from soritune.bench.memory import MB
from soritune.bench.timing import StepStreamer, StepTiming, clock, from_phases, from_step_times

TORCH_DTYPES = ("float32", "bfloat16", "float16", "int8")
CT2_DTYPES = ("float32", "int8", "int8_float32", "float16", "int8_float16", "bfloat16", "int8_bfloat16")


@dataclass
class BatchRun:
    latency_s: float
    tokens: list[list[int]]  # content tokens per clip (no prompt, no special tokens)
    hit_max: int = 0  # clips that stopped at the token limit


@dataclass
class Runner:
    """Common fields; subclasses implement load(), e2e(), steps()."""

    system: str  # soritune | faster-whisper | hf-generate
    backend: str  # torch | ct2 | faster-whisper | hf
    dtype: str
    attn: str | None = None
    device: str = "cpu"
    language: str = "ko"
    task: str = "transcribe"
    max_new_tokens: int = 224
    ttft_method: str = ""
    settings: dict = field(default_factory=dict)
    weights_mb: float | None = None  # parameter + buffer bytes, where the engine exposes them (torch)
    encoder_input: str = "padded"  # soritune rows: padded (30 s) | trimmed (the batch's own length)

    @property
    def trimmed(self) -> str | None:
        return "trimmed" if self.encoder_input == "trimmed" else None

    @property
    def key(self) -> str:
        return "/".join(x for x in (self.system, self.backend, self.dtype, self.attn, self.trimmed) if x)

    @property
    def label(self) -> str:
        name = {"soritune": f"soritune {self.backend}", "faster-whisper": "faster-whisper",
                "hf-generate": "HF generate"}[self.system]
        return f"{name} {self.dtype}" + (f" {self.attn}" if self.attn else "") + (" trimmed" if self.trimmed else "")


class BackendRunner(Runner):
    """A soritune backend (torch, ct2) timed end to end through its own transcribe()."""

    def e2e(self, audios) -> BatchRun:
        t0 = clock(self.device)
        outs = self.backend_obj.transcribe(audios, language=self.language, task=self.task, batch_size=len(audios),
                                           max_new_tokens=self.max_new_tokens)
        t1 = clock(self.device)
        return BatchRun(t1 - t0, [o.tokens for o in outs], sum(o.hit_max_tokens for o in outs))


# ---- torch: soritune backend and the Hugging Face generate peer ------------------------------------
def tensor_mb(model) -> float:
    """Bytes of a torch model's parameters and buffers, MB (10^6 bytes; 8-bit weights count as stored)."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors) / MB


def content_tokens(seq: list[int], tokenizer) -> list[int]:
    """Text tokens of a generate() output: special tokens and timestamps dropped (as TorchBackend does)."""
    specials = set(tokenizer.all_special_ids)
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    return [t for t in seq if t not in specials and t < eot]


def torch_generate(model, feats, *, language: str, task: str, max_new_tokens: int, streamer=None, encode=None):
    """Greedy Whisper generate() with the arguments soritune's torch backend uses (with `encode`, the
    encoder runs through it, as TorchBackend does for trimmed input)."""
    import torch

    with torch.inference_mode():
        inputs = {"encoder_outputs": encode(feats)} if encode else {"input_features": feats}
        return model.generate(**inputs, language=language, task=task, do_sample=False, num_beams=1,
                              max_new_tokens=max_new_tokens, return_timestamps=False, streamer=streamer)


TORCH_TTFT = ("generate() with a streamer that timestamps each decoding step: TTFT = features + encoder + "
              "first step; TPOT = mean of the later steps")


def set_attention(model, attn: str | None) -> None:
    if attn and hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(attn)


@dataclass
class TorchRunner(BackendRunner):
    """soritune's torch backend (load_backend(..., backend='torch'))."""

    spec: str = ""
    adapter: str | None = None
    backend_obj: Any = None

    def load(self) -> None:
        from soritune.infer import load_backend

        quant = "8bit" if self.dtype == "int8" else None
        self.backend_obj = load_backend(self.spec, backend="torch", adapter=self.adapter, device=self.device,
                                        compute_type=None if quant else self.dtype, quantization=quant,
                                        encoder_input=self.encoder_input)
        set_attention(self.backend_obj.model, self.attn)
        self.weights_mb = tensor_mb(self.backend_obj.model)
        self.ttft_method = TORCH_TTFT
        self.settings = {"call": "TorchBackend.transcribe", **self.backend_obj.describe()}

    def steps(self, audios) -> tuple[StepTiming, list[list[int]]]:
        be = self.backend_obj
        streamer = StepStreamer(self.device)
        t0 = clock(self.device)
        seqs = torch_generate(be.model, be.features(audios), language=self.language, task=self.task,
                              max_new_tokens=self.max_new_tokens, streamer=streamer,
                              encode=be.encoder_outputs if self.trimmed else None)
        t_end = clock(self.device)
        tok = be.processor.tokenizer
        return from_step_times(t0, streamer.step_times(), t_end), [content_tokens(s, tok) for s in seqs.tolist()]


@dataclass
class HFRunner(Runner):
    """Peer: WhisperForConditionalGeneration.from_pretrained + WhisperProcessor + generate(), the way a
    transformers user runs Whisper. Same weights: the model's Hugging Face directory when it has one
    (bundled:, hf:), else soritune.models.load(spec) (tiny:, random:, ct2: imported)."""

    spec: str = ""
    adapter: str | None = None  # merged with peft, as a transformers user would
    model: Any = None
    processor: Any = None

    def load(self) -> None:
        import torch

        from soritune.models import load, model_dir_for, parse_spec

        dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[self.dtype]
        src = model_dir_for(parse_spec(self.spec))
        if src is not None:
            from transformers import WhisperForConditionalGeneration, WhisperProcessor

            self.model = WhisperForConditionalGeneration.from_pretrained(str(src), dtype=dtype,
                                                                         attn_implementation=self.attn)
            self.processor = WhisperProcessor.from_pretrained(str(src))
            source = f"from_pretrained({src.name})"
        else:
            self.model, self.processor = load(self.spec, dtype=dtype)
            set_attention(self.model, self.attn)
            source = f"soritune.models.load({self.spec})"
        if self.adapter:
            from peft import PeftModel

            self.model = PeftModel.from_pretrained(self.model, self.adapter).merge_and_unload()
            source += f" + PeftModel.from_pretrained({self.adapter}).merge_and_unload()"
        self.model.to(self.device).eval()
        self.weights_mb = tensor_mb(self.model)
        self.ttft_method = TORCH_TTFT
        self.settings = {"call": "WhisperForConditionalGeneration.generate", "source": source, "num_beams": 1,
                         "do_sample": False, "max_new_tokens": self.max_new_tokens, "return_timestamps": False,
                         "attn_implementation": self.attn, "dtype": self.dtype}

    def _features(self, audios):
        feats = self.processor(audios, sampling_rate=16000, return_tensors="pt").input_features
        return feats.to(self.device, dtype=self.model.dtype)

    def e2e(self, audios) -> BatchRun:
        t0 = clock(self.device)
        seqs = torch_generate(self.model, self._features(audios), language=self.language, task=self.task,
                              max_new_tokens=self.max_new_tokens)
        self.processor.batch_decode(seqs, skip_special_tokens=True)
        t1 = clock(self.device)
        tok = self.processor.tokenizer
        toks = [content_tokens(s, tok) for s in seqs.tolist()]
        return BatchRun(t1 - t0, toks, sum(len(t) >= self.max_new_tokens - 1 for t in toks))

    def steps(self, audios) -> tuple[StepTiming, list[list[int]]]:
        streamer = StepStreamer(self.device)
        t0 = clock(self.device)
        seqs = torch_generate(self.model, self._features(audios), language=self.language, task=self.task,
                              max_new_tokens=self.max_new_tokens, streamer=streamer)
        t_end = clock(self.device)
        tok = self.processor.tokenizer
        return from_step_times(t0, streamer.step_times(), t_end), [content_tokens(s, tok) for s in seqs.tolist()]


# ---- CTranslate2: soritune backend and the faster-whisper peer ----------------------------------
CT2_TTFT = ("CTranslate2's Whisper.generate has no per-step hook: TTFT = features + encode() + a generate() "
            "limited to 1 new token on that encoder output; TPOT = (full generate() - 1-token generate()) / "
            "(n - 1) on the same encoder output")


def ct2_first_token_max_length(prompt_len: int) -> int:
    """max_length that makes CTranslate2's Whisper emit exactly one new token after `prompt_len` prompt
    tokens (it emits at most min(max_length - prompt_len + 1, max_length // 2))."""
    return max(prompt_len, 2)


def ct2_steps(sequences: list[list[int]], cap: int) -> int:
    """Decoder steps of a batch: its longest output, plus the step that emitted EOS unless it hit the cap."""
    longest = max((len(s) for s in sequences), default=0)
    return longest if longest >= cap else longest + 1


def ct2_cap(max_length: int, prompt_len: int) -> int:
    """New tokens CTranslate2's Whisper can emit at most for this max_length and prompt."""
    return max(0, min(max_length - prompt_len + 1, max_length // 2))


def _phased_ct2(model, feats: np.ndarray, prompts: list[list[int]], full_max_length: int, device: str,
                t0: float, **gen_kwargs) -> tuple[StepTiming, list]:
    """Time encode + 1-token generate + full generate on one batch (see CT2_TTFT)."""
    import ctranslate2

    enc = model.encode(ctranslate2.StorageView.from_array(feats), to_cpu=False)
    t_g1 = clock(device)
    model.generate(enc, prompts, max_length=ct2_first_token_max_length(len(prompts[0])), **gen_kwargs)
    t_first = clock(device)
    results = model.generate(enc, prompts, max_length=full_max_length, **gen_kwargs)
    t_end = clock(device)
    seqs = [r.sequences_ids[0] for r in results]
    n = ct2_steps(seqs, ct2_cap(full_max_length, len(prompts[0])))
    return from_phases(t0, t_first, t_first - t_g1, t_end - t_first, n), results


@dataclass
class CT2Runner(BackendRunner):
    """soritune's CTranslate2 backend (load_backend(..., backend='ct2')) under its own batching loop."""

    spec: str = ""
    adapter: str | None = None
    threads: int | None = None
    backend_obj: Any = None

    def load(self) -> None:
        from soritune.infer import load_backend

        self.backend_obj = load_backend(self.spec, backend="ct2", adapter=self.adapter, device=self.device,
                                        compute_type=self.dtype, threads=self.threads,
                                        encoder_input=self.encoder_input)
        self.ttft_method = CT2_TTFT
        self.settings = {"call": "CT2Backend.transcribe", "ct2_dir": str(self.backend_obj.ct2_dir),
                         **self.backend_obj.describe()}

    @property
    def ct2_dir(self) -> str:
        return str(self.backend_obj.ct2_dir)

    def steps(self, audios) -> tuple[StepTiming, list[list[int]]]:
        from soritune.infer.ct2_backend import ct2_max_length

        be = self.backend_obj
        prompt = be.prompt(self.language, self.task)
        t0 = clock(self.device)
        feats = be.features(audios)
        timing, results = _phased_ct2(be.model, feats, [prompt] * len(audios), ct2_max_length(self.max_new_tokens),
                                      self.device, t0, beam_size=1, return_scores=False, suppress_blank=True)
        return timing, [[t for t in r.sequences_ids[0] if t < be.eos] for r in results]


def fw_max_new_tokens(max_new_tokens: int, prompt_len: int) -> int:
    """faster-whisper's max_new_tokens that gives CTranslate2 the same max_length soritune passes, so
    both can emit the same number of tokens (faster-whisper sets max_length = prompt + max_new_tokens,
    and CTranslate2 caps new tokens at max_length // 2)."""
    from soritune.infer.ct2_backend import ct2_max_length

    return ct2_max_length(max_new_tokens) - prompt_len


@dataclass
class FasterWhisperRunner(Runner):
    """Peer: faster_whisper.WhisperModel on the same CTranslate2 directory, configured fairly: greedy
    (beam 1, best_of 1), temperature 0.0 as a float (one temperature: no fallback), no timestamps, no
    VAD, no conditioning on previous text, the same token cap, the same threads. Batch 1 uses
    WhisperModel.transcribe; larger batches BatchedInferencePipeline with one clip_timestamps entry per
    clip (its batched path; no VAD when clip_timestamps are given)."""

    ct2_dir: str = ""
    threads: int | None = None
    model: Any = None
    tokenizer: Any = None
    prompt: list[int] = field(default_factory=list)

    def load(self) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        device = "cuda" if self.device.startswith("cuda") else "cpu"
        index = int(self.device.split(":")[1]) if ":" in self.device else 0
        self.model = WhisperModel(self.ct2_dir, device=device, device_index=index, compute_type=self.dtype,
                                  cpu_threads=self.threads or 0, num_workers=1)
        self.tokenizer = Tokenizer(self.model.hf_tokenizer, self.model.model.is_multilingual, task=self.task,
                                   language=self.language)
        self.prompt = self.model.get_prompt(self.tokenizer, [], without_timestamps=True)
        self.ttft_method = ("faster-whisper's own pieces, in its order: feature_extractor + encode() + its "
                            "ctranslate2 model's generate() with its transcribe() arguments limited to 1 new token; "
                            "TPOT = (full generate() - 1-token generate()) / (n - 1)")
        self.settings = self.transcribe_kwargs()
        self.settings.update(ct2_dir=self.ct2_dir, compute_type=self.dtype, cpu_threads=self.threads or 0,
                             batched_call="BatchedInferencePipeline.transcribe(clip_timestamps=one per clip)")

    def transcribe_kwargs(self) -> dict:
        """The fair configuration (tests check it)."""
        return {"language": self.language, "task": self.task, "beam_size": 1, "best_of": 1,
                "temperature": 0.0, "without_timestamps": True, "vad_filter": False,
                "condition_on_previous_text": False, "word_timestamps": False,
                "compression_ratio_threshold": None, "log_prob_threshold": None, "no_speech_threshold": None,
                "max_new_tokens": fw_max_new_tokens(self.max_new_tokens, len(self.prompt) or 4)}

    def _tokens(self, segments) -> list[int]:
        eot = self.tokenizer.eot
        return [t for s in segments for t in s.tokens if t < eot]

    def e2e(self, audios) -> BatchRun:
        kw = self.transcribe_kwargs()
        t0 = clock(self.device)
        if len(audios) == 1:
            segments, info = self.model.transcribe(audios[0], **kw)
            segs = list(segments)
            tokens = [self._tokens(segs)]
        else:
            from faster_whisper import BatchedInferencePipeline

            bounds, start = [], 0
            for a in audios:
                bounds.append({"start": start / 16000, "end": (start + len(a)) / 16000})
                start += len(a)
            kw.pop("condition_on_previous_text")
            segments, info = BatchedInferencePipeline(self.model).transcribe(
                np.concatenate(audios), clip_timestamps=bounds, batch_size=len(audios), **kw)
            segs = list(segments)
            tokens = [[] for _ in audios]
            starts = [b["start"] for b in bounds]
            for s in segs:  # a segment belongs to the clip whose start is nearest to its own
                clip = min(range(len(starts)), key=lambda i: abs(starts[i] - s.start))
                tokens[clip].extend(t for t in s.tokens if t < self.tokenizer.eot)
        t1 = clock(self.device)
        # what faster-whisper itself resolved: one temperature means no fallback
        self.settings["temperatures_run"] = list(info.transcription_options.temperatures)
        return BatchRun(t1 - t0, tokens, sum(len(t) >= self.max_new_tokens for t in tokens))

    def steps(self, audios) -> tuple[StepTiming, list[list[int]]]:
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.transcribe import get_suppressed_tokens

        kw = self.transcribe_kwargs()
        max_length = len(self.prompt) + kw["max_new_tokens"]
        gen = {"beam_size": 1, "patience": 1, "length_penalty": 1, "repetition_penalty": 1,
               "no_repeat_ngram_size": 0, "return_scores": True, "return_no_speech_prob": True,
               "suppress_blank": True, "suppress_tokens": get_suppressed_tokens(self.tokenizer, [-1]),
               "max_initial_timestamp_index": int(round(1.0 / self.model.time_precision))}
        t0 = clock(self.device)
        if len(audios) == 1:  # WhisperModel.transcribe: features of the clip (+ 30 s padding), window trimmed
            feats = self.model.feature_extractor(audios[0])
            feats = pad_or_trim(feats[:, : feats.shape[-1] - 1])[None]
        else:  # BatchedInferencePipeline: features per clip, last frame dropped, padded, stacked
            feats = np.stack([pad_or_trim(self.model.feature_extractor(a)[..., :-1]) for a in audios])
        timing, results = _phased_ct2(self.model.model, np.ascontiguousarray(feats, dtype=np.float32),
                                      [list(self.prompt)] * len(audios), max_length, self.device, t0, **gen)
        return timing, [[t for t in r.sequences_ids[0] if t < self.tokenizer.eot] for r in results]
