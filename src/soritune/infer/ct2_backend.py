"""CTranslate2 backend: ctranslate2.models.Whisper under soritune's own batching loop.

ct2:DIR and bundled:whisper-base run as they are; other specs (hf directories, tiny:, adapters) are
converted with CTranslate2's own converter into a temporary directory first.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from soritune.errors import SoritunError
from soritune.infer.base import check_encoder_input, features
from soritune.infer.decode import Decoder
from soritune.jsonio import read_json, write_json

CONVERSION_FILE = "soritune_ct2.json"  # how convert_to_ct2 made a directory, and the compute type to run it with


def is_int8(quantization: str | None) -> bool:
    """int8, int8_float32, int8_float16, int8_bfloat16: the quantizations with int8 weights."""
    return bool(quantization) and quantization.startswith("int8")


def is_input_conv(name: str) -> bool:
    """The encoder's two input convolutions in a CTranslate2 Whisper spec (encoder/conv1, encoder/conv2)."""
    return name.startswith("encoder/conv")


def convert_to_ct2(model, processor, out_dir: str | Path, quantization: str | None = None,
                   float_convs: bool = True) -> Path:
    """Save a transformers Whisper (adapters merged) and convert it with ctranslate2's converter.

    float_convs: with an int8 quantization, keep the encoder's two input convolutions in float32
    (everything else int8, as ctranslate2 does). ctranslate2 quantizes them too, and then runs them
    on int8 activations of the log-mel input; measured on the demo's LoRA model that alone cost 1.8 of
    its 2.7 CER points, for 2.6 MB of file and no measurable speed (see README). ctranslate2 leaves
    float convolutions float at load time, whatever the compute type."""
    from ctranslate2.converters import TransformersConverter

    keep_float = float_convs and is_int8(quantization)

    class FloatConvs:  # the model spec, with optimize() = alias + quantize all but the convolutions
        def __init__(self, spec):
            self.spec = spec

        def __getattr__(self, name):
            return getattr(self.spec, name)

        def optimize(self, quantization=None):
            self.spec._alias_variables()
            self.spec._quantize(quantization, variable_filter=lambda name: not is_input_conv(name))

    class Converter(TransformersConverter):
        def _load(self):
            spec = super()._load()
            return FloatConvs(spec) if keep_float else spec

    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="soritune-hf-") as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        processor.feature_extractor.to_json_file(str(Path(tmp) / "preprocessor_config.json"))
        copy = [f for f in ("tokenizer.json", "preprocessor_config.json") if (Path(tmp) / f).exists()]
        Converter(tmp, copy_files=copy).convert(str(out_dir), quantization=quantization, force=True)
    # a model whose convolutions stay float loads as float32 under compute_type "default" (ctranslate2's
    # and faster-whisper's default): say which compute type it is for; CT2Backend reads it
    write_json(out_dir / CONVERSION_FILE, {
        "quantization": quantization or "float32", "float_input_convs": keep_float,
        "compute_type": {"cpu": "int8", "cuda": "int8_float16"} if is_int8(quantization) else None})
    return out_dir


def recorded_compute_type(ct2_dir: str | Path, device: str) -> str | None:
    """The compute type convert_to_ct2 recorded for this device (None: none recorded)."""
    path = Path(ct2_dir) / CONVERSION_FILE
    if not path.exists():
        return None
    try:
        return (read_json(path).get("compute_type") or {}).get("cpu" if device == "cpu" else "cuda")
    except (ValueError, AttributeError):
        return None


def ct2_max_length(max_new_tokens: int, prompt_len: int = 4) -> int:
    """CTranslate2's Whisper generates at most max_length // 2 new tokens (Whisper's sample_len rule);
    a longer prompt (previous text, hotwords) takes its own length on top."""
    return min(448, max(2 * max_new_tokens, prompt_len + max_new_tokens))


class CT2Backend(Decoder):
    name = "ct2"

    def __init__(self, ct2_dir: str | Path, processor, spec: str = "", device: str = "cpu",
                 compute_type: str | None = None, threads: int | None = None, info: dict | None = None,
                 owned_tmp: tempfile.TemporaryDirectory | None = None, encoder_input: str = "padded"):
        import ctranslate2

        self.encoder_input = check_encoder_input(encoder_input)
        self.ct2_dir, self.processor, self.spec, self.device = Path(ct2_dir), processor, spec, device
        self.compute_type = (compute_type or recorded_compute_type(ct2_dir, device)
                             or ("float32" if device == "cpu" else "float16"))
        self.threads = threads or int(os.environ.get("SORITUNE_THREADS", 0)) or os.cpu_count() or 1
        self._tmp = owned_tmp  # keeps a converted directory alive as long as the backend
        try:
            self.model = ctranslate2.models.Whisper(
                str(self.ct2_dir), device=device, compute_type=self.compute_type, intra_threads=self.threads)
        except ValueError as e:
            raise SoritunError(f"ct2 backend: {e}") from None
        self.info = dict(info or {})
        self.eos = processor.tokenizer.eos_token_id

    def close(self) -> None:
        """Remove the converted copy this backend owns (if any); the loaded model keeps working."""
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def prompt(self, language: str, task: str) -> list[int]:
        """The plain decoder prompt: <|startoftranscript|><|lang|><|task|><|notimestamps|>."""
        from soritune.infer.decode import fw_tokenizer

        tok = fw_tokenizer(self.processor, language, task)
        return list(tok.sot_sequence) + [tok.no_timestamps]

    def features(self, audios: list[np.ndarray]) -> np.ndarray:
        return np.ascontiguousarray(features(self.processor, audios, self.encoder_input), dtype=np.float32)

    # --- the Engine steps of soritune.infer.decode ---
    def encode(self, audios: list[np.ndarray]):
        import ctranslate2

        feats = ctranslate2.StorageView.from_array(self.features(audios))
        return self.model.encode(feats, to_cpu=self.device != "cpu")  # on the CPU, so take() can slice it

    def take(self, encoded, idx: list[int]):
        import ctranslate2

        return ctranslate2.StorageView.from_array(np.ascontiguousarray(np.asarray(encoded)[idx]))

    def detect_language(self, encoded) -> list[tuple[str, float]]:
        return [(r[0][0].strip("<|>"), float(r[0][1])) for r in self.model.detect_language(encoded)]

    def generate(self, encoded, prompts, temperature, options, tokenizer):
        """CTranslate2 needs <|startoftranscript|> at one position in a batch: prompts of different lengths
        (previous text of different recordings, batched together) are generated in groups of one length."""
        groups: dict[int, list[int]] = {}
        for i, p in enumerate(prompts):
            groups.setdefault(len(p), []).append(i)
        out: list = [None] * len(prompts)
        for members in groups.values():
            sub = encoded if len(members) == len(prompts) else self.take(encoded, members)
            for i, r in zip(members, self._generate(sub, [prompts[i] for i in members], temperature, options)):
                out[i] = r
        return out

    def _generate(self, encoded, prompts, temperature, options):
        longest = max(len(p) for p in prompts)
        kwargs = dict(beam_size=options.beam_size, patience=options.patience)
        if temperature > 0:
            kwargs = dict(beam_size=1, sampling_temperature=temperature, sampling_topk=0, num_hypotheses=options.best_of)
        results = self.model.generate(
            encoded, prompts, length_penalty=options.length_penalty, repetition_penalty=options.repetition_penalty,
            no_repeat_ngram_size=options.no_repeat_ngram_size, max_length=ct2_max_length(options.max_new_tokens, longest),
            return_scores=True, return_no_speech_prob=True, suppress_blank=options.suppress_blank,
            max_initial_timestamp_index=50, **kwargs)
        out = []
        for r in results:  # the best hypothesis first (of best_of samples at a temperature > 0), as faster-whisper takes it
            tokens = list(r.sequences_ids[0])
            # CTranslate2's score is the length-normalised log-probability: back to the sum, then per token
            # with the end-of-text token counted, as Whisper's avg_logprob
            total = r.scores[0] * (len(tokens) ** options.length_penalty)
            out.append((tokens, total / (len(tokens) + 1), float(r.no_speech_prob)))
        return out

    def align(self, encoded, start_sequence, text_tokens, num_frames, median_filter_width=7):
        return self.model.align(encoded, start_sequence, text_tokens, num_frames,
                                median_filter_width=median_filter_width)

    def describe(self) -> dict:
        return {"backend": self.name, "spec": self.spec, "dtype": self.compute_type, "device": self.device,
                "threads": self.threads,
                "encoder_input": self.encoder_input, **self.info}
