"""Compression of the speech LLM's language model: decoder layers dropped in the order of their measured
sensitivity (issue item 6).

Sensitivity of layer i = the response cross-entropy on held-out rows with layer i skipped, minus the loss
of the whole model (same rows, same audio, no cache): a layer whose removal barely moves the loss is
dropped first. `layers.drop_layers` removes the layers for good (the decoder's ModuleList, the config's
num_hidden_layers and per-layer attention types, each attention's cache index), and
`SpeechLLMConfig.llm_drop_layers` re-applies the drop on load, so a saved dropped model loads as saved.

    from soritune.speechllm.compress import layer_sensitivity, least_sensitive
    report = layer_sensitivity(model, rows)
    model.drop_llm_layers(least_sensitive(report, 4))
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from soritune.errors import SoritunError
from soritune.speechllm.data import load_clip
from soritune.speechllm.layers import decoder_of, skipped


def response_loss_on(model, rows: list[dict], batch_size: int = 4) -> float:
    """Mean (token-weighted) response cross-entropy of the model on rows, no gradients."""
    import torch

    from soritune.speechllm.model import IGNORE, response_loss

    total, tokens = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            group = rows[start: start + batch_size]
            batch = model.build_inputs([load_clip(r) for r in group], [r["prompt"] for r in group],
                                       [r["response"] for r in group])
            logits, targets = model.response_logits(batch)
            n = int((targets != IGNORE).sum())
            total += float(response_loss(logits, targets)) * n
            tokens += n
    return total / max(tokens, 1)


def layer_sensitivity(model, rows: list[dict], *, batch_size: int = 4,
                      progress: Callable[[int, int], None] | None = None) -> dict:
    """The loss with each decoder layer skipped in turn, against the whole model's, on the same rows."""
    if not rows:
        raise SoritunError("layer sensitivity needs at least one row with a response")
    model.train(False)
    n = len(decoder_of(model.llm).layers)
    with model.remembering_drafts():  # one Whisper draft per row, not one per layer
        base = response_loss_on(model, rows, batch_size)
        layers = []
        for i in range(n):
            with skipped(model.llm, i):
                loss = response_loss_on(model, rows, batch_size)
            layers.append({"layer": i, "loss": round(loss, 5), "delta": round(loss - base, 5)})
            if progress:
                progress(i + 1, n)
    return {"n_layers": n, "n_rows": len(rows), "base_loss": round(base, 5), "layers": layers}


def least_sensitive(report: dict, n_drop: int) -> list[int]:
    """The n_drop layers whose removal raised the loss least (ascending layer index)."""
    if not 0 <= n_drop < report["n_layers"]:
        raise SoritunError(f"drop: {n_drop} of {report['n_layers']} layers; choose 0..{report['n_layers'] - 1}")
    ranked = sorted(report["layers"], key=lambda r: (r["delta"], r["layer"]))
    return sorted(r["layer"] for r in ranked[:n_drop])


def run_drop_layers(run_dir: str | Path, *, data: str | Path, out: str | Path, n_drop: int,
                    test: str | Path | None = None, limit: int | None = 32, recipe=None,
                    progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Measure each LLM layer's sensitivity on `data` (first `limit` rows), drop the n_drop least sensitive,
    save the model to OUT/model; with `test`, score the model before and after with the recipes' report
    (ASR CER, CIDEr-D, TTFT, TPOT, peak memory). Writes OUT/drop.json and OUT/drop.md."""
    from soritune.jsonio import atomic_write_text, write_json
    from soritune.speechllm.data import read_examples
    from soritune.speechllm.model import SpeechLLM
    from soritune.speechllm.recipe import RecipeConfig, score_model

    out, tell = Path(out), progress or (lambda *_: None)
    run = Path(run_dir)
    model = SpeechLLM.load(run / "model" if (run / "model").is_dir() else run)
    recipe = recipe or RecipeConfig(model=model.config)
    rows = read_examples(data, limit=limit)
    report = layer_sensitivity(model, rows, progress=lambda i, n: tell("sensitivity", i, n))
    drop = least_sensitive(report, n_drop)
    doc: dict = {"run": str(run), "data": str(data), "sensitivity": report, "dropped": drop, "rows": []}
    if test is not None:
        doc["rows"].append({"name": "whole LLM", **score_model(model, test, out / "before", recipe, tell)})
    model.drop_llm_layers(drop)
    doc["loss_after"] = round(response_loss_on(model, rows), 5)
    model.save(out / "model")
    if test is not None:
        doc["rows"].append({"name": f"{n_drop} layers dropped", **score_model(model, test, out / "after", recipe, tell)})
    write_json(out / "drop.json", doc)
    atomic_write_text(out / "drop.md", render_drop(doc))
    return doc


def render_drop(doc: dict) -> str:
    s = doc["sensitivity"]
    lines = [f"# LLM layer dropping: {doc['run']}", "",
             f"- sensitivity on {s['n_rows']} rows of {doc['data']}: whole-model loss {s['base_loss']:.3f}; "
             f"dropped {doc['dropped']} -> loss {doc['loss_after']:.3f}", "",
             "| layer | loss without it | increase |", "|---|---|---|"]
    lines += [f"| {r['layer']} | {r['loss']:.3f} | {r['delta']:+.3f} |" for r in s["layers"]]
    if doc["rows"]:
        lines += ["", "| model | ASR CER | CIDEr-D | TTFT ms | TPOT ms | peak mem GB | LLM params |",
                  "|---|---|---|---|---|---|---|"]
        for r in doc["rows"]:
            cer = "-" if r["asr_cer"] is None else f"{100 * r['asr_cer']:.1f}%"
            cid = "-" if r["cider_d"] is None else f"{r['cider_d']:.3f}"
            lines.append(f"| {r['name']} | {cer} | {cid} | {r['ttft_ms']:.1f} | {r['tpot_ms']:.1f} | "
                         f"{r['peak_mem_gb']:.2f} | {r['llm_params']} |")
    return "\n".join(lines) + "\n"
