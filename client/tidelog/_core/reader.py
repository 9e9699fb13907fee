"""A partition reader's position, without I/O: where ``earliest``/``latest``/``-N`` point, what a fetch
answer moves the position to, and where to go when the position falls out of the log.

``PartitionReader`` and ``AsyncPartitionReader`` (like ``kcat -p``, no group) send the offsets and
fetch requests; this decides what they mean.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar, cast

from tidelog._errors import OffsetOutOfRangeError
from tidelog._types import FetchResult, PartitionOffsets, Record

__all__ = ["OUT_OF_RANGE", "ReaderOption", "ReaderState"]

OUT_OF_RANGE = ("earliest", "latest", "error")
T = TypeVar("T")


class ReaderOption(Generic[T]):
    """A reader attribute kept in its ``ReaderState`` (readable and settable, as it always was)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, shell: Any, owner: type | None = None) -> T:
        return cast(T, getattr(shell._state, self.name))

    def __set__(self, shell: Any, value: T) -> None:
        setattr(shell._state, self.name, value)


class ReaderState:
    """One partition's read position and fetch options."""

    def __init__(
        self,
        topic: str,
        partition: int,
        *,
        max_records: int,
        max_bytes: int | None,
        key_format: str | None,
        value_format: str | None,
        header_format: str | None,
        on_out_of_range: str,
    ) -> None:
        if on_out_of_range not in OUT_OF_RANGE:
            raise ValueError("on_out_of_range must be earliest, latest or error")
        self.topic = topic
        self.partition = partition
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.key_format = key_format
        self.value_format = value_format
        self.header_format = header_format
        self.on_out_of_range = on_out_of_range
        self.high_watermark: int | None = None
        self.position: int | None = None

    @staticmethod
    def needs_offsets(offset: int | str) -> bool:
        """Whether resolving ``offset`` needs the partition's offsets (all but a plain offset)."""
        return not (isinstance(offset, int) and offset >= 0)

    @staticmethod
    def resolve(offset: int | str, offsets: PartitionOffsets | None) -> int:
        """The offset ``offset`` names: itself, ``earliest``, ``latest``, or -N (N before the end, as
        kcat's ``-o -N``)."""
        if isinstance(offset, int) and offset >= 0:
            return offset
        if offsets is None:
            raise ValueError(f"resolving {offset!r} needs the partition's offsets")
        if isinstance(offset, int):
            return max(offsets.log_start_offset, offsets.high_watermark + offset)
        if offset == "earliest":
            return offsets.log_start_offset
        if offset == "latest":
            return offsets.high_watermark
        raise ValueError(f"offset must be an int, 'earliest' or 'latest', not {offset!r}")

    def fetch_options(self, timeout_ms: int) -> dict[str, Any]:
        return {
            "max_records": self.max_records,
            "max_bytes": self.max_bytes,
            "max_wait_ms": max(0, int(timeout_ms)),
            "key_format": self.key_format,
            "value_format": self.value_format,
            "header_format": self.header_format,
        }

    def out_of_range(self, error: OffsetOutOfRangeError) -> int | None:
        """Where to go after ``error``: the log start or end it names (None: resolve
        ``on_out_of_range`` with the partition's offsets); raises it again with ``"error"``."""
        if self.on_out_of_range == "error":
            raise error
        return error.log_start_offset if self.on_out_of_range == "earliest" else error.high_watermark

    def fetched(self, position: int, result: FetchResult) -> list[Record]:
        """The records of a fetch from ``position`` to hand out; moves the position past them."""
        self.high_watermark = result.high_watermark
        records = [r for r in result.records if r.offset >= position]
        self.position = max(position, result.next_offset)
        return records

    def at_end(self, records: list[Record]) -> bool:
        """After a poll that returned ``records``: nothing more to read up to the high watermark."""
        return (
            not records
            and self.high_watermark is not None
            and self.position is not None
            and self.position >= self.high_watermark
        )
