"""Sharding, in one place: the plan (`plan`: pure Python — the mesh from the spec,
logical-axis rules, each parameter's partition spec, per-device bytes; used by
`summary --mesh` without devices), the mesh and processes (`mesh`: devices, the JAX
mesh, multi-process start-up, batch and state placement) and the activation
constraints traced inside layers (`constraints`).

Import rule: importing this package imports nothing; `plan` never imports JAX, so the
light commands can use it. `mesh` and `constraints` import JAX and `plan`.
"""
