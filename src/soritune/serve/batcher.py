"""Micro-batching: clips from concurrent requests share one model call, off the event loop.

`MicroBatcher.submit(audio, language, task, owner=...)` queues one clip (<= 30 s) and awaits its
transcription. Clips wait in one queue per owner (a request), and batches are filled fairly: owners
take turns (round-robin), one clip each per turn, with the (language, task) of the owner whose turn
it is, up to `max_batch`; owners served go to the back of the line. So a 2-hour upload's hundreds of
chunks cannot starve a 3-second request that arrives after them: its clip rides in the next batch.
If fewer clips are waiting than `max_batch`, the batch is held open for at most `window_ms` after the
oldest of them arrived (clips that already waited while the model was busy are sent at once).
`drop(owner)` removes an owner's queued clips at once (client gone, deadline passed). A clip may carry a
`context` (the previous chunk's prompt tokens, with previous-text conditioning); a batch holding one
calls `run_batch(audios, language, task, contexts=[...])`. The model runs in one dedicated thread, so the event loop keeps accepting uploads,
and the next batch collects while the current one decodes. `max_batch=1` turns batching off.

If a batch fails, its clips are retried one by one, so one bad clip cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

log = logging.getLogger("soritune.serve")

# run_batch(audios, language, task) -> one transcription per audio (e.g. Backend.transcribe)
RunBatch = Callable[[list[np.ndarray], str, str], list]


@dataclass
class ClipResult:
    """A transcription and how it was served."""

    transcription: object  # soritune.infer.Transcription
    queue_ms: float  # from submit to the start of its model call
    inference_ms: float  # the model call it was part of
    batch_size: int  # clips in that model call
    batch_id: int = 0  # which model call (1, 2, ...): clips of one call share it


@dataclass
class BatchStats:
    batches: int = 0
    clips: int = 0
    max_batch_size: int = 0
    sizes: dict[int, int] = field(default_factory=dict)  # batch size -> model calls of that size

    @property
    def mean_batch_size(self) -> float:
        return self.clips / self.batches if self.batches else 0.0

    def record(self, size: int) -> None:
        self.batches += 1
        self.clips += size
        self.max_batch_size = max(self.max_batch_size, size)
        self.sizes[size] = self.sizes.get(size, 0) + 1


@dataclass(eq=False)  # hashed by identity: a clip without an owner is its own owner
class _Item:
    audio: np.ndarray
    key: tuple[str, str]  # (language, task)
    future: asyncio.Future
    enqueued: float
    context: list[int] | None = None  # prompt tokens of the text before this clip (None: none)


class MicroBatcher:
    """Collects clips into batches for `run_batch`; start() inside the event loop, stop() at shutdown."""

    def __init__(self, run_batch: RunBatch, *, max_batch: int = 8, window_ms: float = 20.0,
                 on_batch: Callable[[int, float], None] | None = None,
                 on_queue: Callable[[int], None] | None = None):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if window_ms < 0:
            raise ValueError(f"window_ms must be >= 0, got {window_ms}")
        self.run_batch = run_batch
        self.max_batch = int(max_batch)
        self.window_s = float(window_ms) / 1000.0
        self.on_batch = on_batch  # (batch size, inference seconds) after each model call
        self.on_queue = on_queue  # (clips waiting) whenever that changes
        self.stats = BatchStats()
        self.dropped_clips = 0  # queued clips removed because their request was gone
        self._queues: dict[object, deque[_Item]] = {}  # owner -> its waiting clips; dict order = turn order
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="soritune-model")
        self._closed = False
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="soritune-batcher")

    async def stop(self) -> None:
        self._closed = True
        if self._wakeup is not None:
            self._wakeup.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        for queue in self._queues.values():
            for item in queue:
                if not item.future.done():
                    item.future.set_exception(RuntimeError("server shutting down"))
        self._queues.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    @property
    def queue_depth(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def queued_for(self, owner) -> int:
        return len(self._queues.get(owner, ()))

    # -- API ---------------------------------------------------------------------------------------
    async def submit(self, audio: np.ndarray, language: str, task: str = "transcribe", *, owner=None,
                     context: list[int] | None = None) -> ClipResult:
        """Queue one clip (<= 30 s of 16 kHz float32) and wait for its transcription.

        `owner` groups the clips of one request for fair turns and `drop`; None: the clip is its own owner.
        """
        if self._task is None or self._closed:
            raise RuntimeError("batcher is not running")
        fut = asyncio.get_running_loop().create_future()
        item = _Item(audio, (language, task), fut, time.perf_counter(), context)
        self._queues.setdefault(item if owner is None else owner, deque()).append(item)
        self._notify_queue()
        self._wakeup.set()
        return await fut

    def drop(self, owner) -> int:
        """Remove `owner`'s waiting clips (their futures are cancelled); returns how many were dropped."""
        queue = self._queues.pop(owner, None) or ()
        for item in queue:
            item.future.cancel()
        if queue:
            self.dropped_clips += len(queue)
            log.info("dropped %d queued clip(s) of a request that is gone", len(queue))
            self._notify_queue()
        return len(queue)

    # -- worker ------------------------------------------------------------------------------------
    def _notify_queue(self) -> None:
        if self.on_queue:
            self.on_queue(self.queue_depth)

    def _prune(self) -> None:
        """Forget clips whose caller is gone (cancelled futures) and owners with nothing waiting."""
        for owner, queue in list(self._queues.items()):
            if any(it.future.done() for it in queue):
                queue = self._queues[owner] = deque(it for it in queue if not it.future.done())
            if not queue:
                del self._queues[owner]

    def _oldest(self) -> float | None:
        return min((q[0].enqueued for q in self._queues.values() if q), default=None)

    def _take_batch(self) -> list[_Item] | None:
        """The next batch to run now (owners in turn), or None if it may still wait for company."""
        self._prune()
        if not self._queues:
            return None
        key = next(iter(self._queues.values()))[0].key  # the (language, task) of the owner whose turn it is
        lines = [(owner, [it for it in q if it.key == key]) for owner, q in self._queues.items()]
        batch: list[_Item] = []
        served: list = []
        for depth in range(self.max_batch):
            for owner, items in lines:
                if depth < len(items) and len(batch) < self.max_batch:
                    batch.append(items[depth])
                    if depth == 0:
                        served.append(owner)
        oldest = min(it.enqueued for it in batch)
        if len(batch) < self.max_batch and time.perf_counter() < oldest + self.window_s:
            return None
        taken = {id(it) for it in batch}
        for owner in served:  # served owners go to the back of the line, in the order they were served
            rest = deque(it for it in self._queues.pop(owner) if id(it) not in taken)
            if rest:
                self._queues[owner] = rest
        self._notify_queue()
        return batch

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed:
            batch = self._take_batch()
            if batch is None:
                self._wakeup.clear()
                oldest = self._oldest()
                timeout = None if oldest is None else max(0.0, oldest + self.window_s - time.perf_counter())
                try:
                    await asyncio.wait_for(self._wakeup.wait(), timeout)
                except TimeoutError:
                    pass
                continue
            started = time.perf_counter()
            language, task = batch[0].key
            audios = [it.audio for it in batch]
            contexts = [it.context for it in batch]
            try:
                results = await loop.run_in_executor(self._executor, self._run, audios, language, task, contexts)
            except asyncio.CancelledError:
                for it in batch:
                    if not it.future.done():
                        it.future.set_exception(RuntimeError("server shutting down"))
                raise
            elapsed = time.perf_counter() - started
            self.stats.record(len(batch))
            if self.on_batch:
                self.on_batch(len(batch), elapsed)
            for it, res in zip(batch, results):
                if it.future.done():
                    continue
                if isinstance(res, BaseException):
                    it.future.set_exception(res)
                else:
                    it.future.set_result(ClipResult(res, (started - it.enqueued) * 1000, elapsed * 1000, len(batch),
                                                    self.stats.batches))

    def _call(self, audios, language, task, contexts) -> list:
        if any(c is not None for c in contexts):
            return self.run_batch(audios, language, task, contexts=contexts)
        return self.run_batch(audios, language, task)

    def _run(self, audios: list[np.ndarray], language: str, task: str, contexts: list | None = None) -> list:
        """In the model thread: the whole batch, or on failure each clip alone (errors as values)."""
        contexts = contexts or [None] * len(audios)
        try:
            results = list(self._call(audios, language, task, contexts))
            if len(results) != len(audios):
                raise RuntimeError(f"backend returned {len(results)} results for {len(audios)} clips")
            return results
        except Exception as e:  # noqa: BLE001 - isolate the failing clip below
            if len(audios) == 1:
                log.warning("transcription failed: %s", e)
                return [e]
            log.warning("batch of %d failed (%s); retrying clip by clip", len(audios), e)
        out: list = []
        for audio, context in zip(audios, contexts):
            try:
                out.append(self._call([audio], language, task, [context])[0])
            except Exception as e:  # noqa: BLE001
                out.append(e)
        return out
