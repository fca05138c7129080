"""How a phase's load is split across worker processes: exact totals, disjoint ids."""

from __future__ import annotations

import itertools

import pytest

from holoload.core.model.scenario import RunSettings, Scenario
from holoload.core.model.workload import Phase
from holoload.core.pacing.generators import SeqAllocator
from holoload.core.stats.window import Aggregator
from holoload.engine.ledgers import LedgerBook
from holoload.engine.phase_runs import RunBuilder, writer_counts
from holoload.shell.jobs import AUTO_ONE_PROCESS_CPUS, resolve_workers

NAMES = ("node1", "node2", "node3")


def phase(workload: dict[str, object]) -> Phase:
    op = {"name": "q", "sql": "SELECT 1"}
    return Phase.model_validate({"name": "p", "duration": "1s", "workloads": [{"name": "w", "ops": [op], **workload}]})


def builder(index: int, count: int) -> RunBuilder:
    return RunBuilder(
        NAMES,
        ["postgresql://x"] * 3,
        RunSettings(),
        None,
        Aggregator(0),
        LedgerBook(shared=False),
        share=(index, count),
    )


WORKLOADS = [
    {"executor": "constant-concurrency", "concurrency": 5},
    {"executor": "constant-rate", "rate": 100, "max_inflight": 7},
    {"executor": "iterations", "iterations": 1001, "concurrency": 4},
    {"executor": "constant-concurrency", "concurrency": 3, "endpoints": {"node1": 3, "node3": 1}},
    {"executor": "ramping-concurrency", "stages": [{"duration": "1s", "target": 4}]},
]


@pytest.mark.parametrize("workload", WORKLOADS)
@pytest.mark.parametrize("count", [1, 2, 3, 4, 8])
def test_worker_shares_add_up_to_the_single_process_split_exactly(workload: dict[str, object], count: int) -> None:
    p = phase(workload)
    totals = writer_counts(p.workloads[0], NAMES)
    slots_seen: list[list[int]] = [[] for _ in NAMES]
    iterations = 0
    for index in range(count):
        (run,), writers = builder(index, count).build(p)
        plan = run.plan
        assert plan.totals == totals
        for endpoint in range(len(NAMES)):
            assert len(plan.writers[endpoint]) == len(plan.slots(endpoint))
            slots_seen[endpoint] += plan.slots(endpoint)
        assert len(writers) == sum(len(ws) for ws in plan.writers)
        iterations += run.remaining or 0
    assert [sorted(s) for s in slots_seen] == [list(range(t)) for t in totals]
    if p.workloads[0].iterations is not None:
        assert iterations == p.workloads[0].iterations


@pytest.mark.parametrize("parts", [2, 3, 8])
def test_worker_seq_partitions_never_hand_out_the_same_id(parts: int) -> None:
    allocators = [SeqAllocator.partition(1, parts, i, block=100) for i in range(parts)]
    seen: set[int] = set()
    for allocator in itertools.islice(itertools.cycle(allocators), 200):
        block = allocator.take_block()
        assert seen.isdisjoint(block)
        seen.update(block)
    assert len(seen) == 200 * 100


def scenario(workers: object, concurrency: int, endpoints: dict[str, float] | None = None) -> Scenario:
    workload = {"name": "w", "executor": "constant-concurrency", "concurrency": concurrency, "endpoints": endpoints}
    workload["ops"] = [{"name": "q", "sql": "SELECT 1"}]
    return Scenario.model_validate(
        {"name": "s", "run": {"workers": workers}, "phases": [{"name": "p", "duration": "1s", "workloads": [workload]}]}
    )


def test_auto_workers_is_one_per_cpu_but_never_more_than_the_busiest_phase_has_connections() -> None:
    assert resolve_workers(scenario("auto", 4), NAMES, cpus=64) == 12  # 4 per endpoint on 3 endpoints
    assert resolve_workers(scenario("auto", 4), NAMES, cpus=4) == 4
    assert resolve_workers(scenario("auto", 4), NAMES, cpus=AUTO_ONE_PROCESS_CPUS) == 1  # the server shares them
    assert resolve_workers(scenario("auto", 4), NAMES, cpus=1) == 1
    assert resolve_workers(scenario("auto", 1, {"node1": 1.0}), NAMES, cpus=64) == 1
    assert resolve_workers(scenario(7, 1), NAMES, cpus=2) == 7  # a count is taken as given
