"""Export a model with its trained weights to files that run without modelspec.

`run.export` restores a run's checkpoint (the newest, `--step N`, or fresh weights with
`--untrained`) and hands the session and its state to one format module, loaded by
name from `run.FORMATS` only when that format is asked for, so a missing optional
package (onnx, h5py) concerns only its format:

- `stablehlo`: `jax.export`'s serialized program, its weights (.npz) and a manifest;
  `stablehlo.load_stablehlo` runs it with JAX alone (no Flax, no modelspec model code).
- `onnx`: an ONNX graph for onnxruntime (mobile, web, JVM).
- `keras`: a Keras 3 `.keras` archive.

Every format module has one entry point, `export_<format>(session, state, output) ->
list[Path]` (the files written). Exports cover the device model: a model with host
(text) layers is exported from the host layers' outputs on, with their state written
beside it as JSON.

Import rule: runtime code. It imports `modelspec.compiler`, `modelspec.schema`,
`modelspec.errors` and the flat runtime modules (session, restore, spec_diff), never
`modelspec.cli`; the CLI imports `run` inside its `export` command.
"""
