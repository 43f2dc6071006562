"""ONNX lowerings, one module per layer family (the ONNX side of `schema/layers/`).

Each spec class names its lowering in its `onnx` class variable
("modelspec.compiler.layers.onnx.core:lower_dense"); `graph.py` holds the builder and
documents the lowering signature. Only `modelspec.runtime.export.onnx_export` imports
these modules, so the `onnx` package (the `export` extra) is needed by that format alone.

Import rule: these modules import `onnx`, numpy and `modelspec.schema`; never JAX.
"""
