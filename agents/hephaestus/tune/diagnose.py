"""Findings read from a statistics snapshot, each quoting the numbers behind it.

Codes (prefix HT, Hephaestus tuning):

- HT001 slowest statements, HT002 most frequent statements (pg_stat_statements);
- HT010 a large table read in full by sequential scans;
- HT020 an index never scanned since the statistics were reset;
- HT021 an index with the same definition as another; HT022 an index whose
  keys lead another index, so the wider one can serve its scans;
- HT030 a foreign key whose columns lead no index;
- HT040 many dead tuples; HT041 table bloat; HT042 btree index bloat.

Bloat is an estimate: the space the rows would take at the table's fill factor
(average column widths from pg_stats, tuple header and line pointer per row)
against the pages the relation has.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

from sparc.agents.hephaestus.tune.advise import IndexAdvice
from sparc.agents.hephaestus.tune.collect import (
    DatabaseSnapshot,
    IndexStats,
    TableStats,
)
from sparc.engines import Finding

TOP_STATEMENTS = 5
_HEAP_TUPLE_HEADER = 24
_INDEX_TUPLE_HEADER = 8
_LINE_POINTER = 4
_PAGE_HEADER = 24
_BTREE_SPECIAL = 16


@dataclass(frozen=True)
class Thresholds:
    """When a number becomes a finding."""

    large_rows: int = 10_000
    dead_fraction: float = 0.2
    dead_rows: int = 1_000
    bloat_fraction: float = 0.3
    bloat_min_pages: int = 128


def statement_findings(snapshot: DatabaseSnapshot) -> list[Finding]:
    """HT001 and HT002 from pg_stat_statements, or a note that it is absent."""
    if snapshot.statements is None:
        return [
            Finding(
                code="HT000",
                severity="info",
                category="statistics",
                message="pg_stat_statements is not installed or not loaded: no "
                "statement timings; slow statements are not reported",
                location=snapshot.database,
                hint="add pg_stat_statements to shared_preload_libraries and "
                "CREATE EXTENSION pg_stat_statements",
            )
        ]
    findings = []
    slowest = sorted(snapshot.statements, key=lambda s: -s.mean_ms)[:TOP_STATEMENTS]
    for rank, item in enumerate(slowest, 1):
        findings.append(
            Finding(
                code="HT001",
                severity="info",
                category="statements",
                message=f"slowest #{rank}: mean {item.mean_ms:.2f} ms over "
                f"{item.calls} calls (total {item.total_ms:.0f} ms, {item.rows} rows): "
                f"{_one_line(item.query)}",
                location=snapshot.database,
            )
        )
    frequent = sorted(snapshot.statements, key=lambda s: -s.calls)[:TOP_STATEMENTS]
    for rank, item in enumerate(frequent, 1):
        findings.append(
            Finding(
                code="HT002",
                severity="info",
                category="statements",
                message=f"most frequent #{rank}: {item.calls} calls, mean "
                f"{item.mean_ms:.2f} ms: {_one_line(item.query)}",
                location=snapshot.database,
            )
        )
    return findings


def table_findings(snapshot: DatabaseSnapshot, limits: Thresholds) -> list[Finding]:
    """HT010 and HT040 to HT042."""
    findings = []
    for table in snapshot.tables:
        findings.extend(_table_findings(table, snapshot.block_size, limits))
    for index in snapshot.indexes:
        bloat = _index_bloat(index, snapshot.block_size, limits)
        if bloat is not None:
            findings.append(bloat)
    return findings


def foreign_key_findings(snapshot: DatabaseSnapshot) -> list[Finding]:
    """HT030: foreign keys whose columns lead no index on the child table."""
    findings = []
    for fk in snapshot.foreign_keys:
        indexes = snapshot.indexes_of(fk.schema, fk.table)
        if any(_keys(i)[: len(fk.columns)] == fk.columns for i in indexes if i.valid):
            continue
        table = snapshot.table(fk.schema, fk.table)
        rows = int(table.estimated_rows) if table else 0
        findings.append(
            Finding(
                code="HT030",
                severity="warning",
                category="indexes",
                message=f"foreign key {fk.name} ({', '.join(fk.columns)}) -> "
                f"{fk.ref_table} has no index; {fk.table} has about {rows} rows, "
                f"read in full on each delete or key update in {fk.ref_table} "
                "and on joins through it",
                location=f"{fk.schema}.{fk.table}",
                hint=f"CREATE INDEX CONCURRENTLY ON {fk.table} "
                f"({', '.join(fk.columns)})",
            )
        )
    return findings


def index_findings(
    snapshot: DatabaseSnapshot,
) -> tuple[list[Finding], list[IndexAdvice]]:
    """HT020 to HT022, with advice to drop what no constraint needs."""
    findings: list[Finding] = []
    drops: dict[str, IndexAdvice] = {}
    since = (
        f"since {snapshot.stats_reset}"
        if snapshot.stats_reset
        else "since the statistics were last reset"
    )

    for keep, duplicate in _duplicates(snapshot):
        findings.append(
            Finding(
                code="HT021",
                severity="warning",
                category="indexes",
                message=f"index {duplicate.name} duplicates {keep.name} on "
                f"{duplicate.table} ({', '.join(duplicate.keys)}); "
                f"{_size(duplicate.size_bytes)}, {duplicate.scans} scans",
                location=duplicate.qualified,
                hint=_drop_hint(duplicate),
            )
        )
        if _droppable(duplicate):
            drops.setdefault(
                duplicate.name, _drop(duplicate, f"duplicates {keep.name}")
            )

    for narrow, wide in _prefixes(snapshot):
        findings.append(
            Finding(
                code="HT022",
                severity="info",
                category="indexes",
                message=f"index {narrow.name} ({', '.join(narrow.keys)}) leads "
                f"{wide.name} ({', '.join(wide.keys)}); {wide.name} can serve its "
                f"scans ({narrow.scans} scans, {_size(narrow.size_bytes)})",
                location=narrow.qualified,
                hint=_drop_hint(narrow),
            )
        )

    for index in snapshot.indexes:
        if index.scans or not _droppable(index):
            continue
        guarded = _only_index_of_foreign_key(index, snapshot)
        findings.append(
            Finding(
                code="HT020",
                severity="info" if guarded else "warning",
                category="indexes",
                message=f"index {index.name} on {index.table} was never scanned "
                f"{since}; it costs {_size(index.size_bytes)} and slows every write"
                + (
                    f", but it is the only index for foreign key {guarded}"
                    if guarded
                    else ""
                ),
                location=index.qualified,
                hint="keep it: deletes and key updates in the referenced table need it"
                if guarded
                else _drop_hint(index),
            )
        )
        advice = _drop(index, f"never scanned {since}")
        if guarded:
            advice = replace(
                advice,
                accepted=False,
                note=f"{advice.note}; the only index for foreign key {guarded}",
            )
        drops.setdefault(index.name, advice)
    return findings, list(drops.values())


def _only_index_of_foreign_key(index: IndexStats, snapshot: DatabaseSnapshot) -> str:
    """The foreign key only this index serves, or ""."""
    others = [
        _keys(i)
        for i in snapshot.indexes_of(index.schema, index.table)
        if i.name != index.name and i.valid
    ]
    for fk in snapshot.foreign_keys:
        if (fk.schema, fk.table) != (index.schema, index.table):
            continue
        width = len(fk.columns)
        if _keys(index)[:width] != fk.columns:
            continue
        if not any(keys[:width] == fk.columns for keys in others):
            return fk.name
    return ""


def _table_findings(
    table: TableStats, block_size: int, limits: Thresholds
) -> Iterator[Finding]:
    rows = max(table.live_rows, int(table.estimated_rows))
    # index scans are not compared: foreign-key checks alone count millions
    if (
        rows >= limits.large_rows
        and table.seq_scan > 0
        and table.seq_rows_read / table.seq_scan >= limits.large_rows / 2
    ):
        yield Finding(
            code="HT010",
            severity="warning",
            category="scans",
            message=f"{table.name} ({rows} rows) was read by {table.seq_scan} "
            f"sequential scans ({table.seq_rows_read} rows read, "
            f"{table.seq_rows_read // table.seq_scan} per scan) and "
            f"{table.idx_scan} index scans",
            location=table.qualified,
            hint="see the index advice for the statements that filter it",
        )

    total = table.live_rows + table.dead_rows
    if (
        table.dead_rows >= limits.dead_rows
        and total
        and table.dead_rows / total >= limits.dead_fraction
    ):
        yield Finding(
            code="HT040",
            severity="warning",
            category="bloat",
            message=f"{table.name} holds {table.dead_rows} dead tuples "
            f"({table.dead_rows / total:.0%} of {total}); last vacuum "
            f"{table.last_vacuum or 'never'}",
            location=table.qualified,
            hint=f"VACUUM (ANALYZE) {table.name}; check autovacuum settings",
        )

    if table.row_width is None or table.pages < limits.bloat_min_pages:
        return
    row_bytes = _aligned(_HEAP_TUPLE_HEADER + table.row_width) + _LINE_POINTER
    usable = (block_size - _PAGE_HEADER) * table.fillfactor / 100
    expected = max(1, math.ceil(table.estimated_rows * row_bytes / usable))
    excess = table.pages - expected
    if excess / table.pages >= limits.bloat_fraction:
        yield Finding(
            code="HT041",
            severity="warning",
            category="bloat",
            message=f"{table.name} has {table.pages} pages where about {expected} "
            f"would hold its {int(table.estimated_rows)} rows (average row "
            f"{table.row_width} bytes of data): about {_size(excess * block_size)} "
            f"({excess / table.pages:.0%}) bloat",
            location=table.qualified,
            hint="VACUUM FULL or pg_repack in a maintenance window",
        )


def _index_bloat(
    index: IndexStats, block_size: int, limits: Thresholds
) -> Finding | None:
    if index.method != "btree" or index.key_width is None:
        return None
    if index.pages < limits.bloat_min_pages:
        return None
    entry = _aligned(_INDEX_TUPLE_HEADER + index.key_width) + _LINE_POINTER
    usable = (block_size - _PAGE_HEADER - _BTREE_SPECIAL) * index.fillfactor / 100
    # one metapage, and inner pages are about 1% of a btree's leaves
    expected = math.ceil(index.estimated_rows * entry / usable * 1.01) + 1
    excess = index.pages - expected
    if excess / index.pages < limits.bloat_fraction:
        return None
    return Finding(
        code="HT042",
        severity="warning",
        category="bloat",
        message=f"index {index.name} has {index.pages} pages where about "
        f"{expected} would hold its {int(index.estimated_rows)} entries: about "
        f"{_size(excess * block_size)} ({excess / index.pages:.0%}) bloat",
        location=index.qualified,
        hint=f"REINDEX INDEX CONCURRENTLY {index.name}",
    )


def _duplicates(snapshot: DatabaseSnapshot) -> Iterator[tuple[IndexStats, IndexStats]]:
    groups: dict[tuple[str, str, str], list[IndexStats]] = {}
    for index in snapshot.indexes:
        groups.setdefault((index.schema, index.table, index.signature), []).append(
            index
        )
    for members in groups.values():
        if len(members) < 2:
            continue
        ranked = sorted(members, key=_keep_rank)
        for duplicate in ranked[1:]:
            yield ranked[0], duplicate


def _prefixes(snapshot: DatabaseSnapshot) -> Iterator[tuple[IndexStats, IndexStats]]:
    plain = [
        i
        for i in snapshot.indexes
        if i.method == "btree" and i.predicate is None and i.valid and _droppable(i)
    ]
    for narrow in plain:
        for wide in snapshot.indexes_of(narrow.schema, narrow.table):
            if (
                wide.method == "btree"
                and wide.predicate is None
                and len(wide.keys) > len(narrow.keys)
                and wide.keys[: len(narrow.keys)] == narrow.keys
            ):
                yield narrow, wide
                break


def _keep_rank(index: IndexStats) -> tuple[int, int, int, int, str]:
    return (
        not index.primary,
        index.constraint is None,
        not index.unique,
        -index.scans,
        index.name,
    )


def _droppable(index: IndexStats) -> bool:
    return not (index.primary or index.unique or index.constraint)


def _drop(index: IndexStats, reason: str) -> IndexAdvice:
    return IndexAdvice(
        action="drop",
        schema=index.schema,
        table=index.table,
        name=index.name,
        columns=_keys(index),
        reasons=(reason,),
        definition=index.definition,
        method="catalog",
        accepted=True,
        note=f"{index.scans} scans, {_size(index.size_bytes)}",
    )


def _drop_hint(index: IndexStats) -> str:
    if not _droppable(index):
        return (
            "it backs a key or unique constraint: drop the constraint first if unneeded"
        )
    return f"DROP INDEX CONCURRENTLY {index.qualified}"


def _keys(index: IndexStats) -> tuple[str, ...]:
    return tuple(k.strip('"') for k in index.keys)


def _aligned(size: int) -> int:
    return (size + 7) // 8 * 8


def _size(size: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return f"{size} bytes"


def _one_line(query: str, limit: int = 160) -> str:
    text = " ".join(query.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
