"""`--engine ray` runs the same shard work on a (local) Ray instance: same outputs as the pool."""

from __future__ import annotations

import pytest

from soritune.data.prepare_common import PrepareConfig, run

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'soritune[ray]')")


def test_ray_engine_matches_local(tmp_path):
    from soritune.data.corpora.kspon_fake import write_kspon_tree

    tree = write_kspon_tree(tmp_path / "root", 200, seed=2, sparse=True)
    common = dict(corpus="kspon", root=str(tmp_path / "root"), shard_size=25, workers=2)
    local = run(PrepareConfig(out=str(tmp_path / "local"), **common))
    distributed = run(PrepareConfig(out=str(tmp_path / "ray"), engine="ray", **common))
    assert distributed.inputs == local.inputs == 200
    assert distributed.quarantined_by_reason == local.quarantined_by_reason == tree.defects
    for name in ("train", "dev", "eval_clean", "eval_other", "quarantine"):
        assert (tmp_path / "ray" / f"{name}.jsonl").read_bytes() == (tmp_path / "local" / f"{name}.jsonl").read_bytes()
    assert not ray.is_initialized()  # the engine shuts down the instance it started
