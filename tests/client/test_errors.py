"""The client's exception tree mirrors every broker error_code and flags what is retriable."""

from __future__ import annotations

import pytest

import tidelog
from app.error_codes import ErrorCode
from tidelog._errors import ERROR_CLASSES, error_from_response


def test_every_broker_error_code_has_a_class_with_its_status() -> None:
    assert set(ERROR_CLASSES) == {int(code) for code in ErrorCode}
    for code in ErrorCode:
        cls = ERROR_CLASSES[int(code)]
        assert issubclass(cls, tidelog.BrokerError)
        assert cls.status == code.http_status, code.name
        assert cls.__name__ in tidelog.__all__


@pytest.mark.parametrize(
    ("code", "retriable"),
    [
        (42901, True),
        (50303, True),
        (50302, True),
        (40904, True),
        (40401, False),
        (40902, False),
        (42201, False),
    ],
)
def test_retriable_flags(code: int, retriable: bool) -> None:
    error = error_from_response(code // 100, {"error_code": code, "detail": "d", "title": "t"})
    assert error.retriable is retriable
    assert error.error_code == code


def test_problem_json_is_read_into_the_exception() -> None:
    body = {
        "type": "https://tidelog.dev/errors/offset-out-of-range",
        "title": "Offset out of range",
        "status": 416,
        "detail": "offset 99 is past the log end 3",
        "error_code": 41601,
        "log_start_offset": 0,
        "high_watermark": 3,
    }
    error = error_from_response(416, body, retry_after=None)
    assert isinstance(error, tidelog.OffsetOutOfRangeError)
    assert (error.log_start_offset, error.high_watermark) == (0, 3)
    assert error.detail == "offset 99 is past the log end 3"
    assert "41601" in str(error)


def test_unknown_code_falls_back_to_the_status_class_and_retry_after_is_read() -> None:
    error = error_from_response(503, {"error_code": 50399, "detail": "new"}, retry_after="2")
    assert isinstance(error, tidelog.ServiceUnavailableError)
    assert error.retriable and error.retry_after == 2.0
    assert isinstance(error_from_response(418, "teapot"), tidelog.BrokerError)
    assert isinstance(error_from_response(502, None), tidelog.ServerError)


def test_transport_errors_are_retriable_and_the_tree_is_rooted() -> None:
    assert tidelog.ConnectError.retriable and tidelog.TimeoutError.retriable
    assert not tidelog.ProtocolError.retriable
    for name in tidelog.__all__:
        obj = getattr(tidelog, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, tidelog.TidelogError), name
