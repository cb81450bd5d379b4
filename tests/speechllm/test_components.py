"""Projector shapes, every encoder/projector/LLM path, prompt placement, long audio, LLM specs."""

import pytest
import torch

from soritune.errors import ConfigError, ModelSpecError
from soritune.speechllm.projectors import build_projector, covered_frames

from .conftest import TINY_OPTIONS, tiny_config, tone


@pytest.mark.parametrize("name,tokens", [("salmonn", 88), ("granite", 300), ("slam", 300), ("ultravox", 187)])
def test_tokens_per_30s_pass(name, tokens):
    proj = build_projector(name, 32, 48, **TINY_OPTIONS[name])
    frames = covered_frames(proj, 1500)
    out = proj(torch.randn(2, frames, 32))
    assert out.shape == (2, tokens, 48)
    assert 1500 - frames < proj.window  # only the padding tail of a 30-s pass is left out


def test_salmonn_defaults_are_the_papers():
    proj = build_projector("salmonn", 512, 896)
    assert (proj.window, proj.queries, len(proj.layers)) == (17, 1, 2)
    assert proj(torch.randn(1, covered_frames(proj, 1500), 512)).shape == (1, 88, 896)
    granite = build_projector("granite", 512, 896)
    assert (granite.window, granite.queries) == (15, 3)


def test_partial_window_is_padded_not_dropped():
    proj = build_projector("salmonn", 32, 48, **TINY_OPTIONS["salmonn"])
    assert proj(torch.randn(1, 18, 32)).shape[1] == 2  # 17 + 1 frames -> two windows


def test_unknown_projector_and_option_are_named():
    with pytest.raises(ConfigError, match="unknown 'qformer'"):
        build_projector("qformer", 8, 8)
    with pytest.raises(ConfigError, match="windoww"):
        build_projector("salmonn", 8, 8, windoww=3)


@pytest.fixture(scope="module")
def padded_model():
    from soritune.speechllm import SpeechLLM

    return SpeechLLM(tiny_config())


def test_salmonn_model_gives_88_tokens_per_padded_pass(padded_model):
    padded = padded_model
    emb, info = padded.audio_embeddings([tone(12.0)])
    assert emb[0].shape[0] == 88 and info[0].n_chunks == 1
    assert padded.covered_s == pytest.approx(29.92)


def test_long_audio_is_chunked_never_truncated(tiny_model, padded_model):
    padded = padded_model
    emb, info = padded.audio_embeddings([tone(70.0)])
    assert info[0].n_chunks == 3 and info[0].truncated_s == 0.0 and info[0].audio_s == pytest.approx(70.0)
    assert emb[0].shape[0] == 3 * 88
    # trimmed input: every frame of the 70 s is covered by a window
    emb, info = tiny_model.audio_embeddings([tone(70.0)])
    assert info[0].n_chunks == 3
    assert emb[0].shape[0] * 17 * 0.02 >= 70.0


@pytest.mark.parametrize("projector,llm", [("salmonn", "random:tiny"), ("granite", "random:tiny"),
                                           ("slam", "random:tiny"), ("ultravox", "random:tiny"),
                                           ("salmonn", "random:tiny-llama")])
def test_every_projector_and_llm_path_trains(projector, llm):
    from soritune.speechllm import SpeechLLM

    model = SpeechLLM(tiny_config(projector, llm, encoder_input="trimmed"))
    loss = model.loss([tone(2.0), tone(1.0, 220)], ["Transcribe.", "Describe."], ["안녕하세요", "a dog barks"])
    assert torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in model.projector.parameters())
    assert all(p.grad is None for p in model.llm.parameters())
    assert all(p.grad is None for p in model.encoder.module.parameters())


def test_prompt_goes_through_the_chat_template_with_audio_in_place(tiny_model):
    m = tiny_model
    pre, post = m.prompt_ids("Transcribe this.")
    assert m.tokenizer.decode(pre).startswith("<|im_start|>user")
    assert "Transcribe this." in m.tokenizer.decode(post) and m.tokenizer.decode(post).endswith("assistant\n")
    batch = m.build_inputs([tone(2.0)], ["Transcribe this."], ["가나다"])
    n_audio = batch["audio"][0].n_audio_tokens
    emb = batch["inputs_embeds"][0]
    table = m.llm.get_input_embeddings().weight
    assert torch.equal(emb[: len(pre)], table[pre])
    assert torch.equal(emb[len(pre) + n_audio: len(pre) + n_audio + len(post)], table[post])
    audio, _ = m.audio_embeddings([tone(2.0)])
    assert torch.allclose(emb[len(pre): len(pre) + n_audio], audio[0])
    labels = batch["labels"][0]
    resp = m.response_ids("가나다")
    assert labels[labels != -100].tolist() == resp  # loss only on response + end of turn
    assert m.tokenizer.decode(resp).endswith("<|im_end|>")


def test_llm_spec_errors_are_named():
    from soritune.speechllm.llm import load_llm

    with pytest.raises(ModelSpecError, match="unknown LLM architecture"):
        load_llm("random:gpt-5")
    with pytest.raises(ModelSpecError, match="no such GGUF"):
        load_llm("/nonexistent/model.gguf")
    with pytest.raises(ModelSpecError, match="unknown LLM spec"):
        load_llm("nonsense")


def test_tokenizers_without_a_chat_template_get_their_familys():
    from soritune.speechllm.llm import ensure_chat_template, random_tokenizer

    tok = random_tokenizer()
    tok.chat_template, info = None, {}
    ensure_chat_template(tok, info)
    assert info["chat_template"].startswith("chatml")
    tok.add_special_tokens({"additional_special_tokens": ["<start_of_turn>", "<end_of_turn>"]})
    tok.chat_template, info = None, {}
    ensure_chat_template(tok, info)
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert info["chat_template"].startswith("gemma")
    assert text.endswith("<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n")


def test_response_only_logits_give_the_full_forward_loss_on_a_padded_batch(tiny_model):
    """Prompts of different lengths are left-padded so the responses share columns; the head runs on those
    columns only, and the loss equals transformers' own loss over the full logits."""
    m = tiny_model
    batch = m.build_inputs([tone(2.0), tone(0.5, 220)], ["Transcribe.", "Describe the sound, please."],
                           ["안녕하세요 여러분", "a dog"])
    with torch.no_grad():
        full = m.llm(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"],
                     labels=batch["labels"], use_cache=False)
        logits, targets = m.response_logits(batch)
    from soritune.speechllm.model import response_loss

    assert logits.shape[1] == len(m.response_ids("안녕하세요 여러분")) < batch["inputs_embeds"].shape[1] // 2
    assert torch.isfinite(full.logits).all()
    assert torch.allclose(response_loss(logits, targets), full.loss, atol=1e-5)


def test_batched_generation_equals_one_clip_at_a_time(tiny_model):
    m = tiny_model
    clips, prompts = [tone(2.0, 300), tone(0.7, 900, seed=2), tone(1.3, 1500, seed=3)], ["Transcribe.", "Describe "
                                                                                          "the sound.", "What?"]
    texts, gens = m.generate_batch(clips, prompts, max_new_tokens=6)
    for clip, prompt, text, gen in zip(clips, prompts, texts, gens):
        assert m.generate(clip, prompt, max_new_tokens=6) == text
        assert m.last_generation["new_tokens"] == gen["new_tokens"]
        assert m.last_generation["prompt_tokens"] == gen["prompt_tokens"]
