"""The `modelspec` command line.

Light commands (`--help`, `check`, `summary`, `schema`) import only pydantic, yaml,
typer and rich; JAX, Flax, optax and orbax are imported inside the commands that run
a model. User errors print as `file:line:col: path: message` and exit with code 2.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

# the commands register themselves on `app` when imported; --help lists them in this order
# isort: off
import modelspec.cli_inspect  # noqa: F401  check, summary, graph, plot, schema
import modelspec.cli_run  # noqa: F401  train, evaluate, predict
import modelspec.cli_export  # noqa: F401  export, import
import modelspec.cli_generate  # noqa: F401  generate

# isort: on
from modelspec.cli_common import app
from modelspec.errors import SpecError

__all__ = ["app", "main"]


def _exit_at_once(signum: int, frame: object) -> None:
    """SIGINT/SIGTERM outside the training loop (importing JAX, loading data, compiling):
    nothing is being written, so exit at once with a word — raising KeyboardInterrupt
    inside JAX's start-up can leave it half-initialised (tracebacks, even a crash at
    exit). The training loop installs its own handlers (stop at a step boundary)."""
    name = signal.Signals(signum).name
    print(f"{name}: interrupted (no checkpoint was being written).", file=sys.stderr)
    sys.stderr.flush()
    os._exit(128 + signum)


def main() -> None:
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _exit_at_once)
    try:
        app()
    except SpecError as error:  # a user error that escaped a command
        for diag in error.diagnostics:
            print(diag.format(), file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # Ctrl-C outside the training loop (e.g. while compiling)
        print("Interrupted.", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
