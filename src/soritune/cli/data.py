"""Data verbs: `soritune prepare CORPUS` (corpus -> manifests), one command per registered corpus:
kspon and aihub-lecture carry their own options; every other reader (manifest, nemo, ...) gets the
shared ones from `_registry_command`."""

from __future__ import annotations

from pathlib import Path

import typer

from soritune.cli.app import app, out
from soritune.cli.options import config_options, merge_config
from soritune.cli.progress import progress_bar
from soritune.data.prepare_common import PrepareConfig

prepare_app = typer.Typer(
    help=(
        "Turn a corpus into manifests: OUT/{split}.jsonl, OUT/quarantine.jsonl (every utterance left "
        "out, with its reason) and OUT/prepare_report.json (counts that add up to the inputs). "
        "Runs in parallel, streams, and resumes: re-run the same command after an interruption."
    ),
    no_args_is_help=True,
)
app.add_typer(prepare_app, name="prepare")

# Every prepare command has PrepareConfig's options (declared once, in the config); a corpus only
# adds or leaves out the few fields that are its own (pron_first: aihub-lecture; norm: the readers
# without a fixed normalisation).
OWN_FIELDS = {"kspon": (), "aihub-lecture": ("pron_first",)}
CORPUS_FIELDS = ("pron_first", "norm")


def _prepare(corpus: str, root: Path, config_path: Path | None, overrides: list[str] | None, fields: dict) -> None:
    from soritune.data.prepare_common import run

    config = merge_config(PrepareConfig, config_path, overrides, {"corpus": corpus, "root": str(root), **fields})
    with progress_bar(f"prepare {corpus}", unit="utt", remaining=True, transient=False) as bar:
        result = run(config, progress=bar.count)
    _summary(result)


def _summary(result) -> None:
    from rich.table import Table

    table = Table(title=f"{result.corpus} -> {result.out_dir}", show_edge=False)
    table.add_column("split")
    table.add_column("kept", justify="right")
    table.add_column("hours", justify="right")
    for split, n in result.kept_by_split.items():
        table.add_row(split, f"{n:,}", f"{result.hours_by_split.get(split, 0.0):.2f}")
    out.print(table)
    if result.quarantined_by_reason:
        reasons = ", ".join(f"{r} {n:,}" for r, n in result.quarantined_by_reason.items())
        out.print(f"quarantined {result.quarantined:,}: {reasons} -> {result.quarantine_path}", highlight=False, soft_wrap=True)
    resumed = f" ({result.shards_resumed}/{result.shards} shards resumed)" if result.shards_resumed else ""
    out.print(f"{result.inputs:,} utterances in {result.elapsed_s:.1f} s: {result.utterances_per_s:,.0f} utterances/s"
              f"{resumed}; report {result.report_path}", highlight=False, soft_wrap=True)


def _prepare_command(name: str, root_help: str, doc: str):
    """`soritune prepare NAME ROOT --out DIR` with PrepareConfig's options (a corpus's own fields only
    where it reads them)."""
    own = OWN_FIELDS.get(name, ("norm",))

    @config_options(PrepareConfig, exclude=("corpus", "root", *(f for f in CORPUS_FIELDS if f not in own)),
                    short={"out": "-o", "workers": "-w"}, csv={"ratios": ":"})
    def command(
        fields: dict,
        root: Path = typer.Argument(..., help=root_help),
        config: Path | None = typer.Option(None, "--config", "-c", help="YAML file of PrepareConfig fields (flags override it)."),
        set_: list[str] | None = typer.Option(None, "--set", help="Override a config field: --set min_duration_s=1.0 (repeatable)."),
    ) -> None:
        _prepare(name, root, config, set_, fields)

    command.__doc__ = doc
    return command


prepare_app.command("kspon")(_prepare_command(
    "kspon", "KsponSpeech root (holding KsponSpeech_01..05, KsponSpeech_eval, KsponSpeech_scripts).", """Prepare KsponSpeech (ETRI marks normalised; spelling -> text, pronunciation -> text_pron).

    Reads KsponSpeech_scripts/*.trn when present, else the .txt beside each .pcm (CP949, UTF-8 or EUC-KR, detected).

    Writes OUT/{train,dev,eval_clean,eval_other}.jsonl; audio is referenced in place (absolute paths) unless --convert.

    Example: soritune prepare kspon /data/KsponSpeech --out data/kspon --workers 2
    """))
prepare_app.command("aihub-lecture")(_prepare_command(
    "aihub-lecture", "Folder holding the JSON labels and the audio (any depth).", """Prepare AI-Hub lecture speech: one JSON label per utterance, audio paired by file stem.

    Numeric key prefixes (01_dataset, 1_identifier) are stripped; the text is transcription.text (ETRI marks).

    lectureinfo, speakerinfo, category and speaker are kept as manifest fields.

    Training / Validation folders give the splits (else everything is train: try --split random).

    Example: soritune prepare aihub-lecture /data/lecture --out data/lecture --split random --ratios 8:1:1
    """))


def _corpus_doc(name: str) -> str:
    """The first paragraph of a registered corpus module's docstring, read without importing it."""
    import ast
    from importlib.util import find_spec

    from soritune.data.corpora import REGISTRY

    spec = find_spec(REGISTRY[name])
    doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text(encoding="utf-8"))) if spec and spec.origin else None
    return (doc or f"the {name} corpus").split("\n\n")[0].replace("\n", " ")


def _registry_command(name: str):
    """`soritune prepare NAME ROOT --out DIR` for a registered corpus with no command of its own."""
    return _prepare_command(name, "The corpus: a file or folder, as the reader describes it.", (
        f"Prepare a corpus with the {name} reader: {_corpus_doc(name)}\n\nReader: soritune.data.corpora registry entry "
        f"{name!r} (its module docstring says which columns and files it reads).\n\n"
        f"Example: soritune prepare {name} CORPUS --out data/{name} --split random --ratios 9:1"))


def _register_corpora() -> None:
    """Every registered corpus gets a `prepare NAME` command: a new reader needs no CLI code."""
    from soritune.data.corpora import REGISTRY

    have = {c.name for c in prepare_app.registered_commands}
    for name in REGISTRY:
        if name not in have:
            prepare_app.command(name)(_registry_command(name))


_register_corpora()


def _register_synth() -> None:
    """`soritune prepare synth` is the synthetic lecture corpus verb defined in cli/synth.py."""
    from soritune.cli.synth import prepare_synth

    prepare_app.command("synth")(prepare_synth)


_register_synth()
