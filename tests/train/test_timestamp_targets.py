"""Timestamp targets (probability p) and previous-text prompts (probability q) in training targets:
the label layout, the draws, the masking, and that LoRA on tiny: learns to emit timestamps and to
follow a prompt (each against a control trained without them)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from soritune.data.dataset import IGNORE, ManifestDataset, WhisperCollator
from soritune.data.labels import (
    MAX_PROMPT_TOKENS,
    LabelBuilder,
    LabelRecipe,
    previous_utterances,
)
from soritune.models.tokenizer import timestamp_seconds, timestamp_token_id


@pytest.fixture(scope="module")
def processor(tiny):
    return tiny.processor


def _rows(corpus):
    from soritune.data.manifest import read_manifest

    rows = read_manifest(corpus / "train.jsonl")
    for i, r in enumerate(rows):
        r["speaker"] = f"s{i % 2}"  # two speakers, alternating
    return rows


def test_zero_probabilities_give_todays_targets_exactly(corpus, processor):
    tok = processor.tokenizer
    ds = ManifestDataset(_rows(corpus), tok, timestamp_probability=0.0, prompt_probability=0.0, seed=3)
    coll = WhisperCollator(processor.feature_extractor, pad_token_id=tok.convert_tokens_to_ids("<|endoftext|>"))
    for epoch in (0, 5):
        ds.set_epoch(epoch)
        items = [ds[i] for i in range(len(ds))]
        for i, it in enumerate(items):
            expected = ds.prompt + tok(ds.texts[i], add_special_tokens=False)["input_ids"] + [ds.eot]
            assert it["tokens"] == expected and it["prompt_len"] == 0
        batch = coll(items)
        plain = coll([{**it, "prompt_len": 0} for it in items])
        assert torch.equal(batch["labels"], plain["labels"])


def test_timestamped_target_layout(corpus, processor):
    tok = processor.tokenizer
    ds = ManifestDataset(_rows(corpus), tok, timestamp_probability=1.0, seed=0)
    for i in range(len(ds)):
        toks, n_prompt = ds.target(i)
        assert n_prompt == 0
        names = tok.convert_ids_to_tokens(toks[:3])
        assert names == ["<|startoftranscript|>", "<|ko|>", "<|transcribe|>"]
        assert toks[3] == timestamp_token_id(tok, 0.0) and timestamp_seconds(tok, toks[3]) == 0.0
        end = timestamp_seconds(tok, toks[-2])
        assert end == pytest.approx(round(ds.durations_s[i] / 0.02) * 0.02, abs=1e-6)
        assert toks[-1] == ds.eot and tok.decode(toks[4:-2]) == ds.texts[i]
    assert timestamp_token_id(tok, 99.0) == timestamp_token_id(tok, 30.0) == tok.convert_tokens_to_ids("<|notimestamps|>") + 1501


def test_previous_text_prompt_is_masked(corpus, processor):
    tok = processor.tokenizer
    rows = _rows(corpus)
    ds = ManifestDataset(rows, tok, prompt_probability=1.0, seed=0)
    coll = WhisperCollator(processor.feature_extractor, pad_token_id=ds.eot)
    sop, sot = tok.convert_tokens_to_ids("<|startofprev|>"), tok.convert_tokens_to_ids("<|startoftranscript|>")
    items = [ds[i] for i in range(len(ds))]
    batch = coll(items)
    for i, it in enumerate(items):
        toks, n = it["tokens"], it["prompt_len"]
        assert toks[0] == sop and toks[n] == sot
        prev_text = tok.decode(toks[1:n])
        if i >= 2:  # the previous utterance of the same speaker (speakers alternate)
            assert prev_text == ds.texts[i - 2]
        else:  # first of its speaker: a random other utterance
            assert prev_text in ds.texts and prev_text != ds.texts[i]
        labels = batch["labels"][i].tolist()
        assert all(t == IGNORE for t in labels[:n])  # no loss on the prompt nor on <|startoftranscript|>
        assert tok.convert_ids_to_tokens(labels[n]) == "<|ko|>"
        assert batch["decoder_input_ids"][i, :len(toks) - 1].tolist() == toks[:-1]


def test_previous_utterances_by_speaker_then_recording():
    rows = [{"id": "a", "audio": "x.wav", "speaker": "k"}, {"id": "b", "audio": "y.wav", "offset": 0.0},
            {"id": "c", "audio": "z.wav", "speaker": "k"}, {"id": "d", "audio": "y.wav", "offset": 5.0},
            {"id": "e", "audio": "w.wav"}, {"id": "f", "audio": "y.wav", "offset": 9.0, "speaker": ""}]
    assert previous_utterances(rows) == [None, None, 0, 1, None, 3]


def test_draws_are_deterministic_at_the_requested_rate(processor):
    tok = processor.tokenizer
    n = 4000
    prefix = [tok.convert_tokens_to_ids(t) for t in ("<|startoftranscript|>", "<|ko|>", "<|transcribe|>", "<|notimestamps|>")]
    build = LabelBuilder(tok, prefix, LabelRecipe(0.5, 0.3, seed=7), [None] * n)
    def text(j):
        return [1000 + j % 7]

    ts0 = timestamp_token_id(tok, 0.0)
    draws = [build.build(i, 0, text, 2.0) for i in range(n)]
    assert draws == [build.build(i, 0, text, 2.0) for i in range(n)]  # a pure function of (seed, epoch, i)
    with_ts = np.mean([ts0 in t for t, _ in draws])
    with_prompt = np.mean([k > 0 for _, k in draws])
    assert 0.47 < with_ts < 0.53 and 0.27 < with_prompt < 0.33
    assert [build.build(i, 1, text, 2.0) for i in range(50)] != draws[:50]  # another epoch, other draws


def test_long_prompt_is_cut_to_fit(processor):
    tok = processor.tokenizer
    prefix = [tok.convert_tokens_to_ids(t) for t in ("<|startoftranscript|>", "<|ko|>", "<|transcribe|>", "<|notimestamps|>")]
    texts = {0: list(range(100, 700)), 1: [5, 6, 7]}
    build = LabelBuilder(tok, prefix, LabelRecipe(0.0, 1.0), [None, 0], max_label_tokens=448)
    toks, n = build.build(1, 0, texts.__getitem__, 1.0)
    assert n == MAX_PROMPT_TOKENS + 1 and toks[1:n] == texts[0][-MAX_PROMPT_TOKENS:]
    small = LabelBuilder(tok, prefix, LabelRecipe(0.0, 1.0), [None, 0], max_label_tokens=20)
    toks, n = small.build(1, 0, texts.__getitem__, 1.0)
    assert len(toks) == 20 and toks[1:n] == texts[0][-(20 - 8 - 1):]


# ---- training on tiny: the abilities are learnt (and absent in the control) ----------------------

def _greedy(model, audio: np.ndarray, processor, prefix: list[int], max_tokens: int = 12) -> list[int]:
    from transformers.modeling_outputs import BaseModelOutput

    from soritune.infer.base import features
    from soritune.models.encoder import encode

    feats = features(processor, [audio], "trimmed", return_tensors="pt")  # as trained (dynamic length)
    eot = processor.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    ids = torch.tensor([prefix])
    with torch.inference_mode():
        enc = BaseModelOutput(last_hidden_state=encode(model.model.encoder, feats))
        for _ in range(max_tokens):
            nxt = int(model(encoder_outputs=enc, decoder_input_ids=ids).logits[0, -1].argmax())
            ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
            if nxt == eot:
                break
    return ids[0, len(prefix):].tolist()


def _train(make_cfg, train, **kw):
    from soritune.models import load
    from soritune.models.adapters import apply_adapter
    from soritune.train import run

    cfg = make_cfg(train=str(train), method="lora", target="all-linear", lora_r=8, lr=2e-2,
                   schedule="constant", **kw)
    assert run(cfg).status == "completed"
    return apply_adapter(load("tiny:").model, cfg.run_dir() / "adapter", merge=True).eval()


def _ids(tok, *names):
    return [tok.convert_tokens_to_ids(n) for n in names]


def test_lora_with_timestamps_emits_them(make_cfg, corpus, tmp_path):
    from soritune.audio import load_audio

    loaded = __import__("soritune.models", fromlist=["load"]).load("tiny:")
    tok, processor = loaded.processor.tokenizer, loaded.processor
    prefix = _ids(tok, "<|startoftranscript|>", "<|ko|>", "<|transcribe|>")
    audio = load_audio(corpus / "u0.wav")
    ts0 = timestamp_token_id(tok, 0.0)
    tuned = _train(make_cfg, corpus / "train.jsonl", max_steps=25, timestamp_probability=1.0, prompt_probability=0.0,
                   out=str(tmp_path / "ts"))
    out = _greedy(tuned, audio, processor, prefix)
    assert out[0] == ts0, tok.convert_ids_to_tokens(out)
    control = _train(make_cfg, corpus / "train.jsonl", max_steps=25, timestamp_probability=0.0, prompt_probability=0.0,
                     out=str(tmp_path / "plain"))
    assert not [t for t in _greedy(control, audio, processor, prefix) if timestamp_seconds(tok, t) is not None]


@pytest.fixture(scope="module")
def sharp_tiny(tmp_path_factory):
    """tiny: with its tied token embedding scaled x30. The random tiny's 0.02-std embedding caps every
    logit near +-0.6, so no adapter can make one answer clearly likelier than another; scaled, LoRA
    can (the model is still 2+2 layers, d_model 32, random)."""
    from soritune.models import load

    out = tmp_path_factory.mktemp("sharp_tiny")
    loaded = load("tiny:")
    with torch.no_grad():
        loaded.model.model.decoder.embed_tokens.weight.mul_(30.0)
    loaded.model.save_pretrained(str(out))
    loaded.processor.save_pretrained(str(out))
    return out


def _prompt_corpus(out):
    """The same audio X labelled differently by speaker; only the previous text tells them apart."""
    from soritune.audio import write_wav
    from soritune.data.manifest import write_manifest
    from soritune.data.synth import speak

    out.mkdir(parents=True, exist_ok=True)
    x = write_wav(out / "x.wav", speak("가나다라"))
    rows = []
    for spk, (context, answer) in PROMPTED.items():
        audio = speak(context, voice="ko-f1" if spk == "a" else "ko-m1")
        ctx = write_wav(out / f"{spk}.wav", audio)
        rows += [{"id": f"{spk}0", "audio": ctx.name, "duration": round(len(audio) / 16000, 4), "text": context, "speaker": spk},
                 {"id": f"{spk}1", "audio": x.name, "duration": 1.0, "text": answer, "speaker": spk}]
    write_manifest(out / "train.jsonl", rows)
    return out


PROMPTED = {"a": ("하나 둘 셋", "사과"), "b": ("넷 다섯", "바나나")}  # speaker: (previous text, answer on X)


def test_lora_with_prompts_follows_the_prompt(make_cfg, sharp_tiny, tmp_path):
    """After q=1 training the prompt decides which answer the model prefers on the same audio
    (teacher-forced log-probabilities); a control trained with q=0 prefers the same answer under both."""
    from transformers.modeling_outputs import BaseModelOutput

    from soritune.audio import load_audio
    from soritune.infer.base import features
    from soritune.models import load
    from soritune.models.adapters import apply_adapter
    from soritune.models.encoder import encode
    from soritune.train import run

    data = _prompt_corpus(tmp_path / "data")
    processor = load(str(sharp_tiny)).processor
    tok = processor.tokenizer
    feats = features(processor, [load_audio(data / "x.wav")], "trimmed", return_tensors="pt")
    start = _ids(tok, "<|startoftranscript|>", "<|ko|>", "<|transcribe|>", "<|notimestamps|>")
    (ctx_a, ans_a), (ctx_b, ans_b) = PROMPTED.values()
    def text(s):
        return tok(s, add_special_tokens=False)["input_ids"]

    def log_prob(model, context: str, answer: str) -> float:
        prefix = _ids(tok, "<|startofprev|>") + text(context) + start
        target = text(answer) + [tok.convert_tokens_to_ids("<|endoftext|>")]
        with torch.inference_mode():
            enc = BaseModelOutput(last_hidden_state=encode(model.model.encoder, feats))
            logp = model(encoder_outputs=enc, decoder_input_ids=torch.tensor([prefix + target[:-1]])).logits[0].log_softmax(-1)
        return float(sum(logp[len(prefix) - 1 + k, t] for k, t in enumerate(target)))

    def preference(q: float) -> tuple[float, float]:
        """log P(answer a) - log P(answer b) on X, under prompt a and under prompt b."""
        cfg = make_cfg(model=str(sharp_tiny), train=str(data / "train.jsonl"), out=str(tmp_path / f"q{q}"),
                       method="lora", target="all-linear", lora_r=8, lr=6e-3, max_steps=50, schedule="constant",
                       timestamp_probability=0.0, prompt_probability=q)
        assert run(cfg).status == "completed"
        model = apply_adapter(load(str(sharp_tiny)).model, cfg.run_dir() / "adapter", merge=True).eval()
        return tuple(log_prob(model, c, ans_a) - log_prob(model, c, ans_b) for c in (ctx_a, ctx_b))

    under_a, under_b = preference(1.0)
    assert under_a > 0 > under_b, (under_a, under_b)  # the prompt picks the answer
    control_a, control_b = preference(0.0)
    assert (control_a > 0) == (control_b > 0), (control_a, control_b)  # never trained on prompts: it cannot


def _logits(model, enc, prefix: list[int]):
    return model(encoder_outputs=enc, decoder_input_ids=torch.tensor([prefix])).logits[0]


def _mean_loglik(model, enc, prefix: list[int], target: list[int]) -> float:
    logp = _logits(model, enc, prefix + target)[len(prefix) - 1:-1].log_softmax(-1)
    return float(logp[torch.arange(len(target)), torch.tensor(target)].mean())


def _timestamp_wins(tok, logits) -> bool:
    """Whisper's timestamp rule (ApplyTimestampRules): the summed probability of all timestamp tokens
    beats the likeliest text token, so decoding with timestamps on writes a timestamp here."""
    logp = logits.float().log_softmax(-1)
    begin = timestamp_token_id(tok, 0.0)
    return bool(torch.logsumexp(logp[begin:], -1) > logp[:begin].max())


def _timestamp_and_prompt_checks(model, processor, manifest, n: int = 6) -> dict:
    """Teacher-forced, one forward pass each, on the first n utterances of a manifest:
    opens: after <|sot|><|ko|><|transcribe|> a timestamp comes next (timestamps on; `_timestamp_wins`);
    closes: after <|0.00|> + the reference text a timestamp comes next again (the segment is closed);
    prompt_gain: mean per-token log-likelihood of the reference with the reference as previous-text
    prompt minus without (> 0: the prompt pulls decoding towards its words)."""
    from transformers.modeling_outputs import BaseModelOutput

    from soritune.audio import load_audio
    from soritune.data.manifest import read_manifest
    from soritune.infer.base import features
    from soritune.models.encoder import encode

    tok = processor.tokenizer
    start = _ids(tok, "<|startoftranscript|>", "<|ko|>", "<|transcribe|>")
    plain = start + _ids(tok, "<|notimestamps|>")
    opens = closes = 0
    gains = []
    rows = read_manifest(manifest)[:n]
    for r in rows:
        feats = features(processor, [load_audio(r["audio"])], "trimmed", return_tensors="pt")
        ref = tok(r["text"], add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            enc = BaseModelOutput(last_hidden_state=encode(model.model.encoder, feats))
            opens += _timestamp_wins(tok, _logits(model, enc, start)[-1])
            closes += _timestamp_wins(tok, _logits(model, enc, start + [timestamp_token_id(tok, 0.0)] + ref)[-1])
            gains.append(_mean_loglik(model, enc, _ids(tok, "<|startofprev|>") + ref + plain, ref)
                         - _mean_loglik(model, enc, plain, ref))
    return {"n": len(rows), "opens": opens, "closes": closes, "prompt_gain": float(np.mean(gains)),
            "prompt_gain_min": float(np.min(gains))}


@pytest.mark.slow
def test_whisper_base_lora_keeps_timestamps_and_prompts(tmp_path_factory):
    """LoRA on the bundled whisper-base with p = q = 0.5 for a few steps: with timestamps on it still
    opens and closes segments with timestamp tokens, and a prompt holding the transcript still makes
    that transcript likelier (see _timestamp_and_prompt_checks)."""
    from soritune.data.synth_corpus import SynthCorpusConfig, build_synth_corpus
    from soritune.models import load
    from soritune.models.adapters import apply_adapter
    from soritune.train import TrainConfig, run

    data = tmp_path_factory.mktemp("synth_ts")
    build_synth_corpus(SynthCorpusConfig(out=data, n=80, n_dev=8, n_test=1, n_everyday=1, seed=0))
    cfg = TrainConfig(model="bundled:whisper-base", train=str(data / "train.jsonl"),
                      out=str(tmp_path_factory.mktemp("run") / "lora"), method="lora", target="qv", batch_size=8,
                      max_steps=20, lr=1e-3, eval_at_start=False, threads=2, timestamp_probability=0.5,
                      prompt_probability=0.5)
    assert run(cfg).status == "completed"
    loaded = load("bundled:whisper-base")
    model = apply_adapter(loaded.model, cfg.run_dir() / "adapter", merge=True).eval()
    checks = _timestamp_and_prompt_checks(model, loaded.processor, data / "dev.jsonl")
    print(f"\nwhisper-base LoRA 20 steps, p=q=0.5: {checks}")
    assert checks["opens"] == checks["n"] and checks["closes"] == checks["n"], checks
    assert checks["prompt_gain"] > 0.5 and checks["prompt_gain_min"] > 0, checks


def test_nonspeech_rows_are_kept_with_an_empty_plain_target(corpus, processor):
    """A row marked nonspeech keeps its empty text (target <|notimestamps|><|endoftext|>, never a
    timestamped empty segment); an empty row without the mark is still skipped."""
    tok = processor.tokenizer
    rows = _rows(corpus)
    quiet = {**rows[0], "id": "quiet", "text": "", "nonspeech": True}
    blank = {**rows[1], "id": "blank", "text": ""}
    ds = ManifestDataset(rows + [quiet, blank], tok, timestamp_probability=1.0, prompt_probability=0.0, seed=0)
    assert "quiet" in ds.ids and "blank" not in ds.ids
    assert [s["reason"] for s in ds.skipped if s["id"] == "blank"] == ["empty_text"]
    i = ds.ids.index("quiet")
    for epoch in range(3):
        ds.set_epoch(epoch)
        assert ds[i]["tokens"] == ds.prompt + [ds.eot] and ds[i]["prompt_len"] == 0
    assert ds[0]["tokens"][3] == timestamp_token_id(tok, 0.0)  # speech rows still get timestamps at p = 1


def test_nonspeech_rows_teach_the_no_speech_token_after_sot(corpus, processor):
    """Whisper's recipe: on a non-speech clip the label after <|startoftranscript|> is the no-speech token
    (what `no_speech_prob` reads at decoding), on speech the language; after a previous-text prompt too."""
    tok = processor.tokenizer
    rows = _rows(corpus)
    quiet = {**rows[0], "id": "quiet", "text": "", "nonspeech": True}
    ds = ManifestDataset(rows + [quiet], tok, prompt_probability=1.0, seed=0)
    collate = WhisperCollator(processor.feature_extractor, pad_token_id=ds.eot)
    no_speech, ko = tok.convert_tokens_to_ids("<|nocaptions|>"), tok.convert_tokens_to_ids("<|ko|>")
    assert ds.no_speech_token == no_speech
    items = [ds[ds.ids.index("quiet")], ds[0], ds[1]]
    batch = collate(items)
    for row, it in enumerate(items):
        at = it["prompt_len"]
        assert (batch["labels"][row, :at] == IGNORE).all()
        assert batch["labels"][row, at].item() == (no_speech if it["id"] == "quiet" else ko)
        assert batch["decoder_input_ids"][row, at + 1].item() == ko  # the input still forces the language
    assert any(it["prompt_len"] > 0 for it in items) and "no_speech_token" not in items[1]
