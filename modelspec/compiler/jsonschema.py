"""The JSON Schema of a spec file, for editors (`# yaml-language-server: $schema=...`).

Generated from the pydantic models (field docstrings become descriptions). Two things
the validation models can't express directly are patched in: a `model.layers` item may
also be a block use (`type:` naming a block), and `extends:` is allowed at the top.
"""

from __future__ import annotations

from typing import Any, get_args

from modelspec.schema.layers import LAYER_TYPES
from modelspec.schema.spec import Spec
from modelspec.schema.stacks import RematPolicy

BLOCK_USE = {
    "title": "BlockUse",
    "description": "Use of a block defined under `blocks:`: `type` is the block name; other "
    "keys are its arguments. `repeat: N` chains N copies; a list of mappings gives "
    "per-repetition arguments.",
    "type": "object",
    "properties": {
        "type": {"type": "string", "description": "Name of a block from `blocks:`."},
        "name": {"type": "string", "description": "Name of this use; refers to its output."},
        "inputs": {
            "description": "Inputs of the block (default: the previous layer).",
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}},
                {"type": "object", "additionalProperties": {"type": "string"}},
            ],
        },
        "repeat": {
            "description": "Number of chained copies, or per-copy arguments.",
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "array", "items": {"type": "object"}, "minItems": 1},
            ],
        },
        "trainable": {"type": "boolean"},
        "scan": {
            "type": "boolean",
            "description": "Run the copies as one jax.lax.scan over stacked variables "
            "(default: true when repeat >= 4 and the copies allow it).",
        },
        "remat": {
            "enum": list(get_args(RematPolicy)),
            "description": "Rematerialization of each copy (default: model.remat).",
        },
    },
    "required": ["type"],
    "additionalProperties": True,
}


def spec_json_schema() -> dict[str, Any]:
    schema = Spec.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "modelspec"
    defs = schema.setdefault("$defs", {})
    defs["BlockUse"] = BLOCK_USE
    BLOCK_USE["properties"]["type"]["not"] = {"enum": list(LAYER_TYPES)}
    layers = defs["ModelSpec"]["properties"]["layers"]
    layers["items"] = {"anyOf": [layers["items"], {"$ref": "#/$defs/BlockUse"}]}
    # A file that `extends` another is an overlay: its sections may be partial.
    model_def = defs["ModelSpec"]
    overlay = {k: v for k, v in model_def.items() if k != "required"}
    overlay["title"] = "ModelOverlay"
    defs["ModelOverlay"] = overlay
    required = schema.pop("required", [])
    schema["properties"]["model"] = {"$ref": "#/$defs/ModelOverlay", "description": "The network."}
    schema["if"] = {"required": ["extends"]}
    schema["else"] = {"required": required, "properties": {"model": {"$ref": "#/$defs/ModelSpec"}}}
    schema["properties"]["extends"] = {
        "description": "Base spec file(s) to deep-merge under this one (lists are replaced).",
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
    }
    return schema
