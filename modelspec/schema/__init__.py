"""The spec language as pydantic models: every section of a spec file, every layer,
loss, metric, optimizer, schedule, callback and data source, with Keras's names,
arguments and defaults. Field docstrings are the user documentation (JSON Schema).

Import rule: `modelspec.schema` imports pydantic and the standard library only — never
JAX, Flax, optax, orbax, numpy-heavy code or another modelspec package except
`modelspec.errors` — so `check`, `summary`, `schema` and `--help` stay light (a test
imports every module here and asserts it).
"""
