"""Running fuzz cases through `modelspec check`'s semantics and classifying the outcome.

Why worker processes: a case that hangs the loader cannot be stopped from inside the
process, and a case that runs away with memory must not take the fuzzer down with it.
So each case runs in a worker process forked from a clean server (`forkserver`:
modelspec's light modules imported there once; never forked from a process that runs
JAX threads) under an address-space limit, and the parent kills a worker that takes longer
than the timeout and counts a hang. A worker that dies is counted as a crash.

Outcomes: `valid` (the spec loads and summarizes), `positioned` (a SpecError whose every
diagnostic reads `file:line:col: path: message` with line >= 1 in one of the case's own
files, or names the `--set` override it is about), and the failures the suite must never
see: `unpositioned`, `traceback` (any other exception), `hang`, `crash`, `executed` (the
canary file, or any other new file, appeared in the case's folder).
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import shutil
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path

from modelspec.errors import printable
from tests.reliability.mutations import CANARY, FIFO, Mutant

OK = ("valid", "positioned")
FAILURES = ("unpositioned", "traceback", "hang", "crash", "executed")
OUTCOMES = OK + FAILURES
MEMORY_LIMIT = 3 << 30
"""Address space a worker may map beyond what it inherits (3 GiB): far above what
checking any spec needs."""


@dataclass(frozen=True)
class Result:
    case: int
    source: str
    operators: tuple[str, ...]
    outcome: str
    detail: str
    seconds: float
    """Wall-clock seconds."""
    cpu: float
    """CPU seconds the worker spent on the case."""


# -- in the worker -------------------------------------------------------------------------


def write_case(m: Mutant, folder: Path) -> None:
    """The case's files in `folder` (which must not exist), the canary path filled in."""
    folder.mkdir(parents=True)
    canary = str(folder / "CANARY")
    for name, content in m.files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if content == FIFO:
            os.mkfifo(target)
        elif isinstance(content, tuple):
            os.symlink(content[1], target)
        else:
            target.write_bytes(content.replace(CANARY.encode(), canary.encode()))


def _positioned(diag, folder: Path, overrides: tuple[str, ...]) -> bool:
    text = diag.format()
    if any(diag.file == f"--set '{o}'" for o in overrides):  # an override has no line
        return text.startswith(printable(f"{diag.file}: {diag.path}: "))
    if diag.line < 1 or diag.col < 1 or not diag.path:
        return False
    if not Path(diag.file).resolve().is_relative_to(folder.resolve()):
        return False
    return text.startswith(printable(f"{diag.file}:{diag.line}:{diag.col}: {diag.path}: "))


def classify(m: Mutant, folder: Path) -> tuple[str, str]:
    """`modelspec check` of the case in-process: load, then summarize."""
    from modelspec.compiler.load import load
    from modelspec.compiler.summary import summarize
    from modelspec.errors import SpecError

    overrides = tuple(o.replace(CANARY, str(folder / "CANARY")) for o in m.overrides)
    try:
        summarize(load(folder / m.main, list(overrides)))
    except SpecError as error:
        if not error.diagnostics:
            return "unpositioned", "a SpecError without diagnostics"
        for diag in error.diagnostics:
            if not _positioned(diag, folder, overrides):
                return "unpositioned", diag.format()[:2000]
        return "positioned", error.diagnostics[0].format()[:300]
    except BaseException:  # noqa: BLE001 - every other way out is the finding
        return "traceback", traceback.format_exc()[-3000:]
    return "valid", ""


def _mapped_bytes() -> int:
    """Address space this process maps already (VmSize): a pytest worker that ran JAX
    tests before has reserved gigabytes, which the fork inherits."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _worker(conn: Connection, scratch: str, classify: Callable = classify) -> None:
    # MEMORY_LIMIT more than what is mapped at the fork: a fixed cap below the inherited
    # mappings made every allocation fail (SystemErrors and segfaults inside PyYAML).
    limit = _mapped_bytes() + MEMORY_LIMIT
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    while True:
        m = conn.recv()
        if m is None:
            return
        folder = Path(scratch) / f"case{m.case}"
        started, cpu = time.perf_counter(), time.process_time()
        try:
            write_case(m, folder)
            outcome, detail = classify(m, folder)
        except BaseException:  # noqa: BLE001 - a broken case must not end the worker
            outcome, detail = "traceback", "writing the case: " + traceback.format_exc()[-2000:]
        conn.send((outcome, detail, time.perf_counter() - started, time.process_time() - cpu))


# -- in the parent ---------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Slot:
    def __init__(self, ctx, scratch: Path, judge: Callable):
        self.parent, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker, args=(child, str(scratch), judge), daemon=True)
        self.process.start()
        child.close()
        self.case: Mutant | None = None
        self.started = self.check_at = self.cpu0 = self.window_cpu = 0.0

    def give(self, m: Mutant, timeout: float) -> None:
        self.case, self.started = m, time.perf_counter()
        self.check_at = self.started + timeout
        self.cpu0, self.window_cpu = _cpu_seconds(self.process.pid), 0.0
        self.parent.send(m)

    def cpu(self) -> float:
        return _cpu_seconds(self.process.pid) - self.cpu0

    def kill(self) -> None:
        self.process.kill()
        self.process.join()
        self.parent.close()


def _finish(
    m: Mutant, scratch: Path, outcome: str, detail: str, seconds: float, cpu: float
) -> Result:
    folder = scratch / f"case{m.case}"
    expected = {folder / name for name in m.files} | {folder}
    expected |= {p for name in m.files for p in (folder / name).parents}
    if folder.exists():
        extra = [p for p in folder.rglob("*") if p not in expected]
        if (folder / "CANARY").exists() or extra:
            outcome, detail = "executed", f"files appeared: {sorted(map(str, extra))[:5]}"
        shutil.rmtree(folder, ignore_errors=True)
    return Result(m.case, m.source, m.operators, outcome, detail, seconds, cpu)


def run_cases(
    cases: Iterable[Mutant], scratch: Path, *, workers: int = 2, timeout: float = 5.0
) -> Iterator[Result]:
    """Each case through a pool of `workers` processes; results in completion order.

    A case is a hang when it has used `timeout` seconds of CPU, or used none for
    `timeout` seconds by the clock (blocked). The clock alone would count cases that a
    busy machine only slowed down (a worker given 10% of a core takes ten times as long).
    A blocked case is run once more, after the others, in a fresh worker: a machine
    short of memory can stall a process on disk that long; a real block blocks again.
    """
    # Workers fork from a fresh server process, not from this one: a pytest worker that
    # ran JAX has threads (XLA pools, background compiles) that may hold allocator locks
    # at the fork, and a forked child that then allocates blocks forever. The server
    # imports the loader once, so starting a worker stays cheap. `classify` is passed by
    # reference (tests patch it with module-level functions).
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["modelspec.compiler", "tests.reliability.fuzz_runner"])
    judge = classify
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "outside.yaml").write_text("name: outside\n")  # for `extends: ../outside.yaml`
    pending = iter(cases)
    retries: list[Mutant] = []
    retried: set[int] = set()

    def next_case() -> Mutant | None:
        m = next(pending, None)
        return retries.pop(0) if m is None and retries else m

    slots: list[_Slot] = []
    busy: list[_Slot] = []

    def start(m: Mutant, slot: _Slot | None = None) -> None:
        if slot is None:
            slot = _Slot(ctx, scratch, judge)
            slots.append(slot)
        slot.give(m, timeout)
        busy.append(slot)

    try:
        for _ in range(workers):
            m = next_case()
            if m is not None:
                start(m)
        while busy:
            soonest = min(s.check_at for s in busy)
            ready = wait([s.parent for s in busy], max(0.0, soonest - time.perf_counter()))
            for slot in list(busy):
                m, now = slot.case, time.perf_counter()
                reuse: _Slot | None = slot
                if slot.parent in ready:
                    try:
                        outcome, detail, seconds, cpu = slot.parent.recv()
                    except (EOFError, OSError):
                        outcome, detail = "crash", f"worker exit {slot.process.exitcode}"
                        seconds, cpu, reuse = now - slot.started, slot.cpu(), None
                elif now >= slot.check_at:
                    cpu = slot.cpu()
                    blocked = cpu - slot.window_cpu < 0.05
                    if cpu < timeout and not blocked:
                        slot.check_at, slot.window_cpu = now + timeout, cpu
                        continue
                    why = "blocked" if blocked else "CPU"
                    outcome = "hang"
                    detail = f"{why}: {cpu:.1f} s CPU in {now - slot.started:.1f} s"
                    if blocked and id(m) not in retried:
                        busy.remove(slot)
                        slot.kill()
                        first = _finish(m, scratch, outcome, detail, now - slot.started, cpu)
                        if first.outcome == "executed":  # never retried: reported at once
                            yield first
                        else:
                            retried.add(id(m))
                            retries.append(m)
                        nxt = next_case()
                        if nxt is not None:
                            start(nxt)
                        continue
                    seconds, reuse = now - slot.started, None
                else:
                    continue
                busy.remove(slot)
                if reuse is None:
                    slot.kill()
                yield _finish(m, scratch, outcome, detail, seconds, cpu)
                nxt = next_case()
                if nxt is not None:
                    start(nxt, reuse)
                elif reuse is not None:
                    reuse.parent.send(None)
                    reuse.process.join(timeout=5)
    finally:
        for slot in slots:
            if slot.process.is_alive():
                slot.kill()
