"""A run's replicated embedded cluster: primary + streaming standbys, link proxies, chaos control, samplers."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from holoload.adapters.local.cluster import DEFAULT_BASE_PORT, LocalCluster
from holoload.adapters.local.replication import ReplicatedCluster
from holoload.adapters.local.replication_control import LinkProxies, ReplicationControl, link_targets
from holoload.adapters.pg.staleness import StalenessSampler
from holoload.core.model.scenario import Scenario
from holoload.core.model.target import Target, replicated_target
from holoload.shell.jobs import Job, LoadJob


def start_replicated(
    scenario: Scenario,
    default_nodes: int,
    stack: ExitStack,
    job: Job,
    *,
    say: Callable[[str], None],
    log: Callable[..., Any],
    on_stop: Callable[[LocalCluster], None],
    base_port: int | None = None,
) -> Target:
    """Start a primary and streaming-replication standbys; links go through fault proxies when chaos names one.

    Everything started is registered on `stack` (the cluster's stop, then the proxies' close).

    Returns:
        The target: endpoints `primary` (read-write multi-host DSN) and `standby` (prefer-standby).
    """
    shape = scenario.cluster
    nodes = shape.nodes or default_nodes
    mode = "sync" if shape.replication == "sync" else "async"
    links = None
    if link_targets([a.node for a in scenario.enabled_chaos() if a.action == "net"]):
        links = LinkProxies(seed=0)
        stack.callback(links.close)  # after the cluster stopped (the stack unwinds last-in first)
    cluster = ReplicatedCluster(
        nodes,
        replication=mode,
        upstream_port=None if links is None else links.upstream_port,
        log=lambda line: log("cluster", detail=line),
        base_port=base_port or DEFAULT_BASE_PORT,
    )
    stack.callback(on_stop, cluster)
    server = cluster.binaries.describe()
    log("cluster_binaries", server=server)
    through = ", replication links through fault proxies" if links is not None else ""
    shape_text = f"1 primary + {nodes - 1} {mode} standby(s) on 127.0.0.1{through}"
    say(f"starting embedded PostgreSQL cluster ({shape_text}, {server})...")
    started = cluster.start()
    log("cluster_started", nodes=[n.dsn for n in started], replication=mode)
    job.node_control = ReplicationControl(cluster, links, log=lambda line: log("cluster", detail=line))
    if isinstance(job, LoadJob):  # lost ranges name the node that acknowledged them; standbys are sampled
        job.server_names = {f"127.0.0.1:{n.port}": f"node{n.index}" for n in started}
        job.staleness = StalenessSampler(cluster.writer_dsn(), {f"node{n.index}": n.dsn for n in started})
    return replicated_target(cluster.writer_dsn(), cluster.standby_dsn(), mode, nodes)
