"""The CED-style audio-event encoder: patch shapes, alignment to the Whisper frames, SALMONN concatenation
(88 query tokens per 30 s unchanged), checkpoint loading from a local file, named errors."""

import pytest
import torch

from .conftest import tiny_config, tone


def test_event_features_are_160ms_columns_aligned_to_whisper_frames():
    from soritune.speechllm.events import EventEncoder

    enc = EventEncoder("ced:test")
    (feats,) = enc.encode([tone(2.0)])
    assert feats.shape == (13, 32)  # 201 mel frames -> 13 columns of 16
    aligned = enc.align(feats, 100)  # 2 s of Whisper frames
    assert aligned.shape == (100, 32)
    assert torch.equal(aligned[:8], feats[0].expand(8, -1)) and torch.equal(aligned[8], feats[1])
    padded = enc.align(feats, 150)
    assert torch.equal(padded[104:], torch.zeros(46, 32))
    other = EventEncoder("ced:test").encode([tone(2.0, 1500)])[0]
    assert not torch.allclose(feats, other)  # it hears the difference between a low and a high tone


def test_salmonn_with_events_concatenates_channels_and_keeps_88_queries_per_30s(tmp_path):
    from soritune.speechllm import SpeechLLM

    m = SpeechLLM(tiny_config(event_encoder="ced:test"))  # padded input: 1500 frames per pass
    chunk = m.encode_clips([tone(29.0)])[0][0]
    assert chunk.features.shape == (1500, m.encoder.d_model + 32)
    emb, info = m.audio_embeddings([tone(29.0)])  # one pass (a pass covers 29.92 s)
    assert emb[0].shape[0] == 88 and info[0].n_chunks == 1
    loss = m.loss([tone(3.0)], ["Describe."], ["a beep"])
    loss.backward()
    assert all(p.grad is not None for p in m.projector.parameters())
    assert all(p.grad is None for p in m.events.module.parameters())  # frozen
    m.save(tmp_path / "m")
    again = SpeechLLM.load(tmp_path / "m")  # same seed: the same random event encoder
    with torch.no_grad():
        assert torch.allclose(m.loss([tone(1.0)], ["x"], ["y"]), again.loss([tone(1.0)], ["x"], ["y"]), atol=1e-6)


def test_checkpoint_loads_from_a_local_path_and_errors_are_named(tmp_path):
    from safetensors.torch import save_file

    from soritune.errors import ModelSpecError
    from soritune.speechllm.events import EventEncoder

    src = EventEncoder("ced:test", seed=7)
    state = {k: v.clone() for k, v in src.module.state_dict().items()}
    state["outputhead.1.weight"] = torch.zeros(527, 32)  # a classifier head: ignored
    save_file(state, str(tmp_path / "ced.safetensors"))
    loaded = EventEncoder(f"ced:test:{tmp_path / 'ced.safetensors'}", seed=0)
    x = [tone(1.0, 500)]
    assert torch.allclose(loaded.encode(x)[0], src.encode(x)[0])
    assert loaded.info["ignored_keys"] == ["outputhead.1.weight"]
    save_file({k: v for k, v in state.items() if "blocks.1." not in k}, str(tmp_path / "part.safetensors"))
    with pytest.raises(ModelSpecError, match="lacks"):
        EventEncoder(f"ced:test:{tmp_path / 'part.safetensors'}")
    with pytest.raises(ModelSpecError, match="no such file"):
        EventEncoder("ced:small:/nonexistent.pt")
    with pytest.raises(ModelSpecError, match="ced:tiny"):
        EventEncoder("beats")
