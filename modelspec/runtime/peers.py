"""Multi-process runs: a dead peer ends the others with a message and exit code 4.

How a dead process surfaces in jax 0.10.2 (measured on localhost with gloo; the tests
are `tests/reliability/test_run_safety.py`):

- JAX's coordination service (hosted by process 0) marks a process dead when its
  heartbeats stop for `heartbeat_timeout` seconds. By default it then sends an error to
  every other process, whose C++ agent aborts it (`Terminating process because the JAX
  distributed service detected fatal errors`, SIGABRT, exit 134). Python cannot catch
  that, and the hook jaxlib has for it (`missed_heartbeat_callback`) cannot be given a
  Python function: the status it passes has no Python type (std::bad_cast, terminate).
- A collective in flight with the dead process fails at once with a Python exception
  (gloo: "Connection reset by peer") when the peer's kernel closed its sockets; a peer
  whose host vanished leaves the collective hanging instead.

So multi-process runs start with `jax_enable_recoverability` (JAX's public switch: the
service no longer kills the others when one process dies), and `PeerWatch` polls the
service's live processes every second from a daemon thread. When one is missing, this
process prints which one was lost (index, host and pid, from a table every process
publishes in the service's key-value store at start) and the checkpoint to resume from,
and exits with `PEER_LOST_EXIT` through `os._exit` (JAX's atexit shutdown would wait on
the dead process). A collective that fails in the main thread waits for that verdict.
Bound: the heartbeat timeout (30 s) plus one poll, after the peer died.

Not catchable: the death of process 0 itself. The service lives in it, and the other
processes' C++ agents abort the moment their connection to it breaks (exit 134 with
JAX's log line, usually before any Python code notices). Their last lines then name
the leader task (process 0); the checkpoints are as safe as in any other crash.

Recoverability also drops JAX's shutdown barrier, so a run that ends normally calls
`finish()`: every process waits for the others, and process 0 (the service) leaves
last, or a process still disconnecting would lose the service and abort. JAX's live
list is collective (`get_live_nodes` returns once every live process asked, or one was
declared dead): the watch threads poll in step, which also makes the bound independent
of the poll interval.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from modelspec.errors import SpecError

PEER_LOST_EXIT = 4
"""Exit code of a process that stopped because another process of its run was lost."""
POLL_SECONDS = 1.0
_KEY = "modelspec/peers/"

_current: PeerWatch | None = None


def newest_checkpoint(run_dir: Path | None) -> int | None:
    """The newest committed checkpoint step (orbax renames a finished save to its step
    number). Read from the file system: no JAX call, safe while collectives hang."""
    folder = run_dir / "checkpoints" if run_dir is not None else None
    if folder is None or not folder.is_dir():
        return None
    steps = [int(p.name) for p in folder.iterdir() if p.name.isdigit()]
    return max(steps, default=None)


class PeerWatch:
    """Watches the other processes of a multi-process run (see the module docstring)."""

    def __init__(self, client: Any, index: int, count: int, heartbeat_timeout: int):
        self.client, self.index, self.count = client, index, count
        self.heartbeat_timeout = heartbeat_timeout
        self.run_dir: Path | None = None
        self.who: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modelspec-peers", daemon=True)
        me = {"host": socket.gethostname(), "pid": os.getpid()}
        client.key_value_set(f"{_KEY}{index}", json.dumps(me))

    def start(self) -> PeerWatch:
        self._thread.start()
        return self

    def _learn_peers(self) -> None:
        """Fill in host and pid of the processes that published theirs."""
        for i in range(self.count):
            if i in self.who:
                continue
            try:
                info = json.loads(self.client.key_value_try_get(f"{_KEY}{i}"))
            except Exception:  # not published yet, or the service is gone
                continue
            self.who[i] = f"pid {info['pid']} on host {info['host']}"

    def _verdict(self) -> tuple[int, str] | None:
        """(lost process, how it was found) or None while every process is alive."""
        everyone = list(range(self.count))
        try:
            live = self.client.get_live_nodes(everyone)
        except Exception:
            return 0, "the coordination service it runs is unreachable"
        missing = [i for i in everyone if i not in live]
        if missing:
            return missing[0], f"it sent no heartbeat for {self.heartbeat_timeout} s"
        return None

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self._learn_peers()
            verdict = self._verdict()
            if verdict is not None and not self._stop.is_set():
                self.lost(*verdict)

    def message(self, lost: int, how: str) -> str:
        who = self.who.get(lost, "host and pid unknown")
        step = newest_checkpoint(self.run_dir)
        where = self.run_dir if self.run_dir is not None else "the run directory"
        resume = (
            f"the newest checkpoint is step {step} in {where}: start all {self.count} "
            "processes again with the same command to resume from it"
            if step is not None
            else f"no checkpoint was saved yet in {where}: rerunning all {self.count} "
            "processes starts from step 0"
        )
        return (
            f"Process {lost} of {self.count} ({who}) was lost: {how} (killed, crashed or "
            f"unreachable). Process {self.index} stops too (exit code {PEER_LOST_EXIT}); "
            f"{resume}."
        )

    def lost(self, index: int, how: str) -> NoReturn:
        """Say which process was lost and where to resume, then end this process."""
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os.write(2, (self.message(index, how) + "\n").encode())
        os._exit(PEER_LOST_EXIT)

    def failed(self, error: BaseException | None) -> None:
        """The main thread's view of a failure (a collective error, an orbax barrier):
        if a peer is dead, the watch thread ends the process within the heartbeat
        timeout; otherwise return (the caller re-raises `error`)."""
        deadline = time.monotonic() + self.heartbeat_timeout + 3 * POLL_SECONDS
        while self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS / 4)

    def finish(self, timeout_s: int = 600, *, after_error: bool = False) -> None:
        """The end of a run: wait for every process, then leave, process 0 (the
        service) last. `get_live_nodes` is itself collective (it returns once every
        live process has called it, or a process was declared dead), so the watch
        threads keep polling until all processes are past the barrier, and are then
        released by the others' disconnection rather than joined. `after_error`: this
        process failed with a user error the others may not share: wait a short while
        only, and never turn a timeout into a lost-process verdict."""
        import jax

        try:
            self.client.wait_at_barrier("modelspec/finished", timeout_s * 1000)
        except Exception:
            if after_error:
                self._stop.set()
                return
            self.failed(None)  # a process died after its last step: the thread says which
            raise
        self._stop.set()
        if self.index == 0:  # the service: stay until every other process has left
            self._thread.join(timeout=60)
            everyone, deadline = list(range(self.count)), time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if len(self.client.get_live_nodes(everyone)) <= 1:
                        break
                except Exception:
                    break
        jax.distributed.shutdown()


def watch_peers(heartbeat_timeout: int) -> PeerWatch | None:
    """Start watching the run's other processes (None in a single-process run)."""
    global _current
    import jax
    from jax._src import distributed  # the client, as orbax's multihost utilities use it

    client = distributed.global_state.client
    if client is None or jax.process_count() == 1:
        return None
    if not hasattr(client, "get_live_nodes") or not jax.config.values.get(
        "jax_enable_recoverability", False
    ):  # a JAX without liveness queries: its own heartbeat abort stays the behaviour
        return None
    _current = PeerWatch(client, jax.process_index(), jax.process_count(), heartbeat_timeout)
    return _current.start()


@contextlib.contextmanager
def watching_peers(heartbeat_timeout: int) -> Iterator[PeerWatch | None]:
    """`train`'s multi-process frame: a watch while it runs, `failed()` on an
    unexpected error (a dead peer ends the process with exit code 4 instead), and the
    synchronized end `finish()` after success or a user error."""
    watch = watch_peers(heartbeat_timeout)
    if watch is None:
        yield None
        return
    try:
        yield watch
    except SpecError:
        watch.finish(timeout_s=60, after_error=True)
        raise
    except Exception as error:
        watch.failed(error)
        raise
    watch.finish()


def attach(run_dir: Path) -> None:
    """Tell the watch (if any) which run directory to name in its message."""
    if _current is not None:
        _current.run_dir = Path(run_dir)
