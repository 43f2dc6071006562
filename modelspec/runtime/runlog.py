"""What a run leaves behind and shows: metrics.jsonl, TensorBoard scalars, progress.

On a TTY the progress is a rich bar with live loss/metrics (refreshed from values
fetched at log points only); elsewhere (CI) one plain line per epoch.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any


class MetricsLog:
    """One JSON object per epoch. On resume, lines past the checkpoint are dropped so the
    resumed run writes exactly what an uninterrupted run would have."""

    def __init__(self, path: Path):
        self.path = path

    def truncate(self, epochs: int) -> None:
        """Keep the first `epochs` records. The new text goes to a temporary file that
        replaces the log in one rename: a kill during the rewrite (a rerun's resume)
        must leave the old log whole, never half of it (found by the crash suite)."""
        if not self.path.exists():
            return
        records = self.read()[:epochs]
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text("".join(json.dumps(r) + "\n" for r in records))
        os.replace(temporary, self.path)

    def append(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def read(self) -> list[dict[str, Any]]:
        """The complete records; a line cut short by a crash ends the list."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                break
        return out


class TensorBoard:
    """Scalar event files under `<run_dir>/tensorboard` (tensorboardX's protos; no
    TensorFlow). Written synchronously (buffered, flushed at each epoch and at close):
    tensorboardX's SummaryWriter writes from a thread, where a full disk only prints a
    traceback and then blocks the next writes forever; here the OSError reaches the
    trainer, which reports it."""

    def __init__(self, directory: Path, purge_step: int | None = None, enabled: bool = True):
        self.writer = None
        if not enabled:
            return
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event, SessionLog

        directory.mkdir(parents=True, exist_ok=True)
        self.writer = EventsWriter(str(directory / "events"))
        if purge_step is not None:  # hides events past the resumed step, as SummaryWriter
            start = SessionLog(status=SessionLog.START)
            self.writer.write_event(Event(step=purge_step, session_log=start))

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        if self.writer is None:
            return
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.summary import scalar

        now = time.time()
        for key, value in values.items():
            summary = scalar(f"{prefix}/{key}", float(value))
            self.writer.write_event(Event(wall_time=now, step=step, summary=summary))
        if prefix == "epoch":
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            writer.close()


def fmt(values: dict[str, float]) -> str:
    return " - ".join(f"{k}: {v:.4f}" for k, v in values.items())


class Progress:
    """Progress display: a rich bar on a terminal, plain per-epoch lines otherwise."""

    def __init__(
        self, epochs: int, steps_per_epoch: int, *, enabled: bool = True, tty: bool | None = None
    ):
        self.epochs, self.steps = epochs, steps_per_epoch
        self.enabled = enabled
        self.tty = sys.stdout.isatty() if tty is None else tty
        self._bar = None
        self._task = None

    def start_epoch(self, epoch: int, done: int = 0) -> None:
        if not (self.enabled and self.tty):
            return
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bar

        self._bar = Bar(
            TextColumn(f"Epoch {epoch + 1}/{self.epochs}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[logs]}"),
            transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task("train", total=self.steps, completed=done, logs="")

    def advance(self, steps: int, logs: dict[str, float] | None = None) -> None:
        if self._bar is not None:
            fields = {"logs": fmt(logs)} if logs else {}
            self._bar.update(self._task, advance=steps, **fields)

    def end_epoch(self, epoch: int, logs: dict[str, float], seconds: float) -> None:
        if self._bar is not None:
            self._bar.update(self._task, logs=fmt(logs))
            self._bar.stop()
            self._bar = None
        elif self.enabled:
            print(f"Epoch {epoch + 1}/{self.epochs} - {seconds:.1f}s - {fmt(logs)}", flush=True)

    def message(self, text: str) -> None:
        if self.enabled:
            print(text, flush=True)

    def close(self) -> None:
        """Stop a live bar left running by an error or an interrupt."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
