"""The bank checker on hand-built histories, and the list-append and bank generators."""

from __future__ import annotations

import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from holoload.core.isolation import check
from holoload.core.isolation.bank import BankHistory, FinalState, ViolationKind, check_bank, render_bank_text
from holoload.core.isolation.generate import (
    BankGenerator,
    BankSpec,
    ListAppendGenerator,
    ListAppendSpec,
    ReadAll,
    Transfer,
)
from holoload.core.isolation.history import HistoryBuilder
from holoload.core.ledger.book import WriteOutcome

ACK, FAILED, IN_DOUBT = WriteOutcome.ACKNOWLEDGED, WriteOutcome.FAILED, WriteOutcome.IN_DOUBT
INITIAL = {0: 10, 1: 10, 2: 10}


def history(*transfers: tuple[Transfer, WriteOutcome], reads: tuple[dict[int, int], ...] = ()) -> BankHistory:
    """Transfers one after another (times 10, 20...), then the reads."""
    h = BankHistory()
    now = 0
    for t, outcome in transfers:
        h.transfer(t, outcome, process=0, invoke_ns=now, complete_ns=now + 5)
        now += 10
    for i, balances in enumerate(reads):
        h.read(100 + i, process=1, invoke_ns=now, complete_ns=now + 5, balances=balances)
        now += 10
    return h


def test_a_conserving_history_is_valid() -> None:
    """Reads that sum to the total, every acknowledged transfer logged, balances that add up: valid."""
    h = history(
        (Transfer(1, 0, 1, 3), ACK),
        (Transfer(2, 1, 2, 5), ACK),
        (Transfer(3, 2, 0, 4), FAILED),
        reads=({0: 7, 1: 13, 2: 10}, {0: 7, 1: 8, 2: 15}),
    )
    result = check_bank(h, initial=INITIAL, final=FinalState({0: 7, 1: 8, 2: 15}, [1, 2]))
    assert result.valid and result.counts == {}
    assert result.stats == {
        "transfers": 3,
        "acknowledged": 2,
        "failed": 1,
        "in_doubt": 0,
        "reads": 2,
        "total": 30,
        "in_doubt_applied": 0,
        "in_doubt_not_applied": 0,
        "logged": 2,
    }
    assert render_bank_text(result)[0].startswith("VALID bank: 3 transfers (2 acknowledged, 1 failed, 0 in doubt)")


def test_a_read_off_the_total_is_reported_with_the_transfers_in_flight() -> None:
    """A read summing to 33 is wrong-total; the transfers overlapping it in time come with it."""
    h = BankHistory()
    h.transfer(Transfer(1, 0, 1, 3), ACK, process=0, invoke_ns=0, complete_ns=10)  # before the read
    h.transfer(Transfer(2, 1, 2, 3), ACK, process=0, invoke_ns=15, complete_ns=30)  # overlaps it
    h.transfer(Transfer(3, 2, 0, 1), IN_DOUBT, process=2, invoke_ns=5, complete_ns=12)  # in doubt: may land any time
    h.read(7, process=1, invoke_ns=20, complete_ns=25, balances={0: 7, 1: 16, 2: 10})
    result = check_bank(h, initial=INITIAL)
    assert not result.valid
    assert result.counts == {"wrong-total": 1}
    [violation] = result.violations["wrong-total"]
    assert violation.kind is ViolationKind.WRONG_TOTAL
    assert violation.description.startswith("read 7 sums to 33, not 30 (+3); 2 transfers")
    assert [r.id for r in violation.reads] == [7]
    assert sorted(t.transfer.id for t in violation.transfers) == [2, 3]
    js = orjson.loads(orjson.dumps(result.to_json()))
    assert js["violation_count"] == 1
    assert js["violations"]["wrong-total"][0]["reads"][0]["total"] == 33
    assert js["violations"]["wrong-total"][0]["reads"][0]["balances"] == {"0": 7, "1": 16, "2": 10}


def test_negative_balances_only_when_not_allowed() -> None:
    """A balance below zero is a violation unless overdrafts are allowed."""
    h = history(reads=({0: -2, 1: 22, 2: 10},))
    assert check_bank(h, initial=INITIAL).counts == {"negative-balance": 1}
    assert check_bank(h, initial=INITIAL, allow_negative=True).valid


def test_a_read_with_missing_or_unknown_accounts() -> None:
    """A read-all that lacks account 2 and shows account 9 is wrong-accounts."""
    result = check_bank(history(reads=({0: 10, 1: 10, 9: 10},)), initial=INITIAL)
    assert result.counts == {"wrong-accounts": 1}
    assert "missing accounts [2], unknown accounts [9]" in result.violations["wrong-accounts"][0].description


def test_lost_failed_applied_duplicate_and_unknown_transfers() -> None:
    """The log against the outcomes: acknowledged but absent, failed but present, twice, never run."""
    h = history((Transfer(1, 0, 1, 1), ACK), (Transfer(2, 1, 2, 1), FAILED), (Transfer(3, 2, 0, 1), ACK))
    final = FinalState({0: 10, 1: 10, 2: 10}, [2, 3, 3, 99])
    result = check_bank(h, initial=INITIAL, final=final)
    assert result.counts["lost-transfer"] == 1
    assert result.counts["failed-transfer-applied"] == 1
    assert result.counts["duplicate-transfer"] == 1
    assert result.counts["unknown-transfer"] == 1
    [lost] = result.violations["lost-transfer"]
    assert [t.transfer.id for t in lost.transfers] == [1]
    assert "transfer 3 is in the log 2 times" in result.violations["duplicate-transfer"][0].description


def test_in_doubt_transfers_may_have_applied_or_not() -> None:
    """In-doubt transfers are fine either way; the stats say which way each went."""
    h = history((Transfer(1, 0, 1, 2), IN_DOUBT), (Transfer(2, 1, 2, 3), IN_DOUBT))
    result = check_bank(h, initial=INITIAL, final=FinalState({0: 8, 1: 12, 2: 10}, [1]))
    assert result.valid, result.counts
    assert (result.stats["in_doubt_applied"], result.stats["in_doubt_not_applied"]) == (1, 1)


def test_a_lost_update_shows_as_balance_mismatch_and_a_wrong_final_total() -> None:
    """Two logged transfers out of account 0 but only one debited (read-then-write): the end state says so."""
    h = history((Transfer(1, 0, 1, 2), ACK), (Transfer(2, 0, 2, 3), ACK))
    final = FinalState({0: 7, 1: 12, 2: 13}, [1, 2])  # account 0 should hold 5: the first debit was overwritten
    result = check_bank(h, initial=INITIAL, final=final)
    assert result.counts == {"wrong-total": 1, "balance-mismatch": 1}
    [mismatch] = result.violations["balance-mismatch"]
    assert mismatch.description == (
        "account 0 holds 7, but its initial balance and the 2 logged transfers touching it give 5 (+2)"
    )
    assert sorted(t.transfer.id for t in mismatch.transfers) == [1, 2]
    assert result.violations["wrong-total"][0].description.startswith("the final state sums to 32, not 30")
    text = "\n".join(render_bank_text(result))
    assert "INVALID bank" in text and "balance-mismatch: 1" in text and "transfer 1: 2 from 0 to 1" in text


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32), ops=st.integers(1, 80), accounts=st.integers(2, 6))
def test_a_serial_bank_is_always_valid(seed: int, ops: int, accounts: int) -> None:
    """Generated operations applied one at a time (some failed, some in doubt either way) never violate."""
    spec = BankSpec(accounts=accounts, initial_balance=5, max_amount=4, read_every=3)
    rng = random.Random(seed)
    gen = BankGenerator(spec, rng)
    balances, logged, h, now = spec.initial(), [], BankHistory(), 0
    for _ in range(ops):
        op = gen.next_op()
        now += 10
        if isinstance(op, ReadAll):
            h.read(op.id, process=1, invoke_ns=now, complete_ns=now + 1, balances=balances)
            continue
        outcome = rng.choice([ACK, ACK, ACK, FAILED, IN_DOUBT])
        applies = outcome is ACK or (outcome is IN_DOUBT and rng.random() < 0.5)
        if balances[op.src] < op.amount:
            outcome, applies = FAILED, False  # insufficient funds: aborted
        if applies:
            balances[op.src] -= op.amount
            balances[op.dst] += op.amount
            logged.append(op.id)
        h.transfer(op, outcome, process=0, invoke_ns=now, complete_ns=now + 1)
    result = check_bank(h, initial=spec.initial(), final=FinalState(dict(balances), logged))
    assert result.valid, result.counts


def test_bank_generator_is_seeded_with_distinct_accounts_and_periodic_reads() -> None:
    """Same seed, same operations; src != dst; every 4th a read-all; ids from start by step."""
    spec = BankSpec(accounts=3, max_amount=7, read_every=4)
    gen1, gen2 = BankGenerator(spec, random.Random(9), id_start=2, id_step=5), BankGenerator(spec, random.Random(9))
    ops1 = [gen1.next_op() for _ in range(400)]
    ops2 = [gen2.next_op() for _ in range(400)]
    same_seed = BankGenerator(spec, random.Random(9), id_start=2, id_step=5)
    assert [same_seed.next_op() for _ in range(400)] == ops1
    assert [type(o) for o in ops1] == [type(o) for o in ops2]  # ids differ, choices do not
    assert [o.id for o in ops1] == list(range(2, 2 + 5 * 400, 5))
    assert all(isinstance(o, ReadAll) == (i % 4 == 3) for i, o in enumerate(ops1))
    transfers = [o for o in ops1 if isinstance(o, Transfer)]
    assert all(t.src != t.dst and 1 <= t.amount <= 7 for t in transfers)
    assert {(t.src, t.dst) for t in transfers} == {(s, d) for s in range(3) for d in range(3) if s != d}
    with pytest.raises(ValueError, match="at least 2 accounts"):
        BankSpec(accounts=1)


def test_list_append_generator_values_unique_keys_retired() -> None:
    """Values unique (start, step); 1-3 ops; a key takes at most writes_per_key appends, then is retired."""
    spec = ListAppendSpec(keys=3, min_ops=1, max_ops=3, read_share=0.4, writes_per_key=5)
    gen = ListAppendGenerator(spec, random.Random(4), value_start=3, value_step=2)
    txns = [gen.next_txn() for _ in range(300)]
    assert all(1 <= len(t) <= 3 for t in txns)
    appends = [op for t in txns for op in t if op[0] == "append"]
    values = [op[2] for op in appends]
    assert values == list(range(3, 3 + 2 * len(values), 2))
    per_key: dict[int, int] = {}
    for op in appends:
        per_key[op[1]] = per_key.get(op[1], 0) + 1
    assert max(per_key.values()) == 5
    assert len(per_key) > 3  # keys were retired and replaced
    assert all(op[2] is None for t in txns for op in t if op[0] == "r")
    again = ListAppendGenerator(spec, random.Random(4), value_start=3, value_step=2)
    assert [again.next_txn() for _ in range(300)] == txns  # seeded: the same transactions


def test_generated_list_append_run_serially_is_valid() -> None:
    """Generated transactions applied one at a time (each read sees the lists then) check as serializable."""
    gen = ListAppendGenerator(ListAppendSpec(keys=4, writes_per_key=10), random.Random(1))
    lists: dict[int, list[int]] = {}
    b = HistoryBuilder()
    for i in range(500):
        ops = gen.next_txn()
        t = b.invoke(i % 3, 2 * i, ops)
        done = []
        for op in ops:
            if op[0] == "append":
                lists.setdefault(op[1], []).append(op[2])
                done.append(op)
            else:
                done.append(("r", op[1], tuple(lists.get(op[1], ()))))
        b.complete(t, "ok", 2 * i + 1, done)
    result = check(b.build(), "strict-serializable")
    assert result.valid is True and result.counts == {}
