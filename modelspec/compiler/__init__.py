"""From a spec file to a model: loading (safe YAML with positions, `extends`, `--set`,
blocks), validation errors, graph resolution, shape inference, the `CheckedSpec`, the
summary and memory estimate, the sharding plan — all pure Python — and, imported only
when a model is built, the Flax NNX layers (`compiler.layers`), the compiled model
(`compiler.model`) and the JAX side of sharding (`compiler.sharding.mesh`,
`compiler.sharding.constraints`).

Import rule: the compiler imports `modelspec.schema` and `modelspec.errors`, never
`modelspec.runtime`; its pure-Python modules never import JAX at module level.
"""
