"""Dtype policies in the checked spec: positioned errors for policies Keras has but
modelspec refuses, inferred dtypes under a policy (= what runs), the override by
`--set`, and the summary's policy column."""

from __future__ import annotations

import textwrap

import jax
import jax.numpy as jnp
import pytest

from modelspec.compiler.load import load
from modelspec.compiler.model import CompiledModel
from modelspec.compiler.summary import summarize
from modelspec.errors import SpecError
from modelspec.summary_table import render_table

DOC = """\
modelspec: 1
model:
  dtype_policy: {model}
  inputs:
    x: {{shape: [6, 4]}}
    ids: {{shape: [6], dtype: int32}}
  layers:
    - {{type: Dense, units: 4, inputs: x, dtype_policy: {layer}}}
    - {{type: LayerNormalization}}
    - {{type: Embedding, input_dim: 10, output_dim: 4, inputs: ids, name: emb}}
    - {{type: Add, inputs: [layer_normalization, emb]}}
    - {{type: MultiHeadAttention, num_heads: 2, key_dim: 2, inputs: {{query: add, value: add}}}}
    - {{type: Dense, units: 3, dtype_policy: float32, name: head}}
"""


def write(tmp_path, model="mixed_bfloat16", layer="mixed_float16"):
    path = tmp_path / "spec.yaml"
    path.write_text(DOC.format(model=model, layer=layer))
    return path


@pytest.mark.parametrize(
    "model, layer, expected",
    [
        (
            "bfloat16",
            "float32",
            "spec.yaml:3:17: model.dtype_policy: the `bfloat16` dtype policy (variables stored "
            "in bfloat16) is not supported; use `mixed_bfloat16` (float32 variables, bfloat16 "
            "computation). Received: dtype_policy='bfloat16'.",
        ),
        (
            "float32",
            "float16",
            "spec.yaml:8:56: model.layers[0].dtype_policy: the `float16` dtype policy "
            "(variables stored in float16) is not supported; use `mixed_float16`",
        ),
        (
            "float64",
            "float32",
            "spec.yaml:3:17: model.dtype_policy: the `float64` dtype policy is not supported; "
            "use `float32`.",
        ),
        (
            "float32",
            "mixed_bf16",
            "spec.yaml:8:56: model.layers[0].dtype_policy: must be one of 'float32', "
            "'mixed_bfloat16', 'mixed_float16'. Received: dtype_policy='mixed_bf16'. "
            "Did you mean 'mixed_bfloat16'?",
        ),
    ],
)
def test_unsupported_policy_is_a_positioned_error(tmp_path, model, layer, expected):
    with pytest.raises(SpecError) as info:
        load(str(write(tmp_path, model, layer)))
    assert expected in str(info.value)


def test_inferred_dtypes_follow_the_policy_and_equal_what_runs(tmp_path):
    checked = load(str(write(tmp_path)))
    dtypes = {name: shape.output.dtype for name, shape in checked.shapes.items()}
    assert dtypes == {
        "dense": "float16",  # its own policy overrides the model's
        "layer_normalization": "bfloat16",  # float32 inside, output in the compute dtype
        "emb": "bfloat16",
        "add": "bfloat16",
        "multi_head_attention": "bfloat16",
        "head": "float32",  # a float32 head, as Keras's mixed-precision guide advises
    }
    # the variables stay float32 (4 bytes each in summaries and memory estimates)
    model = CompiledModel(checked)
    x = {"x": jnp.ones((2, 6, 4)), "ids": jnp.zeros((2, 6), jnp.int32)}
    out = jax.eval_shape(lambda m, inputs: m(inputs), model, x)
    assert str(out["head"].dtype) == "float32"
    params = jax.tree.leaves(jax.tree.map(lambda v: v.dtype, CompiledModel(checked).layers))
    assert set(map(str, params)) == {"float32"}


def test_set_override_selects_the_policy(tmp_path):
    path = write(tmp_path, "float32", "float32")
    checked = load(str(path), ["model.dtype_policy=mixed_bfloat16"])
    assert checked.model.dtype_policy == "mixed_bfloat16"
    assert checked.shapes["add"].output.dtype == "bfloat16"
    assert load(str(path)).shapes["add"].output.dtype == "float32"


def test_summary_shows_model_policy_and_overrides(tmp_path):
    from rich.console import Console

    data = summarize(load(str(write(tmp_path))))
    assert data["dtype_policy"] == "mixed_bfloat16"
    by_name = {layer["name"]: layer for layer in data["layers"]}
    assert by_name["dense"]["dtype_policy"] == "mixed_float16"
    assert by_name["head"]["dtype_policy"] == "float32"
    table, totals = render_table(data)
    console = Console(width=200, record=True)
    console.print(table)
    text = console.export_text()
    assert "dense (Dense, mixed_float16)" in text and "head (Dense, float32)" in text
    assert "emb (Embedding)" in text  # the model's policy is not repeated per layer
    assert any("Dtype policy: mixed_bfloat16" in line for line in totals)


def test_default_policy_is_float32_and_not_dumped():
    doc = textwrap.dedent(
        """\
        modelspec: 1
        model:
          inputs: {x: {shape: [3]}}
          layers: [{type: Dense, units: 2}]
        """
    )
    import yaml

    checked = load(yaml.safe_load(doc))
    assert checked.model.dtype_policy == "float32"
    assert "dtype_policy" not in checked.spec.dump()["model"]
    assert summarize(checked)["layers"][1]["dtype_policy"] == "float32"
