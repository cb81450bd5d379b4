"""SpeechLLM: Whisper encoder -> projector -> causal LLM, prompted through the LLM's chat template.

The user turn is `<audio>\\n{prompt}` rendered by the tokenizer's chat template; the rendered text is
split at the placeholder and the projected audio embeddings go in its place, so the model sees exactly
the template it was tuned on. Training appends the response and the template's end-of-turn text; the
loss covers only those tokens.

    from soritune.speechllm import SpeechLLM, SpeechLLMConfig
    model = SpeechLLM(SpeechLLMConfig(encoder="tiny:", llm="random:tiny"))
    text = model.generate(audio, "Transcribe the audio.")
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from soritune.config import load_config, save_config
from soritune.errors import SoritunError
from soritune.speechllm.config import (
    AUDIO_PLACEHOLDER,
    DEFAULT_PROMPTS,
    SpeechLLMConfig,
)
from soritune.speechllm.draft import Drafter, with_draft
from soritune.speechllm.encoders import FRAME_S, SpeechEncoder, split_long
from soritune.speechllm.events import EventEncoder
from soritune.speechllm.layers import decoder_of, drop_layers
from soritune.speechllm.llm import add_lora, load_llm
from soritune.speechllm.projectors import build_projector, covered_frames

IGNORE = -100


@dataclass
class AudioInfo:
    """What happened to one clip: every second of it is encoded (truncated_s is reported, always 0)."""

    audio_s: float
    n_chunks: int
    n_audio_tokens: int
    truncated_s: float = 0.0


class SpeechLLM:
    def __init__(self, config: SpeechLLMConfig | None = None, **overrides):
        import torch

        self.config = config = (config or SpeechLLMConfig()).model_copy(update=overrides)
        self.encoder = SpeechEncoder(config.encoder, encoder_input=config.encoder_input, seed=config.seed)
        if config.encoder_lora_r:
            self.encoder.add_lora(config.encoder_lora_r, 2 * config.encoder_lora_r, config.lora_dropout,
                                  config.encoder_lora_targets)
        self.encoder.freeze(config.freeze_encoder)
        self.events = EventEncoder(config.event_encoder, seed=config.seed) if config.event_encoder else None
        self.drafter = Drafter(config.draft) if config.draft else None
        loaded = load_llm(config.llm, seed=config.seed, attn_implementation=config.attn_implementation,
                          quantization=config.llm_quantization)
        self.llm, self.tokenizer, self.llm_info = loaded.model, loaded.tokenizer, loaded.info
        for p in self.llm.parameters():
            p.requires_grad_(False)
        if config.llm_drop_layers:
            drop_layers(self.llm, config.llm_drop_layers)
            self.llm_info.update(dropped_layers=list(config.llm_drop_layers),
                                 params=sum(p.numel() for p in self.llm.parameters()))
        d_llm = self.llm.get_input_embeddings().embedding_dim
        torch.manual_seed(config.seed)
        d_audio = self.encoder.d_model + (self.events.d_model if self.events else 0)
        self.projector = build_projector(config.projector, d_audio, d_llm, **config.projector_options)
        self.covered_s = covered_frames(self.projector, 1500) * FRAME_S
        self._end_of_turn = self._template_end_of_turn()
        self.last_generation: dict | None = None
        self.decoding_dtype: str | None = None  # set inside `decoding()`: the dtype of the LLM copy in use
        if config.lora:
            self.enable_lora()

    # ---- composition -------------------------------------------------------------------------
    def enable_lora(self) -> None:
        """Stage 2: LoRA on the LLM's config.lora_targets (a no-op when already there)."""
        if hasattr(self.llm, "peft_config"):
            return
        c, training = self.config, self.llm.training
        self.llm = add_lora(self.llm, r=c.lora_r, alpha=c.lora_alpha, dropout=c.lora_dropout,
                            targets=tuple(c.lora_targets))
        self.llm.train(training)  # peft switches to training mode (LoRA dropout on): keep the caller's mode
        self.config = c.model_copy(update={"lora": True})

    def drop_llm_layers(self, layers: list[int]) -> None:
        """Remove LLM decoder layers (indices of the current stack); config.llm_drop_layers keeps them as
        indices of the full model, so `save`/`load` reproduce the drop (LoRA adapters included)."""
        n_full = len(decoder_of(self.llm).layers) + len(self.config.llm_drop_layers)
        current = [i for i in range(n_full) if i not in set(self.config.llm_drop_layers)]
        drop_layers(self.llm, layers)
        full = sorted(set(self.config.llm_drop_layers) | {current[i] for i in layers})
        self.config = self.config.model_copy(update={"llm_drop_layers": full})
        self.llm_info.update(dropped_layers=full, params=sum(p.numel() for p in self.llm.parameters()))

    @contextmanager
    def remembering_drafts(self):
        """Within the block each clip's Whisper draft is decoded once and reused (training, sensitivity
        sweeps); outside it every call decodes, so the efficiency protocol's TTFT includes the draft."""
        if self.drafter is None or self.drafter.remember:
            yield self
            return
        self.drafter.remember = True
        try:
            yield self
        finally:
            self.drafter.remember = False

    def trainable_parameters(self) -> list:
        mods = [self.projector, self.llm, self.encoder.module]
        return [p for m in mods for p in m.parameters() if p.requires_grad]

    def train(self, mode: bool = True) -> None:
        self.projector.train(mode)
        self.llm.train(mode)
        self.encoder.module.train(mode and self.encoder.trains)

    def to(self, device: str) -> SpeechLLM:
        for m in (self.projector, self.llm, self.encoder.module):
            m.to(device)
        return self

    @property
    def llm_dtype(self) -> str:
        """The LLM's float dtype ('float32', 'bfloat16', ...; a bitsandbytes LLM: its embeddings')."""
        return str(self.llm.get_input_embeddings().weight.dtype).removeprefix("torch.")

    @property
    def device(self):
        return self.llm.get_input_embeddings().weight.device

    # ---- audio -------------------------------------------------------------------------------
    def encode_clips(self, clips: list[np.ndarray]) -> list[list]:
        """Encoder outputs per clip, one per chunk (long clips are chunked, never cut). A frozen encoder's
        outputs can be cached by the caller (training does) and passed to `audio_embeddings`."""
        pieces, owner = [], []
        for i, audio in enumerate(clips):
            for piece in split_long(audio, self.covered_s):
                pieces.append(piece)
                owner.append(i)
        per_clip: list[list] = [[] for _ in clips]
        chunks = self.encoder.encode_pieces(pieces)
        if self.events is not None:  # SALMONN: event features on the speech frame grid, channel-concatenated
            import torch

            for chunk, ev in zip(chunks, self.events.encode(pieces)):
                aligned = self.events.align(ev.to(chunk.features.dtype), chunk.features.shape[0])
                chunk.features = torch.cat([chunk.features, aligned.to(chunk.features.device)], dim=-1)
        for chunk, i in zip(chunks, owner):
            per_clip[i].append(chunk)
        return per_clip

    def audio_embeddings(self, clips: list[np.ndarray], encoded: list[list] | None = None
                         ) -> tuple[list[Any], list[AudioInfo]]:
        """Projected audio tokens [n_tokens, d_llm] per clip, the chunks' tokens concatenated in order."""
        import torch

        encoded = encoded if encoded is not None else self.encode_clips(clips)
        dtype = self.llm.get_input_embeddings().weight.dtype
        proj_dtype = next(self.projector.parameters()).dtype
        embeds, infos = [], []
        for audio, chunks in zip(clips, encoded):
            parts = []
            for chunk in chunks:
                feats = chunk.features
                if self.encoder.encoder_input == "padded":
                    feats = feats[: covered_frames(self.projector, feats.shape[0])]
                parts.append(self.projector(feats[None].to(proj_dtype))[0])
            e = torch.cat(parts, dim=0).to(dtype)
            embeds.append(e)
            infos.append(AudioInfo(audio_s=len(audio) / 16000, n_chunks=len(chunks), n_audio_tokens=e.shape[0]))
        return embeds, infos

    # ---- prompts -----------------------------------------------------------------------------
    def _messages(self, prompt: str, system: str | None = None, draft: str | None = None) -> list[dict]:
        system = system or self.config.system_prompt
        msgs = [{"role": "system", "content": system}] if system else []
        return msgs + [{"role": "user", "content": f"{AUDIO_PLACEHOLDER}\n{with_draft(prompt, draft)}"}]

    def _template_end_of_turn(self) -> str:
        """The text the chat template puts after an assistant message (e.g. '<|im_end|>')."""
        marker = "\u2063RESPONSE\u2063"
        text = self.tokenizer.apply_chat_template(self._messages("x") + [{"role": "assistant", "content": marker}],
                                                  tokenize=False)
        tail = text.split(marker, 1)[1].rstrip("\n ") if marker in text else ""
        return tail or (self.tokenizer.eos_token or "")

    def prompt_ids(self, prompt: str, system: str | None = None, draft: str | None = None
                   ) -> tuple[list[int], list[int]]:
        """Token ids before and after the audio placeholder in the rendered chat template (`system`: a system
        message instead of config.system_prompt; `draft`: a Whisper draft after the prompt)."""
        text = self.tokenizer.apply_chat_template(self._messages(prompt, system, draft), tokenize=False,
                                                  add_generation_prompt=True)
        if text.count(AUDIO_PLACEHOLDER) != 1:
            raise SoritunError(f"the chat template of {self.config.llm} does not keep the audio placeholder "
                               f"{AUDIO_PLACEHOLDER!r} exactly once")
        before, after = text.split(AUDIO_PLACEHOLDER)
        enc = self.tokenizer
        return enc(before, add_special_tokens=False).input_ids, enc(after, add_special_tokens=False).input_ids

    def response_ids(self, response: str) -> list[int]:
        return self.tokenizer(response + self._end_of_turn, add_special_tokens=False).input_ids

    def stop_ids(self) -> list[int]:
        ids = {self.tokenizer.eos_token_id}
        end = self.tokenizer(self._end_of_turn, add_special_tokens=False).input_ids
        if len(end) == 1:
            ids.add(end[0])
        return sorted(i for i in ids if i is not None)

    def _embed(self, ids: list[int]):
        import torch

        return self.llm.get_input_embeddings()(torch.tensor(ids, dtype=torch.long, device=self.device))

    def build_inputs(self, clips: list[np.ndarray], prompts: list[str], responses: list[str] | None = None,
                     encoded: list[list] | None = None, system: str | None = None,
                     audio_text: list[str] | None = None, drafts: list[str] | None = None):
        """inputs_embeds, attention_mask and (with responses) labels on the response only. Rows are laid out
        [pad][prompt + audio][response][pad]: the prompts are left-padded to one width, so without responses
        the batch is left-padded as generation needs, and with them every response starts in the same column
        (`response_positions`: the columns whose logits predict a response token, shared by the batch).
        `audio_text`: the transcript's tokens stand where the audio would (the self-distillation teacher).
        With a drafter (config.draft) each prompt carries the clip's Whisper draft (`drafts`: computed by the
        caller; None: decoded here; the self-distillation teacher, which has no audio, gets none)."""
        import torch

        if audio_text is not None:
            audio = [self._embed(self.tokenizer(t, add_special_tokens=False).input_ids) for t in audio_text]
            infos = [AudioInfo(audio_s=0.0, n_chunks=0, n_audio_tokens=0) for _ in audio_text]
            drafts = None
        else:
            audio, infos = self.audio_embeddings(clips, encoded)
            if self.drafter is not None and drafts is None:
                drafts = self.drafter(clips)
        drafts = drafts if self.drafter is not None else None
        heads, resps = [], []
        for k, (emb, prompt) in enumerate(zip(audio, prompts)):
            pre, post = self.prompt_ids(prompt, system, drafts[k] if drafts is not None else None)
            heads.append(torch.cat([self._embed(pre), emb, self._embed(post)]))
            resps.append(self.response_ids(responses[k]) if responses is not None else [])
        head_w, resp_w = max(h.shape[0] for h in heads), max(len(r) for r in resps)
        d = heads[0].shape[1]
        embeds = heads[0].new_zeros(len(heads), head_w + resp_w, d)
        mask = torch.zeros(len(heads), head_w + resp_w, dtype=torch.long, device=self.device)
        lab = torch.full((len(heads), head_w + resp_w), IGNORE, dtype=torch.long, device=self.device)
        for k, (h, r) in enumerate(zip(heads, resps)):
            embeds[k, head_w - h.shape[0]: head_w] = h
            mask[k, head_w - h.shape[0]: head_w + len(r)] = 1
            if r:
                embeds[k, head_w: head_w + len(r)] = self._embed(r)
                lab[k, head_w: head_w + len(r)] = torch.tensor(r, dtype=torch.long, device=self.device)
        return {"inputs_embeds": embeds, "attention_mask": mask, "labels": lab if responses is not None else None,
                "response_positions": torch.arange(head_w - 1, head_w - 1 + resp_w, device=self.device),
                "audio": infos}

    def response_logits(self, batch, **llm_kwargs):
        """(logits [batch, n, vocab], targets [batch, n]) at the response columns only: the LLM's head runs on
        those columns (`logits_to_keep`), not on the prompt and audio (a 262k-word head dominates the cost)."""
        keep = batch["response_positions"]
        out = self.llm(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"],
                       logits_to_keep=keep, use_cache=False, **llm_kwargs)
        return out.logits, batch["labels"][:, keep + 1]

    def loss(self, clips: list[np.ndarray], prompts: list[str], responses: list[str]):
        """Mean cross-entropy over the response tokens (and end of turn) of the batch."""
        return response_loss(*self.response_logits(self.build_inputs(clips, prompts, responses)))

    def generate(self, audio: np.ndarray, prompt: str | None = None, *, task: str = "transcribe",
                 max_new_tokens: int = 128, streamer=None, system: str | None = None) -> str:
        """Greedy decoding with the KV cache (transformers generate from inputs_embeds). What happened to the
        audio (chunks, truncated seconds) and the token count are kept in `last_generation`."""
        texts, gens = self.generate_batch([audio], [prompt or DEFAULT_PROMPTS[task]], max_new_tokens=max_new_tokens,
                                          streamer=streamer, system=system)
        self.last_generation = gens[0]
        return texts[0]

    def generate_batch(self, clips: list[np.ndarray], prompts: list[str], *, max_new_tokens: int = 128,
                       streamer=None, system: str | None = None, stop_loops: bool = True
                       ) -> tuple[list[str], list[dict]]:
        """Greedy answers to several clips in one left-padded batch (one KV-cached decode step serves every
        row: CPU decoding is memory-bound, so a batch of 8 costs about what one row does). A row ends at the
        chat template's end of turn (or EOS) or, with `stop_loops`, once it loops (soritune.speechllm.decoding:
        what it generated until then is kept; `loop_stopped`). Returns the texts and, per row, what
        `last_generation` holds for one."""
        import torch

        from soritune.speechllm.decoding import loop_guard

        batch = self.build_inputs(clips, prompts, system=system)
        stops = self.stop_ids()
        guard = loop_guard(stops) if stop_loops else None
        with torch.no_grad():
            out = self.llm.generate(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"],
                                    max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=stops,
                                    pad_token_id=self.tokenizer.pad_token_id, streamer=streamer,
                                    stopping_criteria=[guard] if guard else None)
        texts, gens = [], []
        for k, row in enumerate(out.tolist()):
            end = next((i for i, t in enumerate(row) if t in stops), None)
            looped = guard is not None and end is None and k in guard.stopped_at
            ids = row[: guard.stopped_at[k]] if looped else row if end is None else row[: end + 1]
            texts.append(self.tokenizer.decode(ids, skip_special_tokens=True).strip())
            gens.append({"audio": batch["audio"][k], "new_tokens": len(ids),
                         "prompt_tokens": int(batch["attention_mask"][k].sum()), "loop_stopped": looped,
                         "hit_max_tokens": end is None and not looped and len(ids) >= max_new_tokens})
        return texts, gens

    @contextmanager
    def decoding(self, dtype: str = "float32"):
        """Within the block `self.llm` is the decoding form of the LLM (soritune.speechllm.decoding): in another
        dtype than the LLM's, a copy in that dtype with LoRA merged (`auto`: bfloat16 on a CPU with native bf16
        matrix units); in the same dtype, the LLM itself. The trained LLM is restored after (and is never
        modified). Nested blocks reuse the outer form."""
        from soritune.speechllm.decoding import inference_copy, resolve_dtype

        dtype = resolve_dtype(dtype, self)
        if self.decoding_dtype is not None or dtype == self.llm_dtype or self.config.llm_quantization:
            yield self
            return
        trained, self.llm = self.llm, inference_copy(self.llm, dtype)
        self.decoding_dtype = dtype
        try:
            yield self
        finally:
            self.llm, self.decoding_dtype = trained, None

    # ---- save / load -------------------------------------------------------------------------
    def save(self, out_dir: str | Path) -> Path:
        """config.yaml + projector.safetensors (+ lora/ adapter, + encoder.safetensors when trained)."""
        from safetensors.torch import save_file

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        save_config(self.config, out / "config.yaml")
        save_file({k: v.detach().cpu().contiguous() for k, v in self.projector.state_dict().items()},
                  str(out / "projector.safetensors"))
        if self.config.lora:
            self.llm.save_pretrained(str(out / "lora"))
        if self.config.encoder_lora_r and self.config.freeze_encoder:
            save_file({k: v.detach().cpu().contiguous() for k, v in self.encoder.lora_state().items()},
                      str(out / "encoder_lora.safetensors"))
        if not self.config.freeze_encoder:
            save_file({k: v.detach().cpu().contiguous() for k, v in self.encoder.module.state_dict().items()},
                      str(out / "encoder.safetensors"))
        return out

    @classmethod
    def load(cls, run_dir: str | Path, **overrides) -> SpeechLLM:
        """The model saved by `save` (LoRA attached, weights restored)."""
        from peft import PeftModel
        from safetensors.torch import load_file

        run = Path(run_dir)
        if not (run / "projector.safetensors").is_file():
            raise SoritunError(f"{run}: no projector.safetensors: not a speech-LLM run directory")
        config = load_config(SpeechLLMConfig, run / "config.yaml")
        model = cls(config.model_copy(update={"lora": False, **overrides}))
        model.projector.load_state_dict(load_file(str(run / "projector.safetensors")))
        if (run / "encoder.safetensors").is_file():
            model.encoder.module.load_state_dict(load_file(str(run / "encoder.safetensors")))
        if (run / "encoder_lora.safetensors").is_file():
            missing = model.encoder.module.load_state_dict(load_file(str(run / "encoder_lora.safetensors")),
                                                           strict=False).unexpected_keys
            if missing:
                raise SoritunError(f"{run}/encoder_lora.safetensors: keys the encoder does not have: {missing[:3]}")
        if config.lora:
            model.llm = PeftModel.from_pretrained(model.llm, str(run / "lora"), is_trainable=True)
            model.config = model.config.model_copy(update={"lora": True})
        model.train(False)  # inference mode (peft loads a trainable adapter in training mode: dropout on)
        return model

    def describe(self) -> dict:
        return {"config": self.config.model_dump(), "encoder": self.encoder.info, "llm": self.llm_info,
                "event_encoder": self.events.info if self.events else None,
            "draft": self.drafter.info if self.drafter else None,
                "projector_params": sum(p.numel() for p in self.projector.parameters()),
                "covered_s_per_pass": round(self.covered_s, 3), "trainable_params":
                sum(p.numel() for p in self.trainable_parameters())}


def response_loss(logits, targets):
    """Mean cross-entropy over the labelled response tokens (the logits are aligned with their targets)."""
    import torch.nn.functional as F

    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=IGNORE)


__all__ = ["SpeechLLM", "AudioInfo", "response_loss"]
