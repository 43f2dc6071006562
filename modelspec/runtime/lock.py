"""One `train` per run directory: an exclusive lock on `<run_dir>/train.lock`.

Two trainers writing one run directory interleave metrics.jsonl lines and overwrite
each other's checkpoints, and both exit 0. The lock is an `fcntl.flock` on the file:
the kernel releases it when the process dies, however it dies, so a crash never leaves
a run directory locked. The file also records who holds it (pid, host, start time,
command) for the message the second trainer prints; content left by a process that
died is reported and taken over.

`predict` and `evaluate` take no lock: they never write, they read only committed
checkpoints (orbax renames a finished save into place), and they retry when training
deletes the step they were reading (`max_to_keep`). So users can evaluate while
training runs, as in Keras.

In a multi-process run only process 0 takes the lock (the caller decides): the other
processes write no files of their own in the run directory.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from modelspec.errors import Diagnostic, SpecError

LOCK_NAME = "train.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _describe(owner: dict[str, Any]) -> str:
    since = owner.get("since")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if since else "?"
    return f"pid {owner.get('pid', '?')} on host {owner.get('host', '?')} since {when}"


class RunLock:
    """The exclusive train lock of one run directory (a context manager)."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None
        self.note: str | None = None  # a note for the user (stale lock taken over)

    def _owner(self, fd: int) -> dict[str, Any]:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            data = json.loads(os.read(fd, 65536).decode() or "{}")
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def acquire(self) -> RunLock:
        """Take the lock at once or raise a SpecError naming the holder."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise  # reported as a full disk by the caller
            raise SpecError.single(
                Diagnostic(
                    str(self.run_dir),
                    0,
                    0,
                    "--run-dir",
                    f"cannot write the run directory ({exc.strerror}: {self.path})",
                    hint="Use a run directory you can write to (--run-dir).",
                )
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            owner = self._owner(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                self.note = (  # a file system without locks: warn, do not refuse
                    f"Note: cannot lock {self.path} ({exc.strerror}); make sure no other "
                    "`modelspec train` writes this run directory."
                )
                return self
            raise SpecError.single(
                Diagnostic(
                    str(self.run_dir),
                    0,
                    0,
                    "--run-dir",
                    f"run directory {self.run_dir} is in use by {_describe(owner)} "
                    f"(another `modelspec train`: {owner.get('command', '?')})",
                    hint="Wait for it to finish or stop it, or train into another --run-dir.",
                )
            ) from None
        previous = self._owner(fd)
        if previous.get("pid"):
            dead = previous.get("host") == socket.gethostname() and not _alive(previous["pid"])
            state = "which is no longer running" if dead else "which no longer holds it"
            self.note = (
                f"Taking over the lock of {self.run_dir} left by {_describe(previous)}, {state}."
            )
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.time(),
            "command": " ".join(sys.argv),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Clear the record (so a later run sees no stale owner) and unlock."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        except OSError:
            pass  # a full disk must not hide the error that is on its way out
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
