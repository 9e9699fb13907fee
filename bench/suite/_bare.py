"""The bare endpoint of the one-request workload: the broker's server stack with nothing behind it.

``python -m bench.suite._bare --port N`` serves ``POST /v1/topics/{topic}/records`` with a fixed
produce answer through the same uvicorn (httptools, uvloop when installed) and the same framework
(FastAPI) as ``tidelog serve``, reading the body as the broker does. The ratio of the broker's
requests/s to this one's is the share of one request's cost that is the framework's floor.
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI, Request, Response

_ANSWER = b'{"results":[{"partition":0,"offset":0,"timestamp":0}]}'


def create_app() -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.post("/v1/topics/{topic}/records")
    async def produce(topic: str, request: Request) -> Response:
        await request.body()
        return Response(_ANSWER, media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        create_app(),
        host="127.0.0.1",
        port=args.port,
        http="httptools",
        loop="auto",
        log_level="warning",
        access_log=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
