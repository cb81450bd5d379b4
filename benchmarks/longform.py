"""Long recordings: soritune (VAD + its long-form options) vs faster-whisper (same weights, its VAD
defaults) vs plain 30-s chunking, on a synthetic Korean lecture with known sentence boundaries.

    python benchmarks/longform.py --minutes 10 --threads 2 --label stock
    python benchmarks/longform.py --minutes 10 --threads 2 --label finetuned \
        --adapter /tmp/demo_speech/runs/lora/adapter     # the demo's LoRA, merged, converted to ct2

The recording: sentences from soritune's lecture-text generator (held-out side), spoken by Kokoro-82M
(`soritune.data.tts`; five styles: the demo's held-out voice jf_tebukuro, jm_kumo and blends; tempo
0.9-1.1; `--tts espeak` for espeak-ng's robotic voices), each trimmed to its first and last audible
sample so the boundaries are exact, separated by 1.5-4 s gaps of silence, synthesised music (chords
with envelopes), room noise and mains hum in turn. Built once (Kokoro: ~1 CPU-s per audio second,
cached under the soritune cache dir by length, seed and voice model). Each system decodes the whole
file with word timestamps on the same CTranslate2 weights, compute type and threads; with --adapter the merged model is converted once
(soritune.infer.load_backend) and faster-whisper loads that same directory.

Metrics:
- CER (and reading-aware CER) of the whole transcript against the sentences joined (soritune.eval.score);
- gap characters: characters of output words whose middle lies inside a gap (0.25 s margins), total and
  per gap kind: hallucination on non-speech;
- segment start error: per sentence, the output segment overlapping it most; |its start - sentence start|
  (median, 90th percentile; a sentence no segment overlaps counts as missed);
- word start error: per sentence, the first output word whose middle lies inside it;
- RTFx: audio seconds / wall seconds of the decode (model loaded beforehand; VAD included).
Per system, `<label>/<system>.sentences.json` holds each sentence's reference, the words output within
it (+-0.5 s) and its CER: where characters were lost.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

SR = 16000
GAP_KINDS = ("pause", "music", "noise", "hum")
ORDER = ("soritune", "soritune-vad-greedy", "faster-whisper", "plain-30s")  # table order


def music(duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Chords of three harmonic tones with attack/decay envelopes, one chord per 0.5-1 s."""
    out = np.zeros(int(duration_s * SR), np.float32)
    pos = 0
    while pos < len(out):
        n = int(rng.uniform(0.5, 1.0) * SR)
        t = np.arange(n) / SR
        root = 220 * 2 ** (rng.integers(0, 12) / 12)
        chord = sum(np.sin(2 * np.pi * root * r * h * t) / h for r in (1, 1.26, 1.5) for h in (1, 2, 3))
        env = np.minimum(1, t / 0.02) * np.exp(-2.5 * t)
        piece = (chord * env).astype(np.float32)
        out[pos:pos + n] += piece[: len(out) - pos]
        pos += n
    return 0.08 * out / (np.abs(out).max() + 1e-9)


def noise(duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Room tone: low-passed (brown-ish) noise around -35 dBFS."""
    white = rng.standard_normal(int(duration_s * SR))
    brown = np.cumsum(white)
    brown -= np.convolve(brown, np.ones(400) / 400, mode="same")
    return (0.02 * brown / (np.abs(brown).max() + 1e-9) + 0.003 * white).astype(np.float32)


def hum(duration_s: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(duration_s * SR)) / SR
    return (0.02 * (np.sin(2 * np.pi * 60 * t) + 0.5 * np.sin(2 * np.pi * 180 * t))).astype(np.float32)


KOKORO_VOICES = ("kokoro:jf_tebukuro", "kokoro:jm_kumo", "kokoro:jf_alpha+jm_kumo", "kokoro:jf_tebukuro*0.6+jm_kumo*0.4",
                 "kokoro:jf_nezumi")  # jf_tebukuro: the demo's held-out voice; the rest blend it with others
ESPEAK_VOICES = ("ko-f1", "ko-m1", "ko", "ko-f2", "ko-m2")


def speak_sentence(text_pron: str, voice: str, rng: np.random.Generator, threads: int) -> np.ndarray:
    """One sentence, trimmed to its first and last audible sample (so its boundaries are exact)."""
    from soritune.data.tts import parse_voice, speak

    if parse_voice(voice).backend == "kokoro":
        speech = speak(text_pron, voice, speed=float(rng.uniform(0.9, 1.1)), threads=threads)
    else:
        speech = speak(text_pron, voice, rate_wpm=150)
    nz = np.flatnonzero(np.abs(speech) > 1e-3)
    return speech[nz[0]:nz[-1] + 1] if len(nz) else speech


def build_recording(minutes: float, seed: int = 0, tts: str = "kokoro", threads: int = 2, progress=None):
    """(audio, sentences [{start, end, text, pron, voice}], gaps [{start, end, kind}]) in seconds.

    Sentences (held-out side of the lecture generator) alternate voices; between two sentences a gap of
    1.5-4 s of silence, music, room noise or mains hum, in turn; a faint noise floor everywhere."""
    from soritune.data.lecture_text import LectureTextGenerator

    voices = KOKORO_VOICES if tts == "kokoro" else ESPEAK_VOICES
    rng = np.random.default_rng(seed)
    gen = LectureTextGenerator(seed=seed, held_out=True)
    pieces, sentences, gaps, pos = [], [], [], 0
    floor = lambda n: (0.0005 * rng.standard_normal(n)).astype(np.float32)  # noqa: E731 - a faint noise floor
    i = 0
    while pos < minutes * 60 * SR:
        kind = GAP_KINDS[i % len(GAP_KINDS)]
        gap_s = float(rng.uniform(1.5, 4.0))
        gap = {"pause": lambda d: np.zeros(int(d * SR), np.float32), "music": lambda d: music(d, rng),
               "noise": lambda d: noise(d, rng), "hum": lambda d: hum(d, rng)}[kind](gap_s)
        gap = gap + floor(len(gap))
        gaps.append({"start": pos / SR, "end": (pos + len(gap)) / SR, "kind": kind})
        pieces.append(gap)
        pos += len(gap)
        s = gen.next()
        voice = voices[i % len(voices)]
        speech = speak_sentence(s.text_pron, voice, rng, threads)
        sentences.append({"start": pos / SR, "end": (pos + len(speech)) / SR, "text": s.text, "pron": s.text_pron,
                          "voice": voice})
        pieces.append(speech + floor(len(speech)))
        pos += len(speech)
        i += 1
        if progress:
            progress(pos / SR)
    tail = floor(int(2.0 * SR))
    gaps.append({"start": pos / SR, "end": (pos + len(tail)) / SR, "kind": "pause"})
    pieces.append(tail)
    return np.concatenate(pieces).astype(np.float32), sentences, gaps


def metrics(segments: list[dict], sentences: list[dict], gaps: list[dict], wall_s: float, audio_s: float) -> dict:
    from soritune.eval.score import score_utterance

    text = " ".join(s["text"].strip() for s in segments if s["text"].strip())
    sc = score_utterance("recording", " ".join(s["text"] for s in sentences), text,
                         pron=" ".join(s["pron"] for s in sentences))
    words = [w for s in segments for w in s.get("words", [])]
    gap_chars = {k: 0 for k in GAP_KINDS}
    for w in words:
        mid = (w["start"] + w["end"]) / 2
        for g in gaps:
            if g["start"] + 0.25 <= mid <= g["end"] - 0.25:
                gap_chars[g["kind"]] += len("".join(w["word"].split()))
    seg_err, word_err, missed = [], [], 0
    for s in sentences:
        overlap = [(min(g["end"], s["end"]) - max(g["start"], s["start"]), g) for g in segments]
        best = max(overlap, key=lambda x: x[0], default=(0, None))
        if best[0] <= 0:
            missed += 1
        else:
            seg_err.append(abs(best[1]["start"] - s["start"]))
        inside = [w for w in words if s["start"] <= (w["start"] + w["end"]) / 2 <= s["end"]]
        if inside:
            word_err.append(abs(min(w["start"] for w in inside) - s["start"]))
    q = lambda xs, p: float(np.percentile(xs, p)) if xs else None  # noqa: E731
    return {"cer": round(100 * sc.counts["cer"].rate(), 2), "cer_reading": round(100 * sc.counts["cer_reading"].rate(), 2),
            "gap_chars": sum(gap_chars.values()), "gap_chars_by_kind": gap_chars,
            "gap_chars_per_min_nonspeech": round(sum(gap_chars.values()) / (sum(g["end"] - g["start"] for g in gaps) / 60), 2),
            "segment_start_err_median_s": q(seg_err, 50), "segment_start_err_p90_s": q(seg_err, 90),
            "word_start_err_median_s": q(word_err, 50), "sentences_missed": missed, "n_segments": len(segments),
            "wall_s": round(wall_s, 2), "rtfx": round(audio_s / wall_s, 2)}


def per_sentence(segments: list[dict], sentences: list[dict], margin_s: float = 0.5) -> list[dict]:
    """Each sentence with the output words whose middle lies within it (+- margin_s) and its CER: the
    diff that says where a system lost characters (a dropped sentence, a cut word, a wrong reading)."""
    from soritune.eval.score import score_utterance

    words = [w for s in segments for w in s.get("words", [])]
    rows = []
    for k, s in enumerate(sentences):
        hyp = "".join(w["word"] for w in words
                      if s["start"] - margin_s <= (w["start"] + w["end"]) / 2 <= s["end"] + margin_s).strip()
        sc = score_utterance(str(k), s["text"], hyp, pron=s["pron"])
        rows.append({"i": k, "start": round(s["start"], 2), "voice": s.get("voice"), "ref": s["text"], "hyp": hyp,
                     "cer": round(100 * sc.counts["cer"].rate(), 1)})
    return rows


def paired_cer(folder: Path, sentences: list[dict], a: str = "faster-whisper", b: str = "soritune") -> dict | None:
    """System b's CER minus system a's over the sentences (`<system>.sentences.json`: each sentence's
    words, as per_sentence assigns them), with a paired bootstrap 95% interval over sentences
    (soritune.eval.bootstrap): how far the difference of the two CERs lies from chance."""
    from soritune.eval.bootstrap import paired_bootstrap
    from soritune.eval.score import score_utterance

    files = [folder / f"{name}.sentences.json" for name in (a, b)]
    if not all(f.exists() for f in files):
        return None
    errors = [[score_utterance(str(r["i"]), r["ref"], r["hyp"], pron=sentences[r["i"]]["pron"]).counts["cer"]
               for r in json.loads(f.read_text())] for f in files]
    res = paired_bootstrap([c.errors for c in errors[0]], [c.errors for c in errors[1]], [c.n_ref for c in errors[0]])
    return {"a": a, "b": b, "cer_a": round(100 * res.rate_a, 2), "cer_b": round(100 * res.rate_b, 2),
            "diff": round(100 * res.diff, 2), "ci95": [round(100 * x, 2) for x in res.ci95],
            "p_b_better": round(res.p_b_better, 3)}


def run_soritune(audio, options, backend) -> list[dict]:
    from soritune.infer.transcribe import transcribe_streams

    return transcribe_streams([[(None, audio)]], backend, options)[0][0]


def run_faster_whisper(audio, ct2_dir, compute_type, threads) -> tuple[list[dict], float]:
    from faster_whisper import WhisperModel

    model = WhisperModel(str(ct2_dir), device="cpu", compute_type=compute_type, cpu_threads=threads)
    t0 = time.perf_counter()
    segments, _info = model.transcribe(audio, language="ko", beam_size=5, vad_filter=True, word_timestamps=True)
    out = [{"start": s.start, "end": s.end, "text": s.text,
            "words": [{"start": w.start, "end": w.end, "word": w.word} for w in (s.words or [])]} for s in segments]
    return out, time.perf_counter() - t0


def soritune_systems(overrides: list[str]) -> dict:
    from soritune.config import apply_overrides, validate
    from soritune.infer.options import DecodeOptions

    return {
        "soritune": validate(DecodeOptions, apply_overrides(
            DecodeOptions.long_form(language="ko", word_timestamps=True).model_dump(), overrides)),
        "soritune-vad-greedy": DecodeOptions(language="ko", vad=True, word_timestamps=True),
        "plain-30s": DecodeOptions(language="ko", word_timestamps=True),
    }


def recording(args, out: Path):
    """The recording of these arguments, built once and kept in the soritune cache dir (float32 .npy and its
    reference side by side, keyed by the voice model's identity too: a recording made by another Kokoro
    model, or a broken one, is never reused); the reference is copied to `out`."""
    import hashlib

    from soritune.cache import cache_root

    if args.tts == "kokoro":
        from soritune.data.kokoro_tts import model_identity

        voice_model = hashlib.sha256(model_identity(args.threads).encode()).hexdigest()[:8]
    else:
        voice_model = "espeak"
    key = f"{args.tts}-{args.minutes:g}min-seed{args.seed}-{voice_model}"
    cache = cache_root() / "longform"
    cache.mkdir(parents=True, exist_ok=True)
    npy, cached_ref, ref = cache / f"recording-{key}.npy", cache / f"reference-{key}.json", out / f"reference-{key}.json"
    if npy.exists() and cached_ref.exists():
        data = json.loads(cached_ref.read_text())
        audio = np.load(npy)
    else:
        audio, sentences, gaps = build_recording(args.minutes, args.seed, args.tts, args.threads)
        data = {"sentences": sentences, "gaps": gaps}
        np.save(npy, audio)
        cached_ref.write_text(json.dumps(data, ensure_ascii=False, indent=1))
    ref.write_text(json.dumps(data, ensure_ascii=False, indent=1))
    return audio, data["sentences"], data["gaps"], key


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tts", choices=("kokoro", "espeak"), default="kokoro", help="who speaks the sentences")
    ap.add_argument("--model", default="bundled:whisper-base")
    ap.add_argument("--adapter", default=None, help="a LoRA adapter merged into --model (then converted to ct2)")
    ap.add_argument("--label", default="stock", help="the model's name in the results (a subfolder of --out)")
    ap.add_argument("--compute-type", default="int8")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--systems", default="soritune,faster-whisper,plain-30s")
    ap.add_argument("--out", default="benchmarks/results/longform")
    ap.add_argument("--soritune-set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a DecodeOptions field of the soritune row, e.g. chunk_s=15")
    ap.add_argument("--merge-from", default=None, metavar="DIR",
                    help="decode nothing: copy the --systems rows of DIR/LABEL (another run, same recording) into OUT/LABEL")
    args = ap.parse_args()
    if args.merge_from:
        return merge(Path(args.out) / args.label, Path(args.merge_from) / args.label, args.systems.split(","))

    from soritune.environment import environment
    from soritune.infer import load_backend

    out = Path(args.out)
    (out / args.label).mkdir(parents=True, exist_ok=True)
    audio, sentences, gaps, rec_key = recording(args, out)
    audio_s = len(audio) / SR
    backend = load_backend(args.model, backend="ct2", adapter=args.adapter, compute_type=args.compute_type,
                           threads=args.threads)
    systems = soritune_systems(args.soritune_set)
    previous = out / args.label / "longform.json"  # rows of other systems kept when a subset is run again
    rows = {}
    if previous.exists() and json.loads(previous.read_text()).get("recording") == rec_key:
        rows = {k: v for k, v in json.loads(previous.read_text())["rows"].items() if k not in args.systems.split(",")}
    for name in args.systems.split(","):
        load = os.getloadavg()[0]
        if name == "faster-whisper":
            segments, wall = run_faster_whisper(audio, backend.ct2_dir, args.compute_type, args.threads)
        else:
            t0 = time.perf_counter()
            segments = run_soritune(audio, systems[name], backend)
            wall = time.perf_counter() - t0
        rows[name] = {**metrics(segments, sentences, gaps, wall, audio_s),
                      "load_avg_1min": [round(load, 2), round(os.getloadavg()[0], 2)],
                      "options": systems[name].describe() if name in systems else
                      {"beam_size": 5, "vad_filter": True, "word_timestamps": True, "other": "faster-whisper defaults"}}
        (out / args.label / f"{name}.segments.json").write_text(json.dumps(segments, ensure_ascii=False, indent=1))
        (out / args.label / f"{name}.sentences.json").write_text(
            json.dumps(per_sentence(segments, sentences), ensure_ascii=False, indent=1))
        print(json.dumps({name: {k: v for k, v in rows[name].items() if k != "options"}}, ensure_ascii=False), flush=True)
    result = {"recording": rec_key, "tts": args.tts, "audio_s": round(audio_s, 1), "n_sentences": len(sentences),
              "n_gaps": len(gaps), "speech_s": round(sum(s["end"] - s["start"] for s in sentences), 1),
              "model": args.model, "adapter": args.adapter, "label": args.label, "compute_type": args.compute_type,
              "threads": args.threads, "rows": rows, "environment": environment("cpu", args.threads)}
    write_results(out / args.label, result)


def write_results(folder: Path, result: dict) -> None:
    """longform.json and longform.md (the table) of one model."""
    reference = folder.parent / f"reference-{result['recording']}.json"
    if reference.exists():
        result["paired_cer"] = paired_cer(folder, json.loads(reference.read_text())["sentences"])
    (folder / "longform.json").write_text(json.dumps(result, ensure_ascii=False, indent=1))
    audio_s, rows = result["audio_s"], result["rows"]
    lines = [f"# Long-form ({result['label']}): {audio_s / 60:.1f} min synthetic lecture ({result['tts']}), "
             f"{result['n_sentences']} sentences, {result['model']}"
             f"{' + ' + result['adapter'] if result['adapter'] else ''} (ct2 {result['compute_type']}, "
             f"{result['threads']} threads)", "",
             "| system | CER % | reading CER % | gap chars | gap chars / min non-speech | seg start err median s | "
             "p90 s | word start err median s | missed | RTFx | load (start, end) |", "|" + "---|" * 11]
    for name, r in sorted(rows.items(), key=lambda kv: ORDER.index(kv[0]) if kv[0] in ORDER else 99):
        lines.append(f"| {name} | {r['cer']} | {r['cer_reading']} | {r['gap_chars']} | {r['gap_chars_per_min_nonspeech']} | "
                     f"{_f(r['segment_start_err_median_s'])} | {_f(r['segment_start_err_p90_s'])} | "
                     f"{_f(r['word_start_err_median_s'])} | {r['sentences_missed']} | {r['rtfx']} | "
                     f"{r['load_avg_1min'][0]}, {r['load_avg_1min'][1]} |")
    pair = result.get("paired_cer")
    if pair:
        lines += ["", f"Per sentence (words assigned to sentences): {pair['b']} CER {pair['cer_b']} - {pair['a']} "
                      f"{pair['cer_a']} = {pair['diff']:+.2f} points, paired bootstrap 95% interval "
                      f"[{pair['ci95'][0]:+.2f}, {pair['ci95'][1]:+.2f}]; {pair['b']} lower in "
                      f"{100 * pair['p_b_better']:.0f}% of resamples."]
    (folder / "longform.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def merge(into: Path, source: Path, systems: list[str]) -> None:
    """Take `systems`' rows (and their per-sentence files) from another run's folder of the same recording."""
    import shutil

    result, other = json.loads((into / "longform.json").read_text()), json.loads((source / "longform.json").read_text())
    if other["recording"] != result["recording"] or other["adapter"] != result["adapter"]:
        raise SystemExit(f"{source}: another recording or model than {into}")
    for name in systems:
        result["rows"][name] = {**other["rows"][name], "run": "separate run (--merge-from)"}
        for suffix in ("segments", "sentences"):
            shutil.copy(source / f"{name}.{suffix}.json", into / f"{name}.{suffix}.json")
    write_results(into, result)


def _f(x) -> str:
    return "–" if x is None else f"{x:.2f}"


if __name__ == "__main__":
    main()
