"""The `distribution` section: a device mesh and logical-axis rules."""

from __future__ import annotations

from pydantic import Field, field_validator

from modelspec.schema.base import SpecModel


class DistributionSpec(SpecModel):
    """Where parameters and batches live. Default: every device on the `data` axis."""

    mesh: dict[str, int] = Field(default_factory=lambda: {"data": -1})
    """Mesh axis name -> size; one axis may be -1 (the remaining devices)."""
    rules: dict[str, str | list[str] | None] = Field(default_factory=dict)
    """Logical axis name (as carried by parameters: batch, embed, mlp, heads, kv,
    vocab, conv_in, conv_out...) -> mesh axis or axes (null = replicated). Merged
    over the built-in defaults."""

    @field_validator("mesh")
    @classmethod
    def _sizes(cls, mesh: dict[str, int]) -> dict[str, int]:
        if not mesh:
            raise ValueError("the mesh needs at least one axis, e.g. {data: -1}")
        bad = {k: v for k, v in mesh.items() if v == 0 or v < -1}
        if bad:
            raise ValueError(f"mesh sizes must be positive or -1; received {bad}")
        if sum(1 for v in mesh.values() if v == -1) > 1:
            raise ValueError("at most one mesh axis may be -1")
        return mesh
