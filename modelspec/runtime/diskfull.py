"""A full disk (or an exhausted quota) while training: one clear error, no traceback.

The error can surface anywhere a run writes: a metrics.jsonl line, a TensorBoard event,
a checkpoint (orbax writes in a background thread and re-raises at the next save or at
`wait_until_finished`, wrapped in its own exceptions, sometimes only as text). So the
whole exception chain is searched, by errno and by message. Nothing is lost: orbax
commits a checkpoint only when it is complete, and rerunning the same command after
freeing space resumes from the last complete one, bit-identical.

Most of the time the error is not even needed: before each save the free space is
compared with the size of the newest checkpoint, so training stops with the last
checkpoint intact instead of letting orbax fail halfway (its background threads log
each failure with a traceback; those duplicates of the error reported here are
filtered out of the log).
"""

from __future__ import annotations

import errno
import logging
import re
import shutil
from pathlib import Path

from modelspec.errors import Diagnostic, SpecError

_CODES = {errno.ENOSPC, errno.EDQUOT}
_TEXT = re.compile(
    r"No space left on device|Disk quota exceeded|\bENOSPC\b|\bEDQUOT\b|"
    rf"\[Errno ({errno.ENOSPC}|{errno.EDQUOT})\]|errno[ =:]+({errno.ENOSPC}|{errno.EDQUOT})\b",
    re.IGNORECASE,
)


def disk_full_cause(exc: BaseException) -> str | None:
    """The disk-full reason somewhere in `exc`'s chain (causes, contexts, groups)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in _CODES:
            return e.strerror or str(e)
        match = _TEXT.search(str(e))
        if match:
            return match.group(0)
        todo += [x for x in (e.__cause__, e.__context__) if x is not None]
        todo += list(getattr(e, "exceptions", ()))
    return None


class _DiskFullDuplicates(logging.Filter):
    """Drop log records about a full disk from orbax's threads and asyncio's "Task
    exception was never retrieved": the same error reaches the trainer, which reports it
    once."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += " " + str(record.exc_info[1])
        return not (record.levelno >= logging.ERROR and _TEXT.search(text))


for _name in ("absl", "asyncio"):
    logging.getLogger(_name).addFilter(_DiskFullDuplicates())


def directory_bytes(path: Path) -> int:
    try:
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    except OSError:
        return 0


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _committed(ckdir: Path) -> list[int]:
    return sorted(int(p.name) for p in ckdir.glob("*") if p.name.isdigit() and p.is_dir())


def checkpoint_bytes(run_dir: Path, state_bytes: int) -> int:
    """Room to save one checkpoint: the newest one's size on disk (at least the state's
    bytes), plus a quarter and 64 KB for orbax's temporary and metadata files."""
    steps = _committed(run_dir / "checkpoints")
    newest = directory_bytes(run_dir / "checkpoints" / str(steps[-1])) if steps else 0
    size = max(newest, state_bytes)
    return size + size // 4 + (64 << 10)


def ensure_space(run_dir: Path, state_bytes: int) -> None:
    """Before a save: refuse (SpecError) when the disk has no room for one more
    checkpoint, so the last one stays intact and no half-written one is left."""
    try:
        free = shutil.disk_usage(run_dir).free
    except OSError:
        return
    if free < checkpoint_bytes(run_dir, state_bytes):
        raise disk_full_error(run_dir, f"only {_size(free)} free", state_bytes)


def disk_full_error(run_dir: Path, reason: str, state_bytes: int) -> SpecError:
    """The error for a full disk: the room one checkpoint needs and the step a rerun
    resumes from."""
    steps = _committed(run_dir / "checkpoints")
    needed = checkpoint_bytes(run_dir, state_bytes)
    resume = (
        f"it resumes from checkpoint step {steps[-1]}"
        if steps
        else "there is no checkpoint yet, so it starts over"
    )
    return SpecError.single(
        Diagnostic(
            str(run_dir),
            0,
            0,
            "--run-dir",
            f"the disk holding {run_dir} is full ({reason}); saving a checkpoint needs about "
            f"{_size(needed)}",
            hint=f"Free at least that much space (or lower checkpoint.max_to_keep), then "
            f"rerun the same command: {resume}.",
        )
    )
