"""Refuse, before anything is allocated, a model that cannot fit the devices.

Why: allocating far more than a device holds does not fail cleanly — XLA raises
RESOURCE_EXHAUSTED deep in a traceback, or the host swaps and stalls. The pure-Python
lower bound (`compiler/memory.py`) is compared with what the devices report:
accelerators give their `bytes_limit`; CPU devices share the host's physical memory.
"""

from __future__ import annotations

import os

from modelspec.compiler.memory import estimate, too_large
from modelspec.errors import SpecError


def device_capacity(devices: list) -> tuple[int, str]:
    """Bytes one device may use, and words for it."""
    device = devices[0]
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001 - some backends do not implement it
        stats = None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"]), f"the memory of one {device.platform} device"
    host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    local = [d for d in devices if d.process_index == device.process_index]
    n = max(1, len(local))
    share = f", shared by {n} devices" if n > 1 else ""
    return host // n, f"this host's memory{share}"


def check_fits(spec, dist) -> None:
    """Raise a positioned SpecError when training `spec` on `dist` cannot fit."""
    est = estimate(spec, dist.plan)
    capacity, what = device_capacity(list(dist.mesh.devices.flat))
    if est.total > capacity:
        raise SpecError([too_large(spec, est, capacity, what)])
