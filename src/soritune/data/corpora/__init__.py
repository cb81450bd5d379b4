"""Corpus readers, registered by name: `get_corpus("kspon")`.

Each reader is one small module exposing `CORPUS` (a `base.Corpus`): how to list a corpus's
utterances (`plan`) and how to read one label (`read_label`). The shared per-utterance work
(normalisation, audio probe, filters, conversion) lives in `base.process_item`; the parallel,
resumable engine in `soritune.data.prepare_common`.
"""

from __future__ import annotations

from importlib import import_module

from soritune.data.corpora.base import Corpus, Item, ItemError, Label, Settings
from soritune.errors import SoritunError

REGISTRY = {
    "kspon": "soritune.data.corpora.kspon",
    "aihub-lecture": "soritune.data.corpora.aihub",
    "manifest": "soritune.data.corpora.generic",
    "nemo": "soritune.data.corpora.nemo",
}

__all__ = ["REGISTRY", "get_corpus", "Corpus", "Item", "ItemError", "Label", "Settings"]


def get_corpus(name: str) -> Corpus:
    """The registered corpus reader `name` (kspon, aihub-lecture, manifest)."""
    if name not in REGISTRY:
        raise SoritunError(f"unknown corpus {name!r}; known: {', '.join(REGISTRY)}")
    return import_module(REGISTRY[name]).CORPUS
