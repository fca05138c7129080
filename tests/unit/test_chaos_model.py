"""The [[chaos]] model for sustained load: triggers, heals, validation, and the seeded firing plan."""

from __future__ import annotations

import random
import re

import pytest

from holoload.core.errors import ScenarioError
from holoload.core.ledger.intervals import IntervalSet
from holoload.core.model.chaos import MAX_FIRINGS, ChaosAction, firings, resolve_node, split_key
from holoload.core.model.scenario import parse_scenario
from holoload.engine.ledgers import Pulse

LOAD = """
name = "t"
[[phases]]
name = "main"
duration = "10s"
[[phases.workloads]]
name = "w"
executor = "constant-concurrency"
concurrency = 1
[[phases.workloads.ops]]
name = "q"
sql = "SELECT 1"
"""


def action(**fields: object) -> ChaosAction:
    return ChaosAction.model_validate({"name": "a", **fields})


def test_every_plans_seeded_firings_within_the_horizon_with_bounded_jitter() -> None:
    a = action(action="split", every="10s", jitter="2s", key="last_acked + 1")
    plan = list(firings(a, 100.0, random.Random(1)))
    again = list(firings(a, 100.0, random.Random(1)))
    assert plan == again  # the same seed plans the same run
    assert plan[0].offset_s == 10.0  # first firing one interval in
    gaps = [b.offset_s - x.offset_s for x, b in zip(plan, plan[1:], strict=False)]
    assert all(8.0 <= g <= 12.0 for g in gaps)
    assert len(set(gaps)) > 1  # jitter really varies
    assert all(f.offset_s < 100.0 for f in plan)
    assert [f.index for f in plan] == list(range(1, len(plan) + 1))


def test_every_respects_start_count_and_the_firing_cap() -> None:
    a = action(action="split", every="1s", start="0s", count=3, key=5)
    assert [f.offset_s for f in firings(a, None, random.Random(0))] == [0.0, 1.0, 2.0]
    unbounded = action(action="split", every="1ms", key=5)
    assert len(list(firings(unbounded, None, random.Random(0)))) == MAX_FIRINGS


def test_flip_flop_faults_carry_their_heal_time() -> None:
    kill = action(action="kill", node="node2", every="20s", duration="5s")
    plan = list(firings(kill, 61.0, random.Random(0)))
    assert [(f.offset_s, f.heal_after_s) for f in plan] == [(20.0, 5.0), (40.0, 5.0), (60.0, 5.0)]
    assert kill.heal == "start"
    assert action(action="pause", node=1, at="1s").heal == "resume"
    assert action(action="split", at="1s", key=1).heal is None


def test_at_past_the_horizon_never_fires() -> None:
    a = action(action="sql", sql="SELECT 1", at="30s")
    assert list(firings(a, 10.0, random.Random(0))) == []
    assert len(list(firings(a, None, random.Random(0)))) == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"action": "split", "key": 1}, "give a trigger"),
        ({"action": "split", "key": 1, "at": "1s", "every": "2s"}, "at most one of at, every"),
        ({"action": "split", "key": 1, "at": "1s", "after_batch": 1}, "do not combine"),
        ({"action": "kill", "at": "1s"}, "needs node"),
        ({"action": "split", "key": 1, "at": "1s", "duration": "2s"}, "duration applies to faults"),
        ({"action": "kill", "node": 2, "every": "10s", "duration": "10s"}, "duration must end before"),
        ({"action": "split", "key": 1, "every": "2s", "jitter": "2s"}, "jitter"),
        ({"action": "split", "key": 1, "at": "1s", "jitter": "1s"}, "only apply with every"),
        ({"action": "net", "node": 1, "at": "1s"}, "needs a [chaos.net] table"),
        ({"action": "net", "node": 1, "at": "1s", "net": {}}, "at least one of"),
        ({"action": "command", "at": "1s", "command": "echo hi"}, "needs shell = true"),
        ({"action": "split", "at": "1s", "key": "last_acked * 2"}, "last_acked + N"),
        ({"action": "split", "key": 1, "after_iterations": 5}, "go together"),
    ],
)
def test_bad_actions_say_what_is_wrong(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        action(**fields)


def test_net_bandwidth_reads_sizes_per_second() -> None:
    a = action(action="net", node="node3", at="1s", net={"bandwidth": "256KiB/s", "latency": "20ms"})
    assert a.net is not None and a.net.bandwidth == 256 * 1024 and a.net.latency == pytest.approx(0.02)


def test_split_keys_parse() -> None:
    assert split_key(7).literal == 7
    assert split_key("last_acked + 1").after_last_acked == 1
    assert split_key("last_acked").after_last_acked == 0
    assert split_key("random_recent").random_recent
    assert split_key("auto").auto


def test_nodes_resolve_by_name_or_1_based_index() -> None:
    names = ["node1", "node2", "node3"]
    assert resolve_node("node2", names) == 1
    assert resolve_node(3, names) == 2
    assert resolve_node("3", names) == 2
    assert resolve_node(4, names) is None
    assert resolve_node("db9", names) is None


def test_load_scenarios_take_chaos_with_load_triggers_and_check_names() -> None:
    ok = LOAD + '[[chaos]]\nname = "k"\naction = "kill"\nnode = "node2"\nduring = "main"\nat = "2s"\nduration = "3s"\n'
    scenario = parse_scenario(ok, "s.toml")
    assert scenario.enabled_chaos()[0].trigger == "at 2s of phase main"
    for bad, message in [
        ('during = "nope"\nat = "1s"', "during = 'nope' is not a phase"),
        ('after_iterations = 5\nworkload = "zz"', "workload 'zz' is not a workload"),
        ("after_batch = 1", "need \\[\\[batches\\]\\]"),
    ]:
        text = LOAD + f'[[chaos]]\nname = "s"\naction = "split"\nkey = 1\n{bad}\n'
        with pytest.raises(ScenarioError, match=message):
            parse_scenario(text, "s.toml")


def test_gates_name_known_faults_and_phases() -> None:
    base = LOAD + '[[chaos]]\nname = "k"\naction = "split"\nkey = 5\nat = "1s"\n'
    parse_scenario(
        base + '[gates]\ng = "chaos(k).ok >= 1"\nh = "p99(q, during=split) <= 2 * p99(q, phase=main)"\n', "s"
    )
    with pytest.raises(ScenarioError, match="unknown fault 'kk'"):
        parse_scenario(base + '[gates]\ng = "chaos(kk).ok >= 1"\n', "s")
    with pytest.raises(ScenarioError, match="phase=warm: no such phase"):
        parse_scenario(base + '[gates]\ng = "p99(q, phase=warm) <= 1s"\n', "s")
    with pytest.raises(ScenarioError, match="during=kill: no chaos action"):
        parse_scenario(base + '[gates]\ng = "p99(q, during=kill) <= 1s"\n', "s")


def test_canary_chaos_stays_split_and_sql_around_batches() -> None:
    canary = 'name = "c"\n[[batches]]\nlabel = "1k"\nrows = 1000\ncount = 2\n'
    with pytest.raises(ScenarioError, match="a canary supports split and sql"):
        parse_scenario(canary + '[[chaos]]\nname = "k"\naction = "kill"\nnode = 1\nafter_batch = 1\n', "c")
    with pytest.raises(ScenarioError, match="integer or auto"):
        parse_scenario(
            canary + '[[chaos]]\nname = "s"\naction = "split"\nkey = "random_recent"\nafter_batch = 1\n', "c"
        )


def test_interval_set_first_and_last() -> None:
    ids = IntervalSet.from_intervals([(10, 20), (30, 31)])
    assert (ids.first(), ids.last()) == (10, 30)
    assert IntervalSet().last() is None


def test_pulse_times_the_first_success_after_a_heal() -> None:
    pulse = Pulse()
    recovery = pulse.arm("node2", 1_000_000_000)
    assert pulse.armed
    pulse.hit(900_000_000)  # a success from before the heal does not count
    assert pulse.armed and recovery.seconds(3_000_000_000) == pytest.approx(2.0)  # still waiting: time so far
    pulse.hit(1_500_000_000)
    assert not pulse.armed and recovery.seconds(9_000_000_000) == pytest.approx(0.5)
