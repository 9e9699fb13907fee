"""Clustered mode: membership, the controller, leadership and replication over a PostgreSQL catalog.

See docs/cluster.md. Modules, along Kafka's own components: ``manager`` (``ClusterManager``: wires
the others, the metadata loop that moves each replica into its role, the Broker's replication
seam ``app.broker.replication.Replication``), ``lifecycle`` (registration, heartbeats, fencing,
KIP-112), ``controller_loop`` (the controller's pass and reassignment) around ``controller`` (its
decisions, pure), ``partition`` (a replica's state as leader or follower, the Broker's checks),
``fetcher`` (the replica fetchers), ``state`` (what they share), ``replica`` (one replica's fields),
``placement`` (replica placement), ``forward`` (a produce sent on to the leader), ``http`` (the
internal replication endpoints and the answer to a request for a partition led elsewhere),
``errors``. Nothing is imported here.
"""
