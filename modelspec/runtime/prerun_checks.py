"""Checks a spec's training setup must pass before step 1, once the session (data,
objective) exists: mistakes Keras would only warn about, or find an hour in, are reported
here, positioned in the spec, before anything runs.

A loop-level module: it reads the session, so the callback implementations
(`callbacks`) stay free of it and nothing in the runtime packages imports upward.
"""

from __future__ import annotations

from modelspec.compiler.checked import CheckedSpec
from modelspec.errors import Diagnostic, SpecError, did_you_mean
from modelspec.runtime.session import Session, optimizer_spec


def check_callbacks(spec: CheckedSpec, session: Session) -> None:
    """Before step 1: every monitored name must be logged (Keras would only warn and
    never act), and a callback that rescales the learning rate (ReduceLROnPlateau) needs
    a constant one (as in Keras)."""
    names = ["loss", *(k for k in session.objective.init_metrics() if k != "loss")]
    has_val = session.data.validation is not None
    logged = names + ([f"val_{n}" for n in names] if has_val else [])
    errors = []
    for i, cb in enumerate(spec.train.callbacks):
        # ModelCheckpoint reads `monitor` only with save_best_only (as in Keras)
        monitor = getattr(cb, "monitor", None) if getattr(cb, "save_best_only", True) else None
        at = ("train", "callbacks", i)
        if monitor is not None and monitor not in logged:
            hint = did_you_mean(monitor, logged) or "Logged: " + ", ".join(logged) + "."
            if monitor.startswith("val_") and not has_val:
                hint = "There is no validation data: set data.validation_split or data.validation."
            errors.append(
                Diagnostic.at(
                    spec.locate(at),
                    (*at, "monitor"),
                    f"{cb.type} monitors '{monitor}', which is never logged",
                    received=f"monitor={monitor!r}",
                    hint=hint,
                )
            )
        lr = optimizer_spec(spec).learning_rate
        if cb.needs_constant_lr and not isinstance(lr, int | float):
            errors.append(
                spec.error(
                    at,
                    f"{cb.type} needs a constant learning rate, but the "
                    f"optimizer uses a {lr.type} schedule (Keras refuses this too)",
                    hint="Use a number for optimizer.learning_rate, or drop the callback.",
                )
            )
        if cb.sets_lr and isinstance(lr, int | float) and lr == 0:
            errors.append(
                spec.error(
                    at,
                    f"{cb.type} sets the learning rate as a multiple of the optimizer's, "
                    "which is 0",
                    hint="Give optimizer.learning_rate a non-zero number (the schedule "
                    "replaces it from the first epoch).",
                )
            )
    if errors:
        raise SpecError(errors)
