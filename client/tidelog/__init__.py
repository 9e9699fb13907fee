"""tidelog: the Python client of the tidelog broker, and the ``tidelog`` command.

>>> from tidelog import Client
>>> with Client("http://127.0.0.1:8080") as client:              # doctest: +SKIP
...     client.admin.create_topic("orders", partitions=3)
...     with client.producer() as producer:
...         producer.send("orders", {"id": 1}, key="customer-7")
...     with client.consumer("billing", ["orders"], auto_offset_reset="earliest") as consumer:
...         records = consumer.poll(1000)

The client talks to the broker over HTTP only (``httpx``); ``docs/python-client.md`` has more.

The public names live in ``tidelog._public`` and load on first use (PEP 562), so that importing a
sub-package that needs no HTTP, such as the record batch codec ``tidelog._codec`` that the broker's
log engine uses, does not import httpx and the whole client.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tidelog._public import *  # noqa: F403 - the same names, seen by type checkers at once
    from tidelog._public import __all__ as __all__
else:

    def __getattr__(name: str) -> Any:
        if name.startswith("_") and name != "__all__":
            # a submodule (``from tidelog import _api``) or a dunder: never one of the public names
            raise AttributeError(f"module 'tidelog' has no attribute {name!r}")
        _public = importlib.import_module("tidelog._public")
        if name != "__all__" and name not in _public.__all__:
            raise AttributeError(f"module 'tidelog' has no attribute {name!r}")
        value = getattr(_public, name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        _public = importlib.import_module("tidelog._public")
        return sorted({*globals(), *_public.__all__})
