"""Every directory format soritune writes loads through `soritune.models.load`, and so through
`soritune eval` and `soritune serve` (both go through `infer.load_backend`), on tiny: artefacts.

Each artefact's transcript must equal that of the model it was written from (held in memory),
except where the format changes the weights on purpose (int8), where the exported model itself
(rebuilt in memory) is the reference.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from soritune.audio import write_wav
from soritune.cli import main
from soritune.compress.masks import save_masks
from soritune.compress.modelio import save_model
from soritune.infer import load_backend
from soritune.infer.torch_backend import TorchBackend
from soritune.models import formats, load

TOKENS = 6
MASKED = "model.decoder.layers.0.self_attn.q_proj.weight"


def _clip(seed: int = 0) -> np.ndarray:
    t = np.arange(16000 * 2) / 16000
    return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * np.random.default_rng(seed).standard_normal(t.size)).astype("float32")


def _text(model, processor) -> str:
    backend = TorchBackend(model, processor, spec="ref", device="cpu")
    return backend.transcribe([_clip()], max_new_tokens=TOKENS)[0].text


def _logits(model, processor):
    """Decoder logits for the clip after the decoder's start tokens (a fingerprint of the weights)."""
    import torch

    feats = processor.feature_extractor([_clip()], sampling_rate=16000, return_tensors="pt").input_features
    dec = torch.tensor([[model.generation_config.decoder_start_token_id, 50264, 50359]])
    with torch.inference_mode():
        return model(input_features=feats.to(model.dtype), decoder_input_ids=dec).logits.float()


def _same_logits(a, b, atol=1e-4) -> bool:
    import torch

    return a.shape == b.shape and torch.allclose(a, b, atol=atol)


def _config(run_dir, **fields):
    import yaml

    (run_dir / "config.yaml").write_text(yaml.safe_dump({"model": "tiny:", "seed": 0, **fields}))


def _perturbed_adapter(model, dest):
    """A LoRA adapter on `model` whose B matrices are not zero (so merging it changes the output)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from soritune.compress.modelio import clone_model

    peft = get_peft_model(clone_model(model), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(1)
    with torch.no_grad():
        for n, p in peft.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    peft.peft_config["default"].base_model_name_or_path = "tiny:"
    peft.save_pretrained(str(dest))
    return peft.merge_and_unload()


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory):
    """name -> (directory, expected logits, expected format row)."""
    import torch

    from soritune.compress import structures as S
    from soritune.compress.distill_student import make_student
    from soritune.compress.export import ExportConfig, run
    from soritune.compress.prune_structured import save_structured
    from soritune.models.formats import quantize_int8

    root = tmp_path_factory.mktemp("formats")
    base = load("tiny:")
    model, proc = base
    ref = _logits(model, proc)
    out = {}
    out["hf"] = (save_model(model, proc, root / "hf"), ref, "hf")
    for to in ("ct2", "torch-int8"):
        run(ExportConfig(model="tiny:", to=to, out=root / to, parity_n=1, measure_speed=False, max_new_tokens=TOKENS))
    out["ct2"] = (root / "ct2", ref, "ct2")  # float32 CTranslate2 converts back losslessly
    out["torch-int8"] = (root / "torch-int8", _logits(quantize_int8(load("tiny:").model), proc), "torch-int8")
    kept = S.choose_kept(S.magnitude_importance(model, "heads", "decoder"), 0.5)
    small = S.prune_heads(model, kept)
    save_structured(small, proc, root / "heads", "heads", kept)
    out["head-pruned"] = (root / "heads", _logits(small, proc), "head-pruned")
    train_run = root / "train-run"
    merged = _perturbed_adapter(model, train_run / "adapter")
    _config(train_run)
    out["adapter"] = (train_run / "adapter", _logits(merged, proc), "adapter")
    out["train-run"] = (train_run, _logits(merged, proc), "run")
    lottery = root / "lottery"
    ticket = load("tiny:").model
    q = ticket.model.decoder.layers[0].self_attn.q_proj.weight  # a weight the adapter adapts too
    masks = {MASKED: torch.rand_like(q) > 0.5}
    with torch.no_grad():
        q.mul_(masks[MASKED])
    save_model(ticket, proc, lottery / "merged")
    save_masks(lottery / "merged", masks, {"method": "lottery"})
    _config(lottery)
    out["lottery"] = (lottery, _logits(ticket, proc), "run")
    distill = root / "distill"
    student, _ = make_student(load("tiny:").model, 1)
    save_model(student, proc, distill / "student")
    _config(distill, teacher="tiny:")
    out["distill"] = (distill, _logits(student.eval(), proc), "run")
    for name in ("torch-int8", "head-pruned", "adapter", "lottery", "distill"):  # else the test proves nothing
        assert not _same_logits(out[name][1], ref), f"{name} computes what the source does"
    return out


NAMES = ("hf", "ct2", "torch-int8", "head-pruned", "adapter", "train-run", "lottery", "distill")


@pytest.mark.parametrize("name", NAMES)
def test_models_load_reads_every_format(artefacts, name):
    directory, expected, row = artefacts[name]
    assert formats.detect(directory).name == row
    loaded = load(str(directory))
    assert _same_logits(_logits(loaded.model, loaded.processor), expected)


@pytest.mark.parametrize("name", NAMES)
def test_serve_and_eval_backends_load_every_format(artefacts, name):
    """serve's loader (ServerState.load) and eval's both call infer.load_backend."""
    from soritune.serve.app import ServeConfig, ServerState

    directory, expected, _ = artefacts[name]
    state = ServerState(ServeConfig(model=str(directory), max_new_tokens=TOKENS))
    backend = state.load()
    assert _same_logits(_logits(backend.model, backend.processor), expected)
    assert backend.transcribe([_clip()], max_new_tokens=TOKENS)[0].text == _text(backend.model, backend.processor)


@pytest.mark.parametrize("name", ("head-pruned", "torch-int8", "lottery"))
def test_soritune_eval_cli_on_an_export(artefacts, name, tmp_path):
    directory, _, _ = artefacts[name]
    expected = _text(*load(str(directory)))
    wav = write_wav(tmp_path / "a.wav", _clip())
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "a", "audio": str(wav), "duration": 2.0, "text": "가"}) + "\n")
    with pytest.raises(SystemExit) as e:
        main(["eval", "--model", str(directory), "--manifest", str(manifest), "--out", str(tmp_path / "ev"),
              "--max-new-tokens", str(TOKENS)])
    assert e.value.code == 0
    hyp = json.loads((tmp_path / "ev" / "hypotheses.jsonl").read_text().splitlines()[0])
    assert hyp["text"] == expected


def test_ct2_directory_goes_to_the_ct2_backend_as_it_is(artefacts):
    directory, _, _ = artefacts["ct2"]
    backend = load_backend(str(directory), backend="ct2")
    assert str(backend.describe().get("spec", "")) == str(directory)
    assert backend.transcribe([_clip()], max_new_tokens=TOKENS)[0].text is not None


def test_adapter_with_masks_keeps_pruned_weights_zero(artefacts, tmp_path):
    """An adapter merged into a masked directory must not revive the pruned weights."""
    lottery, _, _ = artefacts["lottery"]
    adapter_dir, _, _ = artefacts["adapter"]
    loaded = load(str(lottery / "merged"), adapter=str(adapter_dir))
    assert loaded.masks is not None
    w = dict(loaded.model.named_parameters())[MASKED]
    assert bool((w[~loaded.masks[MASKED]] == 0).all())
    assert bool((w[loaded.masks[MASKED]] != 0).all())


def test_int8_refuses_an_adapter(artefacts):
    from soritune.errors import ModelSpecError

    with pytest.raises(ModelSpecError, match="torch-int8 directory cannot take an adapter"):
        load(str(artefacts["torch-int8"][0]), adapter=str(artefacts["adapter"][0]))
