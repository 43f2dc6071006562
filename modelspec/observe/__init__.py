"""What a user looks at besides the training logs: CI annotations of `check`'s errors,
the layer-graph picture (`modelspec graph`) and the loss/metric curves of runs
(`modelspec plot`, and `curves.png` at the end of `train`).

Import rule: pure Python on top of `modelspec.errors`, `modelspec.schema` and the
light `modelspec.compiler` modules, never JAX; matplotlib (the optional `plot` extra)
and the graphviz `dot` binary are used only inside the functions that draw, and only
when present.
"""
