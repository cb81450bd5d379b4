"""Run prepare's shards as Ray tasks (`--engine ray`, extra `soritune[ray]`).

The work per shard is exactly the local engine's: the caller passes the shard function
(`prepare_common.process_shard`), so this module does not import the stage back. A task reads
its shard's audio/labels and writes its shard files under OUT/.shards, then returns its counts.
So on a multi-machine cluster, ROOT and OUT must be on a file system every node mounts at the
same path (NFS, Lustre, a cloud bucket through FUSE), and soritune must be installed on every
node (or shipped with `ray job submit --runtime-env`). Resume works as locally: finished shards
are skipped on re-run. At most `max_in_flight` shards are submitted at a time, so the driver's
memory stays bounded however many shards there are.

`address`: None starts (or joins, if RAY_ADDRESS is set) a local Ray instance; "auto" joins the
cluster this machine belongs to; "ray://host:10001" connects a Ray client.
"""

from __future__ import annotations

from typing import Callable

from soritune.errors import SoritunError


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def run_shards_ray(
    process_shard: Callable[[dict], dict],
    tasks: list[dict],
    on_done: Callable[[dict], None],
    *,
    address: str | None = None,
    max_in_flight: int = 4,
    num_cpus: int | None = None,
) -> None:
    """Submit `process_shard(task)` for every task to Ray; call `on_done(stats)` as each finishes.

    `process_shard` must be importable by the Ray workers (a module-level function), as for a
    multiprocessing pool."""
    try:
        import ray
    except ImportError:
        raise SoritunError("engine 'ray' needs Ray: pip install 'soritune[ray]'") from None

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, num_cpus=num_cpus if address is None else None, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    try:
        remote = ray.remote(num_cpus=1, max_retries=2)(process_shard)
        pending = list(reversed(tasks))
        in_flight = []
        while pending or in_flight:
            while pending and len(in_flight) < max(1, max_in_flight):
                in_flight.append(remote.remote(pending.pop()))
            ready, in_flight = ray.wait(in_flight, num_returns=1)
            for ref in ready:
                on_done(ray.get(ref))
    finally:
        if started_here:
            ray.shutdown()
