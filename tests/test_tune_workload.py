"""Workload parsing, candidates, reports and revision text, without a server."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sparc.agents.hephaestus.scripts import GENERATED_SECTION_MARKER
from sparc.agents.hephaestus.spec import Index, IndexElement
from sparc.agents.hephaestus.tune import (
    IndexAdvice,
    StatementCost,
    TuneReport,
    render,
    tune,
)
from sparc.agents.hephaestus.tune.collect import (
    DatabaseSnapshot,
    ForeignKeyInfo,
    IndexStats,
    StatementStats,
    TableStats,
)
from sparc.agents.hephaestus.tune.diagnose import (
    Thresholds,
    index_findings,
    statement_findings,
    table_findings,
)
from sparc.agents.hephaestus.tune.revision import add_sped_up_queries, render_revision
from sparc.agents.hephaestus.tune.workload import (
    candidates,
    named_binds,
    read_workload,
    statement,
)
from sparc.errors import InputError


def _table(name: str, columns: tuple[str, ...]) -> TableStats:
    return TableStats(
        schema="public",
        name=name,
        kind="r",
        columns=columns,
        live_rows=50_000,
        dead_rows=0,
        estimated_rows=50_000,
        pages=500,
        size_bytes=500 * 8192,
        seq_scan=0,
        seq_rows_read=0,
        idx_scan=0,
        last_vacuum=None,
        last_analyze=None,
        fillfactor=100,
        row_width=40,
    )


def _primary_key(table: str) -> IndexStats:
    return IndexStats(
        schema="public",
        table=table,
        name=f"{table}_pkey",
        definition=f"CREATE UNIQUE INDEX {table}_pkey ON public.{table} (id)",
        keys=("id",),
        method="btree",
        unique=True,
        primary=True,
        valid=True,
        predicate=None,
        constraint=f"{table}_pkey",
        signature=f"{table} 1",
        scans=10,
        size_bytes=8192,
        pages=1,
        estimated_rows=50_000,
        fillfactor=90,
        key_width=4,
    )


SNAPSHOT = DatabaseSnapshot(
    database="shop",
    server_version="15",
    block_size=8192,
    stats_reset=None,
    tables=(
        _table("orders", ("id", "user_id", "status", "created_at")),
        _table("order_items", ("id", "order_id", "quantity")),
    ),
    indexes=(_primary_key("orders"), _primary_key("order_items")),
    foreign_keys=(
        ForeignKeyInfo(
            "public", "order_items", "fk_items_order", ("order_id",), "orders", ("id",)
        ),
    ),
    statements=None,
    hypopg_installed=False,
    hypopg_available=False,
)


def test_binds_become_positional_outside_strings_and_casts() -> None:
    item = statement(
        "q", "SELECT ':x', a::int FROM t WHERE b = :b AND c > :c AND d = :b -- :z"
    )
    assert item.positional == (
        "SELECT ':x', a::int FROM t WHERE b = $1 AND c > $2 AND d = $1 -- :z"
    )
    assert item.binds == ("b", "c")


def test_read_workload_keeps_names_or_numbers_statements() -> None:
    named = read_workload("-- name: one\nSELECT 1;\n\n-- name: two\nSELECT 2;\n")
    assert [s.name for s in named] == ["one", "two"]
    plain = read_workload("SELECT 1; SELECT 2", source="docs/slow.sql")
    assert [s.name for s in plain] == ["slow_1", "slow_2"]


def test_candidates_from_filters_joins_and_unindexed_foreign_keys() -> None:
    workload = [
        statement(
            "w1",
            "SELECT * FROM orders o JOIN order_items i ON i.order_id = o.id "
            "WHERE o.status = :s AND o.created_at >= :since",
        )
    ]
    found = {(c.table, c.columns): c for c in candidates(workload, SNAPSHOT)}
    assert set(found) == {
        ("orders", ("status",)),
        ("orders", ("created_at",)),
        ("orders", ("status", "created_at")),
        ("order_items", ("order_id",)),
    }
    # the join key is also a foreign key: both reasons, and the lookup it serves
    join = found[("order_items", ("order_id",))]
    assert len(join.reasons) == 2
    assert [s.name for s in join.statements] == ["w1", "fk_fk_items_order"]


def test_served_columns_are_not_candidates() -> None:
    workload = [statement("w", "SELECT * FROM orders WHERE id = 3")]
    assert [c.table for c in candidates(workload, SNAPSHOT)] == ["order_items"]


def _advice() -> IndexAdvice:
    return IndexAdvice(
        action="create",
        schema="public",
        table="orders",
        name="ix_orders_status",
        columns=("status",),
        reasons=("filtered in w1",),
        definition="CREATE INDEX CONCURRENTLY ix_orders_status ON orders (status)",
        method="hypopg",
        accepted=True,
        costs=(
            StatementCost("w1", "SELECT * FROM orders WHERE status = :s", 900.0, 8.5),
        ),
    )


def test_sped_up_queries_go_above_the_generated_section() -> None:
    existing = (
        "-- name: mine\nSELECT 1;\n\n"
        + GENERATED_SECTION_MARKER
        + "\n\n-- name: fk\nSELECT 2;\n"
    )
    text = add_sped_up_queries(existing, [_advice()])
    assert text.index("-- name: tuned_w1") < text.index(GENERATED_SECTION_MARKER)
    assert "900.00 -> 8.50" in text
    assert add_sped_up_queries(text, [_advice()]) == text


def test_revision_runs_concurrently_and_downgrades_in_reverse() -> None:
    dropped = Index(
        name="idx_old",
        elements=[IndexElement(column="created_at", descending=True)],
        where="status = 'open'",
    )
    drop = IndexAdvice(
        action="drop",
        schema="public",
        table="orders",
        name="idx_old",
        columns=("created_at",),
        reasons=("never scanned",),
        definition="",
        method="catalog",
        accepted=True,
    )
    text = render_revision(
        [_advice(), drop],
        {"idx_old": dropped},
        revision_id="003",
        down_revision="002",
        task_id="DB-9",
        title="Tune",
    )
    upgrade, downgrade = text.split("def downgrade")
    assert upgrade.index("ix_orders_status") < upgrade.index("idx_old")
    assert downgrade.index("idx_old") < downgrade.index("ix_orders_status")
    assert "sa.text('\"created_at\" DESC')" in downgrade
    assert "postgresql_where=sa.text(\"status = 'open'\")" in downgrade
    assert text.count("with _outside_transaction():") == 2
    compile(text, "003_tune.py", "exec")


def test_markdown_escapes_cells() -> None:
    report = TuneReport(
        database="shop",
        server_version="15",
        method="hypopg",
        margin=0.2,
        findings=(),
        advice=(_advice(),),
    )
    markdown = render(report, "markdown", task_id="DB-9")
    assert markdown.startswith("# DB-9: Tuning report: shop")
    assert "| yes | create | `ix_orders_status` |" in markdown
    assert "900.00 -> 8.50" in render(report)


def test_hypothetical_indexes_need_the_flag() -> None:
    with pytest.raises(InputError, match="hypothetical=True"):
        tune("postgresql://127.0.0.1:1/none", proof="hypopg")


def test_tuning_needs_postgresql() -> None:
    with pytest.raises(InputError, match="PostgreSQL URL"):
        tune("sqlite:///shop.db")


def test_statement_statistics_rank_slowest_and_most_frequent() -> None:
    snapshot = replace(
        SNAPSHOT,
        statements=(
            StatementStats("SELECT slow", calls=2, total_ms=900, mean_ms=450, rows=2),
            StatementStats("SELECT often", calls=900, total_ms=90, mean_ms=0.1, rows=9),
        ),
    )
    findings = statement_findings(snapshot)
    slowest = [f.message for f in findings if f.code == "HT001"]
    frequent = [f.message for f in findings if f.code == "HT002"]
    assert slowest[0].startswith("slowest #1: mean 450.00 ms over 2 calls")
    assert frequent[0].startswith("most frequent #1: 900 calls")


def test_unused_duplicate_and_prefix_indexes() -> None:
    email = replace(
        _primary_key("orders"),
        name="uq_email",
        keys=("status",),
        primary=False,
        constraint="uq_email",
        signature="orders 3",
    )
    duplicate = replace(email, name="idx_email", unique=False, constraint=None, scans=4)
    unused = replace(
        duplicate, name="idx_date", keys=("created_at",), signature="o 4", scans=0
    )
    wide = replace(unused, name="idx_date_user", keys=("created_at", "user_id"))
    snapshot = replace(
        SNAPSHOT, indexes=(*SNAPSHOT.indexes, email, duplicate, unused, wide)
    )

    findings, drops = index_findings(snapshot)

    codes = {(f.code, f.location) for f in findings}
    assert ("HT021", "public.idx_email") in codes
    assert ("HT022", "public.idx_date") in codes
    assert ("HT020", "public.idx_date") in codes
    assert not any("uq_email" in f.location or "pkey" in f.location for f in findings)
    assert sorted(a.name for a in drops) == ["idx_date", "idx_date_user", "idx_email"]


def test_an_unused_index_serving_a_foreign_key_is_kept() -> None:
    lookup = replace(
        _primary_key("order_items"),
        name="idx_items_order",
        keys=("order_id",),
        unique=False,
        primary=False,
        constraint=None,
        signature="items 2",
        scans=0,
    )
    snapshot = replace(SNAPSHOT, indexes=(*SNAPSHOT.indexes, lookup))

    findings, drops = index_findings(snapshot)

    assert [(f.code, f.severity) for f in findings] == [("HT020", "info")]
    assert "fk_items_order" in findings[0].message
    assert [(a.name, a.accepted) for a in drops] == [("idx_items_order", False)]


def test_table_findings_quote_scans_dead_tuples_and_bloat() -> None:
    busy = replace(
        _table("orders", ("id",)),
        seq_scan=40,
        seq_rows_read=2_000_000,
        idx_scan=3,
        live_rows=50_000,
        dead_rows=30_000,
        # 50,000 rows of 40 bytes (68 with header and pointer) fill 417 pages
        pages=2_000,
    )
    fresh = replace(_table("order_items", ("id",)), pages=417)
    snapshot = replace(SNAPSHOT, tables=(busy, fresh))

    findings = {f.code: f for f in table_findings(snapshot, Thresholds())}

    assert set(findings) == {"HT010", "HT040", "HT041"}
    assert "40 sequential scans (2000000 rows read" in findings["HT010"].message
    assert "30000 dead tuples (38% of 80000)" in findings["HT040"].message
    assert findings["HT041"].location == "public.orders"
    assert "2000 pages where about 417" in findings["HT041"].message


def test_index_bloat_is_estimated_from_key_width() -> None:
    swollen = replace(_primary_key("orders"), pages=1_000, key_width=4)
    snapshot = replace(SNAPSHOT, tables=(), indexes=(swollen,))
    (finding,) = table_findings(snapshot, Thresholds())
    assert finding.code == "HT042"
    assert "1000 pages where about" in finding.message


def test_statistics_parameters_become_named_binds() -> None:
    assert named_binds("SELECT '$1' FROM t WHERE a = $1 AND b = $12") == (
        "SELECT '$1' FROM t WHERE a = :p1 AND b = :p12"
    )
