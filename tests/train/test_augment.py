"""Training augmentation: each transform does what it says, changes the features and keeps the labels,
is a pure function of (seed, epoch, utterance), is off by default, touches training batches only, and a
tiny: run with everything on trains end to end and resumes byte-identically."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import yaml

from soritune.audio import SAMPLE_RATE
from soritune.data import augment as A
from soritune.data.augment import AugmentConfig, Augmenter, parse_switches
from soritune.data.dataset import ManifestDataset, WhisperCollator
from soritune.errors import ConfigError
from soritune.train.config import TrainConfig, load_train_config

ALL_ON = {f"{n}_p": 1.0 for n in A.NAMES}
REQUIRED = {"model": "tiny:", "train": "t.jsonl", "out": "o"}


@pytest.fixture(scope="module")
def processor():
    from soritune.models.tokenizer import build_processor

    return build_processor(80)


@pytest.fixture(scope="module")
def items(corpus, processor):
    ds = ManifestDataset(corpus / "train.jsonl", processor.tokenizer, language="ko")
    return [ds[i] for i in range(4)]


def _collator(processor, augment: AugmentConfig | None = None):
    tok = processor.tokenizer
    return WhisperCollator(processor.feature_extractor, pad_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
                           augment=Augmenter(augment) if augment is not None else None)


def _rngs(seed=0, epoch=0, n=4):
    return [Augmenter.rng(seed, epoch, i) for i in range(n)]


def _band_energy(audio, lo_hz, hi_hz):
    spec = np.abs(np.fft.rfft(audio)) ** 2
    f = np.fft.rfftfreq(len(audio), 1 / SAMPLE_RATE)
    return float(spec[(f >= lo_hz) & (f < hi_hz)].sum())


# ---- the transforms ---------------------------------------------------------------------------
def test_speed_changes_length_by_the_factor_and_caps_at_30_s():
    audio = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    assert abs(len(A.speed(audio, 1.25)) - 12800) <= 2
    assert abs(len(A.speed(audio, 0.8)) - 20000) <= 2
    long = np.zeros(29 * SAMPLE_RATE, dtype=np.float32)
    assert len(A.speed(long, 0.9)) <= A.MAX_SAMPLES


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 25.0])
def test_noise_is_added_at_the_asked_snr(snr_db):
    rng = np.random.default_rng(1)
    audio = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / SAMPLE_RATE)).astype(np.float32)
    for colour in ("white", "pink", "brown"):
        noise = A.coloured_noise(rng, len(audio), colour)
        mixed = A.add_noise(audio, noise, snr_db)
        got = 10 * np.log10(np.mean(audio.astype(np.float64) ** 2) / np.mean((mixed - audio).astype(np.float64) ** 2))
        assert abs(got - snr_db) < 0.01, colour
    assert A.add_noise(np.zeros(100, np.float32), noise[:100], 10.0).tolist() == [0.0] * 100  # silence stays silent


def test_noise_colours_differ_in_spectral_tilt():
    rng = np.random.default_rng(2)
    tilt = {c: _band_energy(A.coloured_noise(rng, 32000, c), 50, 500) / _band_energy(A.coloured_noise(rng, 32000, c), 4000, 7500)
            for c in ("white", "pink", "brown")}
    assert tilt["white"] < tilt["pink"] < tilt["brown"]


def test_reverb_keeps_length_and_loudness_and_smears_in_time():
    rng = np.random.default_rng(3)
    ir = A.room_impulse_response(rng, 0.5, 3.0)
    assert ir[0] == 1.0 and len(ir) == 8000
    tail = ir[1:]
    assert abs(10 * np.log10(1.0 / np.sum(tail ** 2)) - 3.0) < 1e-6  # direct-to-reverberant ratio
    assert np.sum(tail[-800:] ** 2) < 1e-3 * np.sum(tail[:800] ** 2)  # decays
    click = np.zeros(16000, np.float32)
    click[1000] = 1.0
    wet = A.reverb(click, rng, 0.5, 0.0)
    assert len(wet) == len(click) and abs(A._rms(wet) - A._rms(click)) < 1e-6
    assert np.abs(wet[3000:]).max() > 1e-3 * np.abs(wet).max()  # energy long after the click


def test_telephone_band_limits_to_300_3400_hz_and_keeps_length():
    audio = np.random.default_rng(4).standard_normal(32000).astype(np.float32) * 0.1
    for mulaw in (False, True):
        out = A.telephone(audio, mulaw=mulaw)
        assert len(out) == len(audio) and out.dtype == np.float32
        in_band = _band_energy(out, 500, 3200) / _band_energy(audio, 500, 3200)
        above = _band_energy(out, 3700, 8000) / _band_energy(audio, 3700, 8000)
        below = _band_energy(out, 0, 150) / _band_energy(audio, 0, 150)
        assert in_band > 0.5 and above < 1e-3 and below < 1e-2, (mulaw, in_band, above, below)


def test_mu_law_is_8_bit_and_close():
    x = np.linspace(-1, 1, 10001)
    y = A.mu_law(x)
    assert len(np.unique(np.round(y, 9))) <= 256
    assert np.max(np.abs(y - x)) < 0.025 and np.max(np.abs(y[np.abs(x) < 0.01] - x[np.abs(x) < 0.01])) < 5e-4


def test_spec_augment_masks_inside_the_utterance_only():
    rng = np.random.default_rng(5)
    feats = rng.standard_normal((80, 300)).astype(np.float32)
    before = feats.copy()
    A.spec_augment(feats, rng, 200, time_masks=2, time_mask_frames=40, time_mask_ratio=0.2, freq_masks=2, freq_mask_bins=27)
    assert np.array_equal(feats[:, 200:], before[:, 200:])  # padding untouched
    assert not np.array_equal(feats[:, :200], before[:, :200])
    changed_cols = np.flatnonzero((feats != before).all(axis=0))
    assert len(changed_cols) <= 80  # two time masks of at most 40 frames


# ---- the collator path ------------------------------------------------------------------------
@pytest.mark.parametrize("name", A.NAMES)
def test_each_augmentation_changes_features_and_keeps_labels(processor, items, name):
    plain = _collator(processor)(items)
    aug = _collator(processor, AugmentConfig(**{f"{name}_p": 1.0}))(items, augment_rngs=_rngs())
    for key in ("decoder_input_ids", "labels"):
        assert torch.equal(plain[key], aug[key]), key
    assert plain["ids"] == aug["ids"]
    a, b = plain["input_features"], aug["input_features"]
    assert a.shape != b.shape or not torch.equal(a, b)
    assert torch.isfinite(b).all()


def test_deterministic_for_seed_epoch_and_utterance(processor, items):
    coll = _collator(processor, AugmentConfig(**ALL_ON))
    one = coll(items, augment_rngs=_rngs(seed=7))["input_features"]
    assert torch.equal(one, coll(items, augment_rngs=_rngs(seed=7))["input_features"])
    assert not torch.equal(one, coll(items, augment_rngs=_rngs(seed=8))["input_features"])
    assert not torch.equal(one, coll(items, augment_rngs=_rngs(seed=7, epoch=1))["input_features"])
    # an utterance gets the same augmentation whatever batch it lands in
    alone = coll(items[2:3], augment_rngs=[Augmenter.rng(7, 0, 2)], pad_frames=one.shape[-1])["input_features"]
    assert torch.equal(alone[0], one[2])


def test_training_stream_is_the_same_from_any_position_and_in_workers(corpus, processor):
    from soritune.train.loop import DataPlan

    ds = ManifestDataset(corpus / "train.jsonl", processor.tokenizer, language="ko")

    def stream(position, workers):
        plan = DataPlan(ds, _collator(processor, AugmentConfig(**ALL_ON)), batch_size=3, world=1, rank=0, seed=3,
                        group_by_length=True, num_workers=workers)
        it = plan.stream(position)
        return [next(it) for _ in range(5 - position)]

    whole = stream(0, 0)  # 3 batches an epoch: crosses into epoch 1
    for got, want in zip(stream(2, 0) + stream(0, 1)[2:], whole[2:] + whole[2:]):
        assert got["ids"] == want["ids"] and torch.equal(got["input_features"], want["input_features"])


def test_off_by_default_changes_nothing(processor, items):
    assert not TrainConfig(**REQUIRED).augment.active and AugmentConfig().enabled() == []
    plain = _collator(processor)(items)
    idle = _collator(processor, AugmentConfig())(items, augment_rngs=_rngs())
    for key in ("input_features", "decoder_input_ids", "labels"):
        assert torch.equal(plain[key], idle[key]), key
    # an augmenting collator leaves batches without seeds (not from the training loop) alone
    assert torch.equal(plain["input_features"], _collator(processor, AugmentConfig(**ALL_ON))(items)["input_features"])


def test_noise_from_a_noise_manifest(processor, items, corpus, tmp_path):
    from soritune.data.manifest import read_manifest, write_manifest

    rows = [{**r, "audio": str(corpus / r["audio"])} for r in read_manifest(corpus / "train.jsonl")][:2]
    write_manifest(tmp_path / "noise.jsonl", rows)
    aug = Augmenter(AugmentConfig(noise_p=1.0, noise_manifest=str(tmp_path / "noise.jsonl"), noise_snr_db=(5, 5)))
    audio = np.asarray(items[0]["audio"])
    out = aug.audio(audio, Augmenter.rng(0, 0, 0))
    assert len(out) == len(audio)
    assert abs(10 * np.log10(A._rms(audio) ** 2 / A._rms(out - audio) ** 2) - 5.0) < 0.01


# ---- config and CLI ---------------------------------------------------------------------------
@pytest.mark.parametrize("override,needle", [
    ("augment.noise_p=1.5", "augment.noise_p: Input should be less than or equal to 1"),
    ("augment.speed_range=[1.2,0.9]", "augment.speed_range: Value error, expected [low, high]"),
    ("augment.reverb_rt60_s=[0.1,9]", "augment.reverb_rt60_s"),
    ("augment.spec_time_masks=-1", "augment.spec_time_masks"),
    ("augment.noise_manifest=/no/such.jsonl", "does not exist"),
    ("augment.bogus=1", "augment.bogus: unknown field (known fields: noise_manifest, noise_p, noise_snr_db, reverb_drr_db"),
])
def test_bad_augment_fields_are_named(override, needle):
    with pytest.raises(ConfigError) as e:
        load_train_config(fields=REQUIRED, overrides=[override])
    assert needle in str(e.value)


def test_switches_and_their_errors():
    assert parse_switches("speed, noise=0.3,specaugment") == {"speed_p": 0.5, "noise_p": 0.3, "specaugment_p": 1.0}
    for bad, needle in (("echo", "unknown augmentation 'echo'"), ("noise=2", "in [0, 1]"), ("noise=x", "a number")):
        with pytest.raises(ConfigError, match=re.escape(needle)):
            parse_switches(bad)
    with pytest.raises(ConfigError, match="cache_encoder reuses encoder outputs"):
        load_train_config(fields={**REQUIRED, "cache_encoder": True, "target_side": "decoder"},
                          overrides=["augment.noise_p=0.5"])


# ---- training ---------------------------------------------------------------------------------
def test_cli_trains_with_every_augmentation_on(corpus, tmp_path):
    from typer.testing import CliRunner

    from soritune.cli.app import app

    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["train", "--model", "tiny:", "--train", str(corpus / "train.jsonl"), "--out", str(out),
                                   "--batch-size", "4", "--max-steps", "3", "--lr", "0.01", "--threads", "1",
                                   "--augment", "speed=1,reverb=1,noise=1,telephone=1,specaugment",
                                   "--set", "augment.noise_snr_db=[5,15]", "--set", "eval_at_start=false"])
    assert res.exit_code == 0, res.output
    saved = yaml.safe_load((out / "config.yaml").read_text())["augment"]
    assert all(saved[f"{n}_p"] == 1.0 for n in A.NAMES) and saved["noise_snr_db"] == [5.0, 15.0]
    assert (out / "adapter" / "adapter_model.safetensors").exists()


def test_only_training_batches_are_augmented_and_resume_is_identical(make_cfg, corpus, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    from soritune.train import run

    seen: list[int] = []
    original = Augmenter.audio

    def counting(self, audio, rng):
        seen.append(len(audio))
        return original(self, audio, rng)

    monkeypatch.setattr(Augmenter, "audio", counting)
    common = {"augment": AugmentConfig(**ALL_ON), "batch_size": 3, "schedule": "constant", "lora_dropout": 0.1,
              "export": "last", "dev": str(corpus / "dev.jsonl"), "eval_at_start": True, "eval_every": 3,
              "eval_max_new_tokens": 4}
    ref = run(make_cfg(out=str(tmp_path / "whole"), max_steps=6, **common))
    assert ref.steps == 6 and ref.final_loss is not None and np.isfinite(ref.final_loss)
    assert len(seen) == ref.samples  # training utterances only: the 3 dev utterances, scored 3 times, are not
    half = make_cfg(out=str(tmp_path / "resumed"), max_steps=3, **common)
    run(half)
    res = run(half.model_copy(update={"resume": True, "max_steps": 6}))
    assert res.resumed_from_step == 3 and res.steps == 6
    a = load_file(str(tmp_path / "whole" / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
