"""Clustered mode: membership, the controller, leadership and replication over a PostgreSQL catalog.

See docs/cluster.md. Modules: ``manager`` (``ClusterManager``: heartbeats, the controller loop,
leader and follower roles, the replica fetchers, the hooks the Broker calls), ``controller`` (the
controller's decisions, pure), ``placement`` (replica placement), ``http`` (the internal replication
endpoints and the answer to a request for a partition led elsewhere), ``hooks`` (what the Broker
sees), ``errors``. Nothing is imported here, so ``app.broker`` can import ``app.cluster.hooks``.
"""
