"""The runtime: everything that needs JAX, grouped by concept.

- `runtime.data`: reading, checking and batching the data (numpy; no JAX).
- `runtime.objective`: losses, metrics and the training objective (pure JAX).
- `runtime.optim`: optimizers, their Keras update rules and learning-rate schedules.
- the flat modules here: the run itself (session, steps, trainer, callbacks,
  checkpoints, logs, inference). Devices, meshes and processes live with the
  sharding plan in `modelspec.compiler.sharding`.

Import rule: the concept packages import `modelspec.schema`, `modelspec.compiler` and
`modelspec.errors` only, never each other's internals beyond what they name below and
never a flat runtime module; the flat modules import the packages. So nothing imports
upward, and a package can be tested without a session.
"""
