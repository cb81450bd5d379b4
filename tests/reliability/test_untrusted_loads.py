"""Defect 9: loading a run or export directory never executes code pickled into it."""

from __future__ import annotations

import os
import pickle
import random

import numpy as np
import pytest
import torch

from soritune.train.checkpoint import load_pt, rng_state, set_rng_state


class _Payload:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_checkpoint_files_cannot_run_code(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"state": {}, "param_groups": [], "x": _Payload(str(marker))}, tmp_path / "optimizer.pt")
    with pytest.raises(pickle.UnpicklingError) as e:
        load_pt(tmp_path / "optimizer.pt")
    assert "weights" in str(e.value).lower() or "unpickl" in str(e.value).lower()
    assert not marker.exists()


def test_rng_state_round_trips_through_the_safe_loader(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    torch.save(rng_state(), tmp_path / "rng-0.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    set_rng_state(load_pt(tmp_path / "rng-0.pt"))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_rng_state_of_older_checkpoints_still_loads(tmp_path):
    np.random.seed(5)
    torch.save({"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()},
               tmp_path / "rng-0.pt")  # the format before weights_only: a pickled numpy array
    expected = np.random.rand()
    np.random.seed(0)
    set_rng_state(load_pt(tmp_path / "rng-0.pt"))
    assert np.random.rand() == expected


def test_int8_export_cannot_run_code(tmp_path, tiny):
    from soritune.models.formats import INT8_FILE, load_int8

    tiny.model.config.save_pretrained(tmp_path)
    marker = tmp_path / "pwned"
    torch.save({"x": _Payload(str(marker))}, tmp_path / INT8_FILE)
    with pytest.raises(pickle.UnpicklingError):
        load_int8(tmp_path)
    assert not marker.exists()
