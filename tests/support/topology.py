"""Topology test data and checks shared by the holoctl table, state and source tests."""

from __future__ import annotations

from holoload.adapters.holofusion.topology_sources import TopologyReading
from holoload.core.topology.model import Topology


def reading_topology(reading: TopologyReading) -> Topology:
    """The topology of a reading that must have succeeded (its error is the failure message)."""
    assert reading.error is None, reading.error
    assert reading.topology is not None
    return reading.topology


# Five nodes, three shards, a draining member without replicas, a move in flight, big counts.
FIVE_NODES = """\
+--------+-----------------+---------------------------------------+----------------------------+------------------------------------------------------+--------------------------------+------------+
| NODE   | NODE_STATE      | ROLE                                  | SHARD                      | RANGE                                                | RECORDS                        | STATE      |
+--------+-----------------+---------------------------------------+----------------------------+------------------------------------------------------+--------------------------------+------------+
| 1      | Active          | leaseholder                           | 1                          | [start, 0x200000000...0000100000)                    | 1,234,567                      |            |
| 1      | Active          | replica                               | 3                          | [0x200000000...0000200000, end)                      | 999                            |            |
| 2      | Active          | replica                               | 1                          | [start, 0x200000000...0000100000)                    | 1,234,567                      |            |
| 2      | Active          | replica                               | 2                          | [0x200000000...0000100000, 0x200000000...0000200000) | 1,048,576                      |            |
| 2      | Active          | replica                               | 3                          | [0x200000000...0000200000, end)                      | 999                            |            |
| 3      | Active          | replica                               | 1                          | [start, 0x200000000...0000100000)                    | 1,234,567                      |            |
| 3      | Active          | leaseholder                           | 2                          | [0x200000000...0000100000, 0x200000000...0000200000) | 1,048,576                      |            |
| 4      | Active          | replica                               | 2                          | [0x200000000...0000100000, 0x200000000...0000200000) | 1,048,576                      |            |
| 4      | Active          | leaseholder                           | 3                          | [0x200000000...0000200000, end)                      | 999                            | in:catchup |
| 5      | Decommissioning | -                                     | -                          | -                                                    | -                              |            |
+--------+-----------------+---------------------------------------+----------------------------+------------------------------------------------------+--------------------------------+------------+
| TOTALS | nodes: 5        | states: Active: 4, Decommissioning: 1 | shards: 3                  | unique: 2,284,142                                    | replicated: 6,852,426          |            |
+--------+-----------------+---------------------------------------+----------------------------+------------------------------------------------------+--------------------------------+------------+
| SPLIT  | attempts: 17    | success: 12                           | failures: 5 (transient: 2) | backoff: 1                                           | attempts_by: load=12, manual=3 |            |
+--------+-----------------+---------------------------------------+----------------------------+------------------------------------------------------+--------------------------------+------------+
"""
