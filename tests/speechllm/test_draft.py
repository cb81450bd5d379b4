"""Whisper drafts in the prompt (config.draft): where the draft goes, that long clips are drafted whole,
that training decodes each clip's draft once, and that outside training every call decodes (TTFT)."""

from __future__ import annotations

import pytest

from soritune.speechllm.draft import DRAFT_LABEL, Drafter, with_draft

from .conftest import tiny_config, tone, toy_examples


class CountingBackend:
    """Stands in for the Whisper backend (its tokenizer kept): one text per piece, or `tokens` decoded;
    every call and piece length recorded."""

    def __init__(self, real, tokens: list[int] | None = None):
        self.calls: list[list[int]] = []
        self.processor, self.eos, self.tokens = real.processor, real.eos, tokens

    def transcribe(self, pieces):
        from soritune.infer.base import Transcription

        self.calls.append([len(p) for p in pieces])
        if self.tokens is not None:
            text = self.processor.tokenizer.decode(self.tokens)
            return [Transcription(text=text, tokens=list(self.tokens)) for _ in pieces]
        return [Transcription(text=f"초안 {len(p) // 16000}") for p in pieces]


@pytest.fixture(scope="module")
def draft_model():
    from soritune.speechllm import SpeechLLM

    return SpeechLLM(tiny_config(encoder_input="trimmed", draft="tiny:"))


def counting(model, tokens: list[int] | None = None) -> CountingBackend:
    real = model.drafter.backend
    fake = CountingBackend(getattr(real, "real", real), tokens)
    fake.real = getattr(real, "real", real)
    model.drafter.backend = fake
    model.drafter._cache.clear()
    return fake


def test_with_draft_labels_the_draft_after_the_prompt():
    assert with_draft("Transcribe.", None) == "Transcribe."
    assert with_draft("Transcribe.", "안녕 하세요") == f"Transcribe.\n{DRAFT_LABEL} 안녕 하세요"


def test_the_real_whisper_drafter_transcribes_every_clip():
    drafter = Drafter("tiny:")
    assert drafter.info["backend"] == "torch"  # tiny: has no CTranslate2 form; bundled:/ct2: use ct2 int8
    texts = drafter([tone(1.0)])
    assert len(texts) == 1 and isinstance(texts[0], str)


def test_draft_sits_after_the_prompt_and_the_audio_stays_in_place(draft_model):
    tok = draft_model.tokenizer
    pre, post = draft_model.prompt_ids("Transcribe.", draft="초안 일이삼")
    pre0, post0 = draft_model.prompt_ids("Transcribe.")
    assert pre == pre0  # the audio tokens go where they went without a draft
    text = tok.decode(post)
    assert text.index("Transcribe.") < text.index(DRAFT_LABEL) < text.index("초안 일이삼")
    assert len(post) > len(post0)


def test_build_inputs_decodes_the_draft_when_not_given(draft_model):
    fake = counting(draft_model)
    clips = [tone(1.0), tone(3.0, 700)]
    batch = draft_model.build_inputs(clips, ["Transcribe."] * 2)
    assert fake.calls == [[16000, 48000]]
    given = draft_model.build_inputs(clips, ["Transcribe."] * 2, drafts=["초안 1", "초안 3"])
    assert fake.calls == [[16000, 48000]]  # given drafts are not decoded again
    assert given["inputs_embeds"].shape == batch["inputs_embeds"].shape


def test_a_clip_longer_than_30_s_is_drafted_whole(draft_model):
    fake = counting(draft_model)
    texts = draft_model.drafter([tone(65.0)])
    pieces = fake.calls[0]
    assert len(pieces) == 3 and sum(pieces) == 65 * 16000 and max(pieces) <= 30 * 16000
    assert texts[0].count("초안") == 3  # the chunk drafts joined, none dropped


def test_a_looping_draft_is_cut_before_its_loop(draft_model):
    counting(draft_model)
    tok = draft_model.drafter.backend.processor.tokenizer
    head, unit = tok("안녕하세요", add_special_tokens=False).input_ids, tok(" 10^9", add_special_tokens=False).input_ids
    assert len(unit) >= 2  # a unit of several tokens, repeated 12 times: a loop by soritune.loops' definition

    def words(ids):
        return " ".join(tok.decode(ids, skip_special_tokens=True).split())

    counting(draft_model, head + unit * 12)
    before = draft_model.drafter.loops_cut
    assert draft_model.drafter([tone(1.0)]) == [words(head + unit)]  # kept up to the loop's first unit
    assert draft_model.drafter.loops_cut == before + 1
    counting(draft_model, head + unit * 2)  # no loop: the draft is the whole text
    assert draft_model.drafter([tone(1.0)]) == [words(head + unit * 2)]
    assert draft_model.drafter.loops_cut == before + 1


def test_outside_training_every_call_decodes_inside_it_once_per_clip(draft_model):
    fake = counting(draft_model)
    clip = tone(1.0)
    draft_model.build_inputs([clip], ["Transcribe."])
    draft_model.build_inputs([clip], ["Transcribe."])
    assert len(fake.calls) == 2  # generation and the efficiency protocol pay for the draft every time
    with draft_model.remembering_drafts():
        draft_model.build_inputs([clip], ["Transcribe."])
        draft_model.build_inputs([clip, tone(2.0)], ["Transcribe."] * 2)
    assert fake.calls[2:] == [[16000], [32000]]
    assert not draft_model.drafter.remember


def test_training_with_a_draft_decodes_each_clip_once_and_round_trips(tmp_path):
    from soritune.speechllm import SpeechLLM, StageTrainConfig
    from soritune.speechllm.compress import response_loss_on
    from soritune.speechllm.data import read_examples
    from soritune.speechllm.train import run_stage

    data = toy_examples(tmp_path, 3)
    model = SpeechLLM(tiny_config(encoder_input="trimmed", draft="tiny:"))
    fake = counting(model)
    rows = read_examples(data)
    with model.remembering_drafts():
        before = response_loss_on(model, rows)
    result = run_stage(StageTrainConfig(data=str(data), out=str(tmp_path / "s1"), stage=1, steps=8, batch_size=2,
                                        lr=3e-3, model=model.config), model=model)
    assert sum(len(c) for c in fake.calls) == 3  # 3 clips drafted once (before training), never again
    with model.remembering_drafts():
        assert response_loss_on(model, rows) < before
    loaded = SpeechLLM.load(result.model_dir)
    assert loaded.config.draft == "tiny:" and loaded.describe()["draft"]["spec"] == "tiny:"
