"""Training batches built ahead of the step in background threads.

Why: on the host path the step waits for its batch; with streamed images (decode and
resize per file) or memory-mapped arrays that wait is the whole run's bottleneck.
Here a feeder thread walks the run's plan of dispatches (`chunk_plan`: the same
`(epoch, index, count)` chunks the training loop asks for), splits each chunk's rows
into tasks for a pool of `workers` threads (Pillow and NumPy's copies release the GIL,
so threads decode in parallel), keeps at most `depth` chunks in flight, and hands each
finished chunk to `put` (the trainer's copy to the devices) before queueing it, so the
step finds its batch already on the devices.

Determinism: a chunk's rows come from `ArrayDataset.order` and `dataset._batch_rows`,
the definitions `ArrayDataset.batch` uses, and every task writes its own rows of a
buffer preallocated for that chunk; chunks are queued in plan order whatever finishes
first. So the batches are exactly the synchronous ones (tests compare them) and resume
needs only the loop's (epoch, next batch). In a multi-process run each process builds
only its `part` of every batch: the rows `put_batch` would keep on that process.

Lifetime: `close()` (or leaving the `with` block) stops the feeder, cancels queued
tasks and joins the threads; a failure in a task (a file that no longer decodes) is
raised by `get` in the training thread, with its own message.
"""

from __future__ import annotations

import math
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from modelspec.runtime.data.dataset import _batch_rows
from modelspec.runtime.data.lazy_rows import LazyRows

__all__ = ["Chunk", "Prefetcher", "chunk_plan", "default_workers", "local_rows"]

MAX_WORKERS = 32
MIN_TASK_ROWS = 8
"""Rows one task reads at least: smaller tasks cost more in scheduling than they save."""
MAX_DEPTH = 16


def default_workers() -> int:
    """`data.workers` when not given: the CPU count, at most `MAX_WORKERS`."""
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


@dataclass(frozen=True)
class Chunk:
    """One dispatch of the training loop: `count` batches of `epoch` from `index`."""

    epoch: int
    index: int
    count: int


def chunk_plan(
    steps_per_epoch: int, steps_per_execution: int, epochs: int, epoch: int, index: int
) -> Iterator[Chunk]:
    """The chunks the training loop dispatches from position (epoch, index) to the end
    of the run: `steps_per_execution` batches at a time, a shorter last one per epoch."""
    while epoch < epochs:
        while index < steps_per_epoch:
            count = min(steps_per_execution, steps_per_epoch - index)
            yield Chunk(epoch, index, count)
            index += count
        epoch, index = epoch + 1, 0


def local_rows(batch_size: int, part: tuple[int, int]) -> slice:
    """The rows of a global batch process `part = (index, count)` holds: the same
    contiguous block `put_batch` gives it."""
    pid, nproc = part
    per = batch_size // nproc
    return slice(pid * per, (pid + 1) * per)


@dataclass
class _Failed:
    error: BaseException


_END = object()


def _gather(array: Any, rows: np.ndarray, out: np.ndarray) -> None:
    out[...] = array[rows]


class Prefetcher:
    """Batches of `dataset` for the chunks of `plan`, built ahead (see module doc).

    `batching`: batch_size, shuffle, seed, drop_remainder (as `ArrayDataset.batch`
    takes them). `stacked`: chunks are stacked on a leading steps axis (the scanned
    multi-step), else every chunk is one batch. `put` maps a host chunk to what `get`
    returns (the trainer copies it to the devices)."""

    def __init__(
        self,
        dataset: Any,
        plan: Iterator[Chunk],
        *,
        batching: dict[str, Any],
        stacked: bool,
        put: Callable[[dict], Any] = lambda batch: batch,
        workers: int | None = None,
        depth: int | None = None,
        part: tuple[int, int] = (0, 1),
    ) -> None:
        self.dataset, self.batching, self.stacked, self.put = dataset, batching, stacked, put
        self.workers = workers or default_workers()
        self.rows = local_rows(batching["batch_size"], part)
        self._plan = plan
        self._depth = depth
        self._stop = threading.Event()
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="modelspec-data")
        self._feeder = threading.Thread(target=self._feed, name="modelspec-feeder", daemon=True)
        self._feeder.start()

    # -- the training thread ---------------------------------------------------------
    def get(self, chunk: Chunk) -> Any:
        """The (put) batches of `chunk`, which must be the plan's next one."""
        item = self._queue.get()
        if isinstance(item, _Failed):
            self._queue.put(item)  # every later get fails the same way
            raise item.error
        if item is _END:
            self._queue.put(item)
            raise ValueError(f"{chunk} is past the end of the prefetch plan")
        got, value = item
        if got != chunk:
            raise ValueError(f"prefetched {got}, but the loop asked for {chunk}")
        return value

    def close(self) -> None:
        """Stop building, drop queued work and join the threads (idempotent)."""
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        while self._feeder.is_alive():
            try:  # unblock a feeder waiting for room in the queue
                self._queue.get_nowait()
            except queue.Empty:
                pass
            self._feeder.join(timeout=0.05)
        self._pool.shutdown(wait=True)

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the feeder thread -----------------------------------------------------------
    def _offer(self, item: Any) -> bool:
        """Queue `item` once there is room; False when stopped first."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _feed(self) -> None:
        try:
            pending: deque[tuple[Chunk, list[Future], dict]] = deque()
            plan = iter(self._plan)
            exhausted = False
            while not self._stop.is_set():
                while not exhausted and len(pending) < (self._depth or 2):
                    chunk = next(plan, None)
                    if chunk is None:
                        exhausted = True
                        break
                    tasks, out = self._job(chunk)
                    if self._depth is None:  # enough chunks to keep every worker busy
                        per = max(1, len(tasks))
                        self._depth = max(2, min(MAX_DEPTH, math.ceil(2 * self.workers / per)))
                    pending.append((chunk, [self._pool.submit(t) for t in tasks], out))
                if not pending:
                    self._offer(_END)
                    return
                chunk, futures, out = pending.popleft()
                for future in futures:
                    future.result()  # the first failure, in row order
                if not self._offer((chunk, self.put(out))):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the training thread
            if not self._stop.is_set():
                self._offer(_Failed(exc))

    def _job(self, chunk: Chunk) -> tuple[list[Callable[[], None]], dict]:
        """The tasks filling one chunk's buffers, and those buffers."""
        b = self.batching
        order = self.dataset.order(chunk.epoch, shuffle=b["shuffle"], seed=b["seed"])
        batches = [_batch_rows(order, chunk.index + i, b["batch_size"]) for i in range(chunk.count)]
        rows = [r[self.rows] for r, _ in batches]
        masks = [m[self.rows] for _, m in batches]
        lead = (chunk.count,) if self.stacked else ()
        n = len(rows[0])
        out: dict[str, Any] = {
            "inputs": {},
            "targets": {},
            "mask": np.stack(masks) if self.stacked else masks[0],
        }
        per_task = max(MIN_TASK_ROWS, math.ceil(n / self.workers))
        tasks: list[Callable[[], None]] = []
        for group in ("inputs", "targets"):
            for name, array in getattr(self.dataset, group).items():
                dest = np.empty((*lead, n, *array.shape[1:]), dtype=array.dtype)
                out[group][name] = dest
                for i, part in enumerate(rows):
                    target = dest[i] if self.stacked else dest
                    if isinstance(array, LazyRows):  # read per row (image files, token windows)
                        for s in range(0, n, per_task):
                            piece = slice(s, s + per_task)
                            tasks.append(partial(array.read_into, part[piece], target[piece]))
                    else:
                        tasks.append(partial(_gather, array, part, target))
        return tasks, out
