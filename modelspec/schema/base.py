"""The base of every spec model: strict, immutable, documented.

`extra="forbid"` turns a typo into an error (with a 'Did you mean' from the loader);
`frozen=True` makes specs safe to share and hash; `allow_inf_nan=False` refuses `.inf`,
`.nan` and "Infinity" wherever a number is expected (a field that means infinity says
so with its own type); attribute docstrings become the JSON
Schema descriptions that editors show (read lazily: `field_docs.py`). This package never imports JAX.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from modelspec.schema.field_docs import describe_fields


class SpecModel(BaseModel):
    """Base for all spec sections."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        validate_default=False,
        json_schema_extra=describe_fields,
        allow_inf_nan=False,
    )

    def dump(self) -> dict[str, Any]:
        """Canonical plain-data form: defaults left out, tuples as lists (round-trips)."""
        return self.model_dump(mode="json", exclude_unset=True, by_alias=True)


PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
UnitInterval = Annotated[float, Field(ge=0, lt=1)]
"""A rate in [0, 1), e.g. dropout."""
