"""The sync and async clients are the same API, method for method: names, parameters, defaults.

Each async class must have every public method and attribute of its sync twin with the same
parameters (names, kinds, defaults), awaitable where the sync one does I/O. The only differences are
the ones Python's protocols impose (``close``/``aclose`` of a client, ``__iter__``/``__aiter__``,
``__enter__``/``__aenter__``), and those listed in ``DIFFERENCES`` with their reason.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import tidelog

PAIRS = [
    (tidelog.Client, tidelog.AsyncClient),
    (tidelog.Producer, tidelog.AsyncProducer),
    (tidelog.Consumer, tidelog.AsyncConsumer),
    (tidelog.PartitionReader, tidelog.AsyncPartitionReader),
    (tidelog.Admin, tidelog.AsyncAdmin),
]
PROTOCOL = {"close": "aclose", "__iter__": "__aiter__", "__enter__": "__aenter__", "__exit__": "__aexit__"}
#: (class, name): why the async twin differs.
DIFFERENCES = {
    # Resolving "earliest"/"latest" needs a request, which an async property cannot make; it was a
    # coroutine method from the first release, so it stays one.
    ("PartitionReader", "position"): "a property in sync, a coroutine method in async",
}
#: Objects that serve both shells as they are (one class, both protocols).
SHARED = (tidelog.TopicStream, tidelog.GroupStream)


def _public(cls: type) -> dict[str, Any]:
    protocol = {*PROTOCOL, *PROTOCOL.values()}
    names = {n for n in dir(cls) if not n.startswith("_")} | {n for n in protocol if hasattr(cls, n)}
    return {n: inspect.getattr_static(cls, n) for n in names}


def _async_name(cls: type, name: str) -> str:
    if name == "close" and cls is tidelog.Client:
        return "aclose"
    return PROTOCOL.get(name, name) if name.startswith("__") else name


def _parameters(member: Any) -> list[tuple[str, Any, Any]]:
    function = member.__func__ if isinstance(member, staticmethod | classmethod) else member
    signature = inspect.signature(function)
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


@pytest.mark.parametrize(("sync", "asynchronous"), PAIRS, ids=[s.__name__ for s, _ in PAIRS])
def test_the_async_twin_has_every_method_with_the_same_parameters(sync: type, asynchronous: type) -> None:
    async_members = _public(asynchronous)
    missing, different = [], []
    for name, member in _public(sync).items():
        if (sync.__name__, name) in DIFFERENCES:
            assert name in async_members, name
            continue
        twin_name = _async_name(sync, name)
        if twin_name not in async_members:
            missing.append(name)
            continue
        twin = async_members[twin_name]
        if inspect.isfunction(member) and twin_name not in ("__aiter__", "__aexit__"):
            assert inspect.isfunction(twin), f"{asynchronous.__name__}.{twin_name} is not a method"
            if _parameters(member) != _parameters(twin):
                different.append((name, _parameters(member), _parameters(twin)))
        elif isinstance(member, property):
            assert isinstance(twin, property | type(member)), f"{asynchronous.__name__}.{twin_name}"
    assert missing == [], f"{asynchronous.__name__} lacks {missing}"
    assert different == []


@pytest.mark.parametrize(("sync", "asynchronous"), PAIRS, ids=[s.__name__ for s, _ in PAIRS])
def test_what_does_io_in_sync_is_awaitable_in_async(sync: type, asynchronous: type) -> None:
    # Methods that only read local state stay plain in both (assignment(), position(), producer() ...).
    for name, member in _public(sync).items():
        twin = inspect.getattr_static(asynchronous, _async_name(sync, name), None)
        if not inspect.isfunction(member) or not inspect.isfunction(twin) or name.startswith("__"):
            continue
        if inspect.iscoroutinefunction(twin) or inspect.isasyncgenfunction(twin):
            continue
        source = inspect.getsource(member)
        assert "self._client.call(" not in source and "self.call(" not in source, (
            f"{asynchronous.__name__}.{name} is plain but {sync.__name__}.{name} sends requests"
        )


def test_the_stream_classes_serve_both_shells() -> None:
    for cls in SHARED:
        assert hasattr(cls, "__iter__") and hasattr(cls, "__aiter__")
