"""A finished run asked for more epochs (issue #12): continued like Keras's
`fit(initial_epoch=done, epochs=new)` when its final weights are the trained ones,
refused with a message otherwise; `spec.yaml` always the spec that ran, with the
earlier ones in `spec_history/<step>.yaml`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from modelspec.runtime.trainer import train

SPEC = """\
name: cont
seed: 0
data:
  train: {type: npz, path: d.npz}
  validation_split: 0.25
  batch_size: 16
model:
  inputs: {x: {shape: [4]}}
  layers:
    - {name: h, type: Dense, units: 8, activation: relu}
    - {name: y, type: Dense, units: 2}
loss: {type: SparseCategoricalCrossentropy, from_logits: true}
metrics: [accuracy]
optimizer: {type: SGD, learning_rate: 0.1}
train: {epochs: 2}
checkpoint: {max_to_keep: null}
"""


def spec_file(tmp_path: Path, extra: str = "") -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    np.savez(tmp_path / "d.npz", x=x, y=(x[:, 0] > 0).astype("int32"))
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC + extra)
    return path


def epochs_in(path: Path) -> int:
    return yaml.safe_load(path.read_text())["train"]["epochs"]


def test_a_finished_run_continues_to_more_epochs_like_keras_initial_epoch(tmp_path, capsys):
    spec, run = spec_file(tmp_path), tmp_path / "run"
    train(spec, run, progress=False)
    continued = train(spec, run, ["train.epochs=4"], progress=True, tty=False)
    out = capsys.readouterr().out
    assert "Continuing the finished run in" in out
    assert "(Keras's fit(initial_epoch=2, epochs=4))" in out
    assert [r["epoch"] for r in continued.epochs] == [1, 2, 3, 4]
    assert [r["step"] for r in continued.epochs] == [3, 6, 9, 12]
    # the same as training 4 epochs at once: the position and the state carry over
    whole = train(spec, tmp_path / "whole", ["train.epochs=4"], progress=False)
    assert continued.epochs == whole.epochs
    # spec.yaml is the spec that ran last; the history names the step each took effect
    assert epochs_in(run / "spec.yaml") == 4
    assert sorted(p.name for p in (run / "spec_history").iterdir()) == ["0.yaml", "6.yaml"]
    assert epochs_in(run / "spec_history" / "0.yaml") == 2
    assert epochs_in(run / "spec_history" / "6.yaml") == 4


def test_a_rerun_that_trains_nothing_leaves_spec_yaml_alone(tmp_path):
    spec, run = spec_file(tmp_path), tmp_path / "run"
    train(spec, run, progress=False)
    before = (run / "spec.yaml").read_text()
    train(spec, run, ["train.epochs=1"], progress=False)  # finished at 2: nothing to run
    assert (run / "spec.yaml").read_text() == before
    assert [p.name for p in (run / "spec_history").iterdir()] == ["0.yaml"]


def test_restored_best_weights_are_not_continued(tmp_path, capsys):
    extra = (
        "  callbacks: [{type: EarlyStopping, monitor: val_loss, patience: 5, "
        "restore_best_weights: true}]\n"
    )
    spec = spec_file(tmp_path, "").read_text().replace("train: {epochs: 2}\n", "")
    path = tmp_path / "spec.yaml"
    path.write_text(spec + "train:\n  epochs: 2\n" + extra)
    run = tmp_path / "run"
    train(path, run, progress=False)
    before = (run / "spec.yaml").read_text()
    again = train(path, run, ["train.epochs=4"], progress=True, tty=False)
    out = capsys.readouterr().out
    assert "finished after epoch 2 and is not continued to train.epochs=4" in out
    assert "EarlyStopping's restored best weights" in out and "Use --restart" in out
    assert len(again.epochs) == 2
    assert (run / "spec.yaml").read_text() == before  # nothing ran under the new spec


def test_a_run_stopped_early_is_not_continued(tmp_path, capsys):
    path = spec_file(tmp_path)
    text = path.read_text().replace(
        "train: {epochs: 2}\n",
        "train:\n  epochs: 6\n  callbacks: [{type: EarlyStopping, monitor: loss, "
        "min_delta: 100, patience: 1}]\n",
    )
    path.write_text(text)
    run = tmp_path / "run"
    first = train(path, run, progress=False)
    assert len(first.epochs) == 2  # no epoch improves the loss by 100
    train(path, run, ["train.epochs=8"], progress=True, tty=False)
    assert "is not continued to train.epochs=8: it stopped early" in capsys.readouterr().out
