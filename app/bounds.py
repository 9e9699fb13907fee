"""Integer types of the request models, each with both bounds, so the spec states what the server holds.

The catalog and the record format hold offsets, timestamps and producer ids as int64, partitions,
generations, sequences and timeouts as int32 (as Kafka's protocol does); an integer beyond them used
to reach SQLite or ``struct.pack`` and answer 500. These types make pydantic refuse it first with
422 42204 naming the field, and put ``minimum``/``maximum`` into the OpenAPI spec.

``spec_bounds`` states bounds in the spec only, for values the domain checks with an error code
of its own (partition count 42203, replication factor 42205, session timeout 42207): pydantic's
generic 422 would hide those codes, and Python compares an integer of any size without overflow.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, WithJsonSchema

__all__ = [
    "INT16_MAX",
    "INT32_MAX",
    "INT64_MAX",
    "INT64_MIN",
    "Int32",
    "Int64",
    "NonNegativeInt32",
    "NonNegativeInt64",
    "PositiveInt32",
    "spec_bounds",
]

INT16_MAX = 2**15 - 1
INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

Int32 = Annotated[int, Field(ge=INT32_MIN, le=INT32_MAX)]
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
NonNegativeInt32 = Annotated[int, Field(ge=0, le=INT32_MAX)]
NonNegativeInt64 = Annotated[int, Field(ge=0, le=INT64_MAX)]
PositiveInt32 = Annotated[int, Field(ge=1, le=INT32_MAX)]


def spec_bounds(minimum: int, maximum: int) -> WithJsonSchema:
    """The spec's ``integer`` schema with these bounds, for a value the domain validates itself."""
    return WithJsonSchema({"type": "integer", "minimum": minimum, "maximum": maximum})
