"""Named single-thread executors for work that overlaps the training thread.

Each purpose gets its own thread, created on first use and joined at interpreter exit:
`init` makes a session's initial state while the trainer compiles its first step;
`compile` compiles fused `steps_per_execution` programs while steps run. One thread
each keeps such work in order and off the CPU cores the steps need.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["worker"]

_workers: dict[str, ThreadPoolExecutor] = {}
_lock = threading.Lock()


def worker(name: str) -> ThreadPoolExecutor:
    """The process's one `modelspec-<name>` thread."""
    with _lock:
        if name not in _workers:
            _workers[name] = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=f"modelspec-{name}"
            )
        return _workers[name]
