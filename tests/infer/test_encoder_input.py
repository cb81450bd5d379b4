"""encoder_input="trimmed": the encoder runs on the batch's own length in both backends."""

from __future__ import annotations

import numpy as np
import pytest

from soritune.audio import SAMPLE_RATE
from soritune.errors import SoritunError
from soritune.infer import load_backend
from soritune.infer.base import features
from soritune.models.encoder import bucket_frames


@pytest.fixture(scope="module")
def audios():
    rng = np.random.default_rng(3)
    return [rng.normal(0, 0.1, int(SAMPLE_RATE * s)).astype(np.float32) for s in (1.3, 2.0, 0.4)]


def test_trimmed_features_are_the_padded_ones_cut_to_the_bucket(tiny, audios):
    _, processor = tiny
    padded = features(processor, audios, "padded")
    trimmed = features(processor, audios, "trimmed")
    assert padded.shape[-1] == 3000
    assert trimmed.shape[-1] == bucket_frames(len(audios[1])) == 200
    # log-mel is frame-local apart from the clamp to (max - 8 dB), which the padding does not change;
    # only the last frame differs (its centred STFT window is reflect-padded at the new end)
    np.testing.assert_allclose(trimmed[..., :-1], padded[..., :199], atol=1e-5)


def test_torch_and_ct2_agree_on_trimmed_input(audios):
    torch_be = load_backend("tiny:", "torch", encoder_input="trimmed")
    ct2_be = load_backend("tiny:", "ct2", encoder_input="trimmed")
    a = torch_be.transcribe(audios, max_new_tokens=8, batch_size=2)
    b = ct2_be.transcribe(audios, max_new_tokens=8, batch_size=2)
    assert [x.tokens for x in a] == [x.tokens for x in b]
    assert torch_be.describe()["encoder_input"] == ct2_be.describe()["encoder_input"] == "trimmed"


def test_trimmed_input_changes_what_the_encoder_sees(audios):
    """The two modes are really different computations (a random model decodes differently)."""
    padded = load_backend("tiny:", "torch")
    trimmed = load_backend("tiny:", "torch", encoder_input="trimmed")
    enc_p = padded.encode(audios[:1])
    enc_t = trimmed.encode(audios[:1])
    assert enc_p.shape[1] == 1500 and enc_t.shape[1] == bucket_frames(len(audios[0])) // 2
    assert not np.allclose(enc_p[:, : enc_t.shape[1]].detach().numpy(), enc_t.detach().numpy(), atol=1e-4)


def test_trimmed_batches_group_by_length_and_keep_order(audios):
    be = load_backend("tiny:", "torch", encoder_input="trimmed")
    one_by_one = [be.transcribe([a], max_new_tokens=6)[0].tokens for a in audios]
    batched = [t.tokens for t in be.transcribe(audios, max_new_tokens=6, batch_size=3)]
    # same-bucket clips give the same result alone or batched; the batch's bucket is its longest clip's
    assert batched[1] == one_by_one[1]
    assert len(batched) == 3


def test_bad_encoder_input_is_named():
    with pytest.raises(SoritunError, match="encoder_input must be one of padded, trimmed"):
        load_backend("tiny:", "torch", encoder_input="short")
