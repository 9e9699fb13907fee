"""The client's sans-I/O core: protocol state and decisions, no sockets, no threads, no event loop.

What to send, what an answer means, whether and when to try again, where a partition's requests go,
what a producer's batches hold and what is in flight, where a group member stands in a rebalance:
plain code over plain data, tested without a broker. The sync and async shells (``tidelog._client``,
``_producer``, ``_consumer``, ``_async_consumer``, ``_sse``) only move bytes and wait, each in its own
way (threads and ``time.sleep``, or tasks and ``asyncio.sleep``), so the two APIs cannot drift.

    credentials  ``api_key`` / ``token`` / Basic ``username`` + ``password`` / ``auth`` → one httpx.Auth
    connection   answer decoding, transport error translation, retry decisions, leader routing
    session      what ``Client`` and ``AsyncClient`` share (options, credentials, request building)
    member       the consumer-group member's state machine (join, heartbeats, rebalances, commits)
    producer     the producer's accumulator, in-flight bookkeeping, sequences, failure decisions
    reader       a partition reader's position (start, fetch answers, out of range)
    stream       an SSE stream's resume state (cursor, reconnects and their backoff, max_records)
    (``tidelog._api`` builds every request as a ``Call``: method, path, query, body, how to read it)
"""
