"""The client commands of ``tidelog``: each a thin layer over the client library."""

from __future__ import annotations

import click

from tidelog._cli.acls import acls
from tidelog._cli.bench import bench
from tidelog._cli.cluster import cluster
from tidelog._cli.connect import connect
from tidelog._cli.consume import consume
from tidelog._cli.credentials import keys, users
from tidelog._cli.groups import groups
from tidelog._cli.produce import produce
from tidelog._cli.quotas import quotas
from tidelog._cli.streams import streams
from tidelog._cli.topics import topics

__all__ = ["register"]


def register(main: click.Group) -> None:
    """Add the client commands to the ``tidelog`` group."""
    for command in (
        topics, produce, consume, groups, bench, cluster, streams, keys, users, acls, quotas, connect
    ):
        main.add_command(command)
