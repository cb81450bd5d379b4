"""Decoding: rows stop at the chat template's end of turn, the loop guard ends looping rows (and only them),
and stopping never changes the tokens generated before the stop."""

import pytest
import torch

from soritune.loops import LOOP_MIN_TOKENS, loop_period

from .conftest import tiny_config, tone


def test_loop_period_finds_short_units_and_spares_ordinary_text():
    assert loop_period([5, 6] + [0] * LOOP_MIN_TOKENS) == 1
    assert loop_period([9] + [1, 2, 3] * 4) == 3
    assert loop_period([1, 2, 3] * 3) is None  # 9 tokens: under LOOP_MIN_TOKENS
    assert loop_period(list(range(40))) is None
    assert loop_period([0] * (LOOP_MIN_TOKENS - 1)) is None
    assert loop_period([7, 1, 2, 3, 4, 5] * 3) == 6  # a 6-token unit needs 18 tokens: 3 repetitions
    assert loop_period([1, 2, 3, 4, 5, 6] * 2 + [1, 2, 3, 4, 5]) is None
    assert loop_period(list(range(100, 116)) * 3) == 16


@pytest.fixture(scope="module")
def model():
    from soritune.speechllm import SpeechLLM

    return SpeechLLM(tiny_config(encoder_input="trimmed"))


class _Force:
    """A forward hook on the LLM's output head: from call `after` on, row r's logits favour token tok[r]
    (None: leave the row alone)."""

    def __init__(self, tokens: list[int | None], after: int):
        self.tokens, self.after, self.calls = tokens, after, 0

    def __call__(self, module, args, out):
        self.calls += 1
        if self.calls > self.after:
            out = out.clone()
            for r, tok in enumerate(self.tokens):
                if tok is not None:
                    out[r, -1, tok] += 1e4
        return out


def _forced(model, tokens, after, **kw):
    clips, prompts = [tone(1.0, 300 + 400 * i, seed=i) for i in range(len(tokens))], ["Transcribe."] * len(tokens)
    hook = model.llm.get_output_embeddings().register_forward_hook(_Force(tokens, after))
    try:
        return model.generate_batch(clips, prompts, **kw)
    finally:
        hook.remove()


def test_rows_stop_at_the_templates_end_of_turn(model):
    eot = model.tokenizer(model._end_of_turn, add_special_tokens=False).input_ids
    assert len(eot) == 1 and eot[0] in model.stop_ids() and eot[0] != model.tokenizer.pad_token_id
    free, _ = _forced(model, [None, None], 0, max_new_tokens=8, stop_loops=False)
    texts, gens = _forced(model, [eot[0], None], 3, max_new_tokens=8, stop_loops=False)
    assert gens[0]["new_tokens"] == 4 and not gens[0]["hit_max_tokens"]  # 3 free tokens + the end of turn
    assert texts[1] == free[1] and gens[1]["new_tokens"] == 8 and gens[1]["hit_max_tokens"]
    assert free[0].startswith(texts[0])  # the same tokens until the stop


def test_loop_guard_stops_a_looping_row_and_keeps_what_it_generated(model):
    token = model.tokenizer("a", add_special_tokens=False).input_ids[0]
    texts, gens = _forced(model, [token, None], 2, max_new_tokens=40)  # row 0: 2 free tokens, then "a" forever
    assert gens[0]["loop_stopped"] and not gens[0]["hit_max_tokens"]
    assert LOOP_MIN_TOKENS <= gens[0]["new_tokens"] <= LOOP_MIN_TOKENS + 2
    unguarded, ungens = _forced(model, [token, None], 2, max_new_tokens=40, stop_loops=False)
    assert ungens[0]["new_tokens"] == 40 and ungens[0]["hit_max_tokens"] and not ungens[0]["loop_stopped"]
    assert unguarded[0].startswith(texts[0]) and len(texts[0]) < len(unguarded[0])
    assert unguarded[1].startswith(texts[1])  # the other row goes on after its neighbour stopped
    if not gens[1]["loop_stopped"]:
        assert texts[1] == unguarded[1] and gens[1]["new_tokens"] == ungens[1]["new_tokens"]


def test_generation_with_and_without_the_cache_agree(model):
    """Greedy decoding with the KV cache equals decoding that recomputes the whole sequence each step."""
    audio, prompt, n = tone(1.2, 700, seed=4), "Transcribe.", 6
    texts, _ = model.generate_batch([audio], [prompt], max_new_tokens=n, stop_loops=False)
    batch = model.build_inputs([audio], [prompt])
    embeds, mask, ids = batch["inputs_embeds"], batch["attention_mask"], []
    with torch.no_grad():
        for _ in range(n):
            tok = int(model.llm(inputs_embeds=embeds, attention_mask=mask, use_cache=False).logits[0, -1].argmax())
            if tok in model.stop_ids():
                break
            ids.append(tok)
            embeds = torch.cat([embeds, model._embed([tok])[None]], dim=1)
            mask = torch.cat([mask, mask.new_ones(1, 1)], dim=1)
    assert texts[0] == model.tokenizer.decode(ids, skip_special_tokens=True).strip()


def _lora_model():
    from soritune.speechllm import SpeechLLM

    m = SpeechLLM(tiny_config(encoder_input="trimmed", lora=True, lora_targets=["q_proj", "v_proj", "gate_proj"]))
    torch.manual_seed(3)
    for name, p in m.llm.named_parameters():
        if "lora_B" in name:  # peft starts B at zero: give the adapters an effect to merge
            p.data.normal_(0, 0.2)
    m.train(False)
    return m


def _logits(model, audio):
    batch = model.build_inputs([audio], ["Transcribe."])
    with torch.no_grad():
        return model.llm(inputs_embeds=batch["inputs_embeds"], attention_mask=batch["attention_mask"]).logits[0, -1]


def test_inference_copy_merges_lora_and_leaves_the_trained_llm_alone():
    from soritune.speechllm.decoding import inference_copy

    m, audio = _lora_model(), tone(1.0, 500)
    before = {k: v.clone() for k, v in m.llm.state_dict().items()}
    want = _logits(m, audio)
    trained = m.llm
    m.llm = inference_copy(trained, "float32")
    assert not hasattr(m.llm, "peft_config") and not any("lora" in n for n, _ in m.llm.named_parameters())
    assert m.llm.get_input_embeddings().weight is m.llm.get_output_embeddings().weight  # tie kept
    assert torch.allclose(_logits(m, audio), want, atol=1e-4)
    m.llm = trained
    assert all(torch.equal(v, before[k]) for k, v in m.llm.state_dict().items())
    assert torch.equal(_logits(m, audio), want)


def test_decoding_block_swaps_in_a_bf16_form_and_restores_the_trained_llm():
    m, audio = _lora_model(), tone(1.0, 500)
    trained, want = m.llm, _logits(m, audio)
    with m.decoding("bfloat16"):
        assert m.decoding_dtype == "bfloat16" and m.llm_dtype == "bfloat16" and m.llm is not trained
        got = _logits(m, audio).float()
        with m.decoding("bfloat16"):  # nested: the same form
            assert m.llm_dtype == "bfloat16"
        texts, gens = m.generate_batch([audio, tone(0.6, 900)], ["Transcribe.", "What?"], max_new_tokens=4)
        assert len(texts) == 2 and all(g["new_tokens"] <= 4 for g in gens)
    assert m.llm is trained and m.decoding_dtype is None and m.llm_dtype == "float32"
    assert torch.nn.functional.cosine_similarity(got, want, dim=0) > 0.99
    with m.decoding("float32"):  # already float32: the trained LLM itself
        assert m.llm is trained
