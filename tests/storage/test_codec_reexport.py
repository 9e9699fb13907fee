"""storage re-exports the client distribution's record batch codec and keeps its error tree whole."""

from __future__ import annotations

import pytest

import storage
import storage.records
import tidelog._codec as codec
from storage import errors


def test_storage_names_are_the_codecs_objects() -> None:
    for name in storage.records.__all__:
        assert getattr(storage.records, name) is getattr(codec, name), name
    for name in ("decode_batch", "encode_batch", "iter_batches", "RecordIn", "Record", "Compression"):
        assert getattr(storage, name) is getattr(codec, name), name


def test_a_codec_error_is_a_storage_error() -> None:
    with pytest.raises(errors.StorageError):
        storage.decode_batch(b"\x00" * 10)
    with pytest.raises(errors.CorruptRecordError):
        storage.decode_batch(b"\x00" * 10)
    assert issubclass(errors.RecordTooLargeError, errors.InvalidRecordError)
    assert issubclass(errors.OffsetOutOfRangeError, codec.CodecError)
    for name in ("CorruptRecordError", "InvalidRecordError", "UnsupportedCompressionError"):
        assert getattr(errors, name) is getattr(codec, name)
        assert issubclass(getattr(errors, name), errors.StorageError)
