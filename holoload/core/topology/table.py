"""holoctl's `topology` ASCII table: render a `Topology` byte for byte, and parse one back.

The layout follows holoctl's `print_ascii_table_with_footer`: a `+---+` border, the header,
a border, one row per (node, shard) replica, a border, the `TOTALS` row, a border, the
`SPLIT` row, a border. Column width is the widest cell counted in UTF-8 bytes, while cells
are padded by characters (Rust `{:width$}`), so every line has the same character length.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence

from holoload.core.topology.model import (
    RECORDS_UNKNOWN,
    Placement,
    SplitHealth,
    Topology,
    any_unknown_records,
    format_count,
)

HEADERS: tuple[str, ...] = ("NODE", "NODE_STATE", "ROLE", "SHARD", "RANGE", "RECORDS", "STATE")
TOTALS = "TOTALS"
SPLIT = "SPLIT"
NO_ROWS_LINE = "no shard responsibilities found"
PARTIAL_SUFFIX = " (partial)"
# holoctl shows only the two most frequent split reasons.
TOP_REASONS = 2

_BORDER_RE = re.compile(r"\+(?:-+\+)+")
_COUNT_RE = re.compile(r"\d{1,3}(?:,\d{3})*|\d+", re.ASCII)
_FAILURES_RE = re.compile(r"failures: (?P<failures>[\d,]+) \(transient: (?P<transient>[\d,]+)\)")


def render_table(
    topology: Topology,
    *,
    node_count: int | None = None,
    states: Mapping[str, int] | None = None,
) -> str:
    """Print `topology` exactly as `holoctl topology` does.

    Placements are printed in the order given (parsers and `parse_state` keep holoctl's
    node-then-shard order). Totals follow holoctl: `unique` sums each shard's leaseholder
    row, `replicated` sums every row, and each gets " (partial)" when a count it needs is
    unknown. The SPLIT footer is left out when `topology.split` is None.

    Args:
        topology: what to print.
        node_count: override for "nodes: N" (default: distinct node ids in the rows).
        states: override for "states: ..." as state -> node count (default: counted from
            the rows, one per node).

    Returns:
        The table text, each line ending in "\\n".
    """
    rows = [
        [p.node_id, p.node_state, p.role, p.shard_id, p.range_text, p.records_text, p.state]
        for p in topology.placements
    ]
    footers = [_totals_row(topology, node_count=node_count, states=states)]
    if topology.split is not None:
        footers.append(_split_row(topology.split))
    if not rows:
        return NO_ROWS_LINE + "\n" + _render_plain(HEADERS, footers)
    return _render_with_footer(HEADERS, rows, footers)


def format_state_counts(counts: Mapping[str, int]) -> str:
    """ "Active: 3, Removed: 1": states in byte order, "-" when there are none."""
    if not counts:
        return "-"
    return ", ".join(f"{state}: {format_count(counts[state])}" for state in sorted(counts))


def format_top_reasons(reasons: Sequence[tuple[str, int]]) -> str:
    """The two most frequent split reasons ("manual=1, load=3"), "-" when there are none."""
    if not reasons:
        return "-"
    ordered = sorted(reasons, key=lambda item: (-item[1], item[0]))[:TOP_REASONS]
    return ", ".join(f"{reason}={format_count(count)}" for reason, count in ordered)


def parse_table(text: str) -> Topology:
    """Parse the output of `holoctl topology` into a `Topology`.

    Accepts `ERR(...)`, `ERR (...)`, `n/a` and `-` record cells, "(partial)" totals, `,`
    thousands separators, any number of nodes, and extra columns (ignored). A table without
    a SPLIT footer gives `split=None`.

    Raises:
        ValueError: the text is not a holoctl topology table; the message names the line.
    """
    lines = text.splitlines()
    numbered = [(i + 1, line) for i, line in enumerate(lines)]
    # Drop blank lines around the table and holoctl's note for a cluster without rows.
    while numbered and (not numbered[0][1].strip() or numbered[0][1].strip() == NO_ROWS_LINE):
        numbered.pop(0)
    while numbered and not numbered[-1][1].strip():
        numbered.pop()
    if not numbered:
        raise ValueError("line 1: empty text is not a holoctl topology table")

    first_no, border = numbered[0]
    if not _BORDER_RE.fullmatch(border):
        raise ValueError(f"line {first_no}: expected a table border like '+------+', got {_clip(border)}")
    bounds = [i for i, ch in enumerate(border) if ch == "+"]
    if len(numbered) < 3:
        raise ValueError(f"line {first_no}: table ends after its first border")

    header_no, header_line = numbered[1]
    header = _split_cells(header_line, header_no, bounds)
    column = _column_index(header, header_no)
    if numbered[2][1] != border:
        raise ValueError(f"line {numbered[2][0]}: expected the border under the header")
    if numbered[-1][1] != border:
        raise ValueError(f"line {numbered[-1][0]}: table does not end with its border")

    placements: list[Placement] = []
    totals: tuple[int, list[str]] | None = None
    split_cells: tuple[int, list[str]] | None = None
    for line_no, line in numbered[3:]:
        if line == border:
            continue
        if line.startswith("+"):
            raise ValueError(f"line {line_no}: border does not match the table's first border")
        cells = _split_cells(line, line_no, bounds)
        first = cells[column["NODE"]]
        if first == TOTALS:
            totals = (line_no, cells)
        elif first == SPLIT:
            split_cells = (line_no, cells)
        elif totals is not None or split_cells is not None:
            raise ValueError(f"line {line_no}: placement row after the footer rows")
        else:
            placements.append(_placement(cells, column, line_no))

    if totals is None:
        raise ValueError(f"line {numbered[-1][0]}: no TOTALS footer row before the end")
    partial = _totals_partial(*totals)
    split = None if split_cells is None else _parse_split(*split_cells)
    try:
        return Topology(tuple(placements), split, partial=partial or any_unknown_records(placements))
    except ValueError as exc:
        raise ValueError(f"line {header_no + 2}..{numbered[-1][0]}: {exc}") from None


# --- rendering ---------------------------------------------------------------------------


def _totals_row(topology: Topology, *, node_count: int | None, states: Mapping[str, int] | None) -> list[str]:
    if states is None:
        counted: dict[str, int] = {}
        for state in topology.node_states.values():
            counted[state] = counted.get(state, 0) + 1
        states = counted
    nodes = len(topology.node_ids) if node_count is None else node_count
    unique, unique_complete = _leaseholder_total(topology)
    replicated = topology.replicated_records
    replicated_complete = not (topology.partial or any_unknown_records(topology.placements))
    return [
        TOTALS,
        f"nodes: {format_count(nodes)}",
        f"states: {format_state_counts(states)}",
        f"shards: {format_count(topology.shard_count)}",
        f"unique: {_total(unique, unique_complete)}",
        f"replicated: {_total(replicated, replicated_complete)}",
        "",
    ]


def _leaseholder_total(topology: Topology) -> tuple[int, bool]:
    """holoctl's "unique": each shard's leaseholder count; incomplete when one is unknown.

    A shard without any leaseholder row (e.g. a PostgreSQL partition layout) counts its
    first row with a number instead, as `Topology.unique_records` does.
    """
    total = 0
    complete = True
    for shard_id in topology.shard_ids:
        rows = topology.for_shard(shard_id)
        chosen = next((p for p in rows if p.is_leaseholder), None)
        if chosen is None:
            chosen = next((p for p in rows if p.records is not None), None)
        if chosen is None or chosen.records is None:
            complete = False
        else:
            total += chosen.records
    return total, complete


def _total(value: int, complete: bool) -> str:
    return format_count(value) if complete else format_count(value) + PARTIAL_SUFFIX


def _split_row(split: SplitHealth) -> list[str]:
    return [
        SPLIT,
        f"attempts: {format_count(split.attempts)}",
        f"success: {format_count(split.successes)}",
        f"failures: {format_count(split.failures)} (transient: {format_count(split.transient)})",
        f"backoff: {format_count(split.backoff)}",
        f"attempts_by: {format_top_reasons(split.attempts_by)}",
        "",
    ]


def _widths(headers: Sequence[str], *groups: Sequence[Sequence[str]]) -> list[int]:
    # Rust's str::len() is the UTF-8 byte length.
    widths = [_byte_len(h) for h in headers]
    for group in groups:
        for row in group:
            for idx, cell in enumerate(row):
                if idx >= len(widths):
                    widths.append(_byte_len(cell))
                else:
                    widths[idx] = max(widths[idx], _byte_len(cell))
    return widths


def _byte_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    # Rust's `{:width$}` pads by characters, not bytes.
    parts = ["|"]
    for idx, width in enumerate(widths):
        cell = cells[idx] if idx < len(cells) else ""
        parts.append(f" {cell}{' ' * max(0, width - len(cell))} |")
    return "".join(parts) + "\n"


def _separator(widths: Sequence[int]) -> str:
    return "+" + "".join("-" * (w + 2) + "+" for w in widths) + "\n"


def _render_with_footer(headers: Sequence[str], rows: Sequence[Sequence[str]], footers: Sequence[Sequence[str]]) -> str:
    widths = _widths(headers, rows, footers)
    sep = _separator(widths)
    out = [sep, _line(headers, widths), sep]
    out.extend(_line(row, widths) for row in rows)
    out.append(sep)
    for footer in footers:
        out.extend((_line(footer, widths), sep))
    return "".join(out)


def _render_plain(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = _widths(headers, rows)
    sep = _separator(widths)
    return "".join([sep, _line(headers, widths), sep, *(_line(r, widths) for r in rows), sep])


# --- parsing -----------------------------------------------------------------------------


def _clip(line: str) -> str:
    return repr(line if len(line) <= 60 else line[:57] + "...")


def _split_cells(line: str, line_no: int, bounds: Sequence[int]) -> list[str]:
    """Cut a row at the border's `+` positions; fall back to `|` for hand-aligned text."""
    if len(line) == bounds[-1] + 1 and all(line[b] == "|" for b in bounds):
        segments = [line[a + 1 : b] for a, b in itertools.pairwise(bounds)]
        if all(len(s) >= 2 and s[0] == " " and s[-1] == " " for s in segments):
            return [s[1:].rstrip(" ") for s in segments]
    pieces = line.split("|")
    if len(pieces) == len(bounds) + 1 and pieces[0] == "" and pieces[-1] == "":
        return [p.strip(" ") for p in pieces[1:-1]]
    raise ValueError(
        f"line {line_no}: expected a row of {len(bounds) - 1} '|'-separated cells "
        f"aligned with the border, got {_clip(line)}"
    )


def _column_index(header: Sequence[str], line_no: int) -> dict[str, int]:
    missing = [name for name in HEADERS if name not in header]
    if missing:
        raise ValueError(
            f"line {line_no}: not a holoctl topology header (missing {', '.join(missing)}): got {' | '.join(header)}"
        )
    return {name: header.index(name) for name in HEADERS}


def _placement(cells: Sequence[str], column: Mapping[str, int], line_no: int) -> Placement:
    node_id = cells[column["NODE"]]
    if not node_id:
        raise ValueError(f"line {line_no}: empty NODE cell")
    records_text = cells[column["RECORDS"]]
    return Placement(
        node_id=node_id,
        node_state=cells[column["NODE_STATE"]],
        role=cells[column["ROLE"]],
        shard_id=cells[column["SHARD"]],
        range_text=cells[column["RANGE"]],
        records=_parse_records(records_text, line_no),
        records_text=records_text,
        state=cells[column["STATE"]],
    )


def _parse_records(text: str, line_no: int) -> int | None:
    if _COUNT_RE.fullmatch(text):
        return int(text.replace(",", ""))
    if text in (RECORDS_UNKNOWN, "-") or text.startswith("ERR"):
        return None
    raise ValueError(f"line {line_no}: RECORDS cell {text!r} is not a count, 'n/a', '-' or 'ERR(...)'")


def _parse_count(text: str, line_no: int, what: str) -> int:
    if not _COUNT_RE.fullmatch(text):
        raise ValueError(f"line {line_no}: {what}: {text!r} is not a count")
    return int(text.replace(",", ""))


def _labelled(cells: Sequence[str], label: str, line_no: int) -> str:
    for cell in cells:
        if cell.startswith(label + ": "):
            return cell[len(label) + 2 :]
    raise ValueError(f"line {line_no}: footer row has no '{label}: ...' cell")


def _totals_partial(line_no: int, cells: Sequence[str]) -> bool:
    partial = False
    for label in ("unique", "replicated"):
        value = _labelled(cells, label, line_no)
        if value.endswith(PARTIAL_SUFFIX):
            partial = True
            value = value[: -len(PARTIAL_SUFFIX)]
        _parse_count(value, line_no, label)
    for label in ("nodes", "shards"):
        _parse_count(_labelled(cells, label, line_no), line_no, label)
    _labelled(cells, "states", line_no)
    return partial


def _parse_split(line_no: int, cells: Sequence[str]) -> SplitHealth:
    failures_cell = next((c for c in cells if c.startswith("failures: ")), "")
    match = _FAILURES_RE.fullmatch(failures_cell)
    if match is None:
        raise ValueError(f"line {line_no}: SPLIT row has no 'failures: N (transient: N)' cell")
    return SplitHealth(
        attempts=_parse_count(_labelled(cells, "attempts", line_no), line_no, "attempts"),
        successes=_parse_count(_labelled(cells, "success", line_no), line_no, "success"),
        failures=_parse_count(match["failures"], line_no, "failures"),
        transient=_parse_count(match["transient"], line_no, "transient"),
        backoff=_parse_count(_labelled(cells, "backoff", line_no), line_no, "backoff"),
        attempts_by=_parse_reasons(_labelled(cells, "attempts_by", line_no), line_no),
    )


def _parse_reasons(text: str, line_no: int) -> tuple[tuple[str, int], ...]:
    if text == "-":
        return ()
    reasons: list[tuple[str, int]] = []
    for item in text.split(", "):
        reason, sep, count = item.rpartition("=")
        if not sep or not reason:
            raise ValueError(f"line {line_no}: attempts_by entry {item!r} is not 'reason=N'")
        reasons.append((reason, _parse_count(count, line_no, "attempts_by")))
    return tuple(reasons)
