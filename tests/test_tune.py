"""sparc db tune on a live shop database: findings, proven indexes, revisions."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from sparc.agents.hephaestus.ddl import parse_sql
from sparc.agents.hephaestus.forge import forge
from sparc.agents.hephaestus.models_render import load_metadata, spec_from_models
from sparc.agents.hephaestus.scripts import (
    read_named_queries,
    render_performance_queries,
)
from sparc.agents.hephaestus.spec import Column, ColumnType, PrimaryKey, Table
from sparc.agents.hephaestus.tune import (
    TuneReport,
    advice_revision,
    render,
    review_queries,
    tune,
    tune_workspace,
)
from sparc.agents.hephaestus.tune.workload import statement
from sparc.agents.hephaestus.verify import alembic_config
from tests.conftest import EXAMPLES, ScratchDatabases

SHOP_DATA = EXAMPLES / "shop" / "docs" / "data"
STEPS = ("shop-1-core.sql", "shop-2-auth.sql", "shop-3-indexes.sql", "shop-queries.sql")

# filters products on an unindexed column, and joins order_items through its
# unindexed foreign key to orders
FILTER_ON_NAME = "SELECT id, price FROM products WHERE name = :name"
JOIN_THROUGH_FK = (
    "SELECT o.id, oi.quantity, oi.unit_price FROM orders o "
    "JOIN order_items oi ON oi.order_id = o.id WHERE o.id = :order_id"
)
USERS_BY_EMAIL = "SELECT id, name FROM users WHERE email = 'user42@example.com'"

pytestmark = pytest.mark.slow


def _shop_workspace(root: Path) -> None:
    spec = None
    queries = []
    for step in STEPS:
        parsed = parse_sql((SHOP_DATA / step).read_text(), source=step, base=spec)
        spec = parsed.spec
        queries += parsed.queries
    assert spec is not None
    result = forge(
        root, project="shop", task_id="DB-001", title="shop schema", spec=spec
    )
    for relative, text in result.files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    (root / ".sparc").mkdir()
    (root / ".sparc" / "config.yaml").write_text("project: shop\n")
    queries_file = root / "alembic" / "scripts" / "performance_queries.sql"
    queries_file.parent.mkdir(parents=True, exist_ok=True)
    queries_file.write_text(render_performance_queries(spec, queries))


def _upgrade(root: Path, url: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            config = alembic_config(root / "alembic")
            config.attributes["connection"] = connection
            config.attributes["target_metadata"] = load_metadata(
                root / "src" / "shop" / "db" / "models.py"
            )
            command.upgrade(config, "head")
            connection.commit()
    finally:
        engine.dispose()


def _load_data(url: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection = connection.execution_options(no_parameters=True)
            for sql in (
                "INSERT INTO users (name, email) SELECT 'user ' || g, "
                "'user' || g || '@example.com' FROM generate_series(1, 20000) g",
                "INSERT INTO products (name, price) SELECT 'product ' || g, "
                "(g % 500) + 0.99 FROM generate_series(1, 20000) g",
                "INSERT INTO orders (user_id, created_at) SELECT 1 + g % 20000, "
                "timestamp '2024-01-01' + g * interval '1 minute' "
                "FROM generate_series(1, 40000) g",
                "INSERT INTO order_items (order_id, product_id, quantity, unit_price) "
                "SELECT 1 + g % 40000, 1 + g % 20000, 1 + g % 5, 9.99 "
                "FROM generate_series(1, 80000) g",
            ):
                connection.exec_driver_sql(sql)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")
            # the workload, run for real so the statistics views count it
            c.exec_driver_sql(USERS_BY_EMAIL)
            for _ in range(3):
                c.exec_driver_sql("SELECT id FROM products WHERE name = 'product 7'")
            c.exec_driver_sql("SELECT pg_stat_force_next_flush()")
    finally:
        engine.dispose()


def _catalog(url: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return [
                tuple(row)
                for row in connection.exec_driver_sql(
                    "SELECT 'class', c.oid::int, c.relname::text, c.relkind::text, "
                    "c.relpages, c.reltuples FROM pg_class c "
                    "UNION ALL SELECT 'extension', e.oid::int, e.extname::text, "
                    "e.extversion, 0, 0 FROM pg_extension e "
                    "UNION ALL SELECT 'proc', count(*)::int, '', '', 0, 0 FROM pg_proc "
                    "UNION ALL SELECT 'constraint', count(*)::int, '', '', 0, 0 "
                    "FROM pg_constraint ORDER BY 1, 2"
                )
            ]
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def shop_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shop workspace forged once per module; tests work on copies."""
    root = tmp_path_factory.mktemp("template") / "shop"
    root.mkdir()
    _shop_workspace(root)
    return root


@pytest.fixture
def shop(
    tmp_path: Path, shop_template: Path, pg_databases: ScratchDatabases
) -> Iterator[tuple[Path, str]]:
    """A shop workspace and a live database at its head, filled with rows."""
    root = tmp_path / "shop"
    shutil.copytree(shop_template, root)
    url = pg_databases.create()
    _upgrade(root, url)
    _load_data(url)
    yield root, url


def _advice(report: TuneReport, table: str, columns: tuple[str, ...]) -> object:
    matches = [a for a in report.advice if a.table == table and a.columns == columns]
    assert matches, f"no advice on {table}{columns}: {render(report)}"
    return matches[0]


def _check_index_advice(report: TuneReport) -> None:
    for table, columns, statement_name in (
        ("products", ("name",), "workload_1"),
        ("order_items", ("order_id",), "workload_2"),
    ):
        advice = _advice(report, table, columns)
        assert advice.action == "create" and advice.accepted, render(report)
        cost = next(c for c in advice.costs if c.statement == statement_name)
        assert cost.after <= cost.before * (1 - report.margin), cost
    scanned = [f for f in report.findings if f.code == "HT010"]
    assert [f.location for f in scanned] == ["public.products"]
    assert "sequential scans (60000 rows read" in scanned[0].message
    fk = [f for f in report.findings if f.code == "HT030"]
    assert any("order_items" in f.location for f in fk)
    assert not any("auth_tokens" in f.location for f in fk)


def test_tune_proves_indexes_and_the_revision_round_trips(
    shop: tuple[Path, str], pg_databases: ScratchDatabases
) -> None:
    """Both missing indexes are found, proven, and become a verified revision."""
    root, url = shop
    before = _catalog(url)

    report = tune(url, workload=[FILTER_ON_NAME, JOIN_THROUGH_FK], hypothetical=True)

    assert report.method == "hypopg"
    assert _catalog(url) == before
    _check_index_advice(report)
    files = advice_revision(
        root,
        report,
        task_id="DB-009",
        title="Index the workload",
        postgres_url=pg_databases.create(),
    )
    revision = files["alembic/versions/002_index_the_workload.py"]
    assert "postgresql_concurrently=True" in revision
    assert "autocommit_block()" in revision
    assert "ix_products_name" in files["src/shop/db/models.py"]
    queries = [
        sql
        for _, sql in read_named_queries(
            files["alembic/scripts/performance_queries.sql"]
        )
    ]
    assert FILTER_ON_NAME in queries and JOIN_THROUGH_FK in queries
    assert "DB-009" in files["docs/tuning/DB-009.md"]

    # the revision on the live database itself: the planner now agrees
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    _upgrade(root, url)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        from sparc.agents.hephaestus.tune.explain import total_cost

        cost = total_cost(connection, statement("q", FILTER_ON_NAME))
    engine.dispose()
    proven = _advice(report, "products", ("name",))
    assert cost < proven.costs[0].before * (1 - report.margin)

    # the next data task builds its revision on top of the tuning revision
    spec = spec_from_models(root / "src" / "shop" / "db" / "models.py")
    notes = Table(
        name="notes",
        columns=[Column(name="id", type=ColumnType(kind="integer"), nullable=False)],
        primary_key=PrimaryKey(columns=["id"]),
    )
    spec = spec.model_copy(update={"tables": [*spec.tables, notes]})
    later = forge(root, project="shop", task_id="DB-011", title="notes", spec=spec)
    assert later.revision is not None and later.revision.down_revision == "002"


def test_scratch_copy_proves_without_hypopg(shop: tuple[Path, str]) -> None:
    """Without the flag, the proof runs on a scratch copy and the live catalog stays."""
    _root, url = shop
    before = _catalog(url)

    report = tune(url, workload=[FILTER_ON_NAME, JOIN_THROUGH_FK])

    assert report.method == "scratch"
    assert _catalog(url) == before
    _check_index_advice(report)
    assert any("scratch copy" in note for note in report.notes)


def test_duplicate_and_unused_indexes_become_a_drop_revision(
    shop: tuple[Path, str], pg_databases: ScratchDatabases
) -> None:
    """idx_users_email duplicates the unique key; unused indexes are reported too."""
    root, url = shop
    before = _catalog(url)

    report, files = tune_workspace(
        root,
        url,
        task_id="DB-010",
        title="Drop unused indexes",
        postgres_url=pg_databases.create(),
    )

    assert _catalog(url) == before
    codes = {(f.code, f.location) for f in report.findings}
    assert ("HT021", "public.idx_users_email") in codes
    assert ("HT020", "public.idx_users_created_at") in codes
    # the unique constraint backing the scans is never proposed for a drop
    drops = {a.name for a in report.accepted if a.action == "drop"}
    assert "idx_users_email" in drops and "uq_users_email" not in drops
    revision = files["alembic/versions/002_drop_unused_indexes.py"]
    upgrade, downgrade = revision.split("def downgrade")
    assert "op.drop_index(" in upgrade and "'idx_users_email'" in upgrade
    # the partial index comes back whole on downgrade
    assert "postgresql_where=sa.text('deleted_at IS NULL')" in downgrade
    assert "idx_users_email" not in files["src/shop/db/models.py"]
    # the workspace's own queries were the workload: the FK lookups got indexes
    assert "ix_order_items_order_id" in files["src/shop/db/models.py"]


def test_review_flags_sequential_scans_and_reports_formats(
    shop: tuple[Path, str],
) -> None:
    """Query review explains the project's queries; reports render in three forms."""
    root, url = shop
    queries = (root / "alembic" / "scripts" / "performance_queries.sql").read_text()
    findings = review_queries(
        url, queries + "\n-- name: names\n" + FILTER_ON_NAME + ";\n"
    )
    assert any(f.code == "HT060" and "products" in f.message for f in findings)

    # a small work_mem makes the sort spill; `id % 2 = 0` is estimated at 0.5%
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        database = sa.make_url(url).database
        c.exec_driver_sql(f"ALTER DATABASE {database} SET work_mem = '64kB'")
    engine.dispose()
    workload = (
        "-- name: sorted\nSELECT * FROM order_items ORDER BY unit_price, quantity;\n"
        "-- name: halves\nSELECT id FROM orders WHERE id % 2 = 0;\n"
    )
    estimated = {(f.code, f.location) for f in review_queries(url, workload)}
    assert ("HT063", "performance_queries.sql:sorted") in estimated
    analyzed = {
        (f.code, f.location) for f in review_queries(url, workload, analyze=True)
    }
    assert ("HT062", "performance_queries.sql:sorted") in analyzed
    assert ("HT061", "performance_queries.sql:halves") in analyzed
    assert ("HT061", "performance_queries.sql:sorted") not in analyzed

    report = tune(url, workload=[FILTER_ON_NAME])
    data = json.loads(render(report, "json"))
    assert data["database"] == report.database
    assert render(report, "markdown").startswith("# Tuning report")
    assert "HT021" in render(report, "text")


def test_unloaded_pg_stat_statements_is_reported_not_fatal(pg_url: str) -> None:
    """The extension without its preloaded library: a note, and tuning goes on."""
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        loaded = c.exec_driver_sql("SHOW shared_preload_libraries").scalar_one()
        c.exec_driver_sql("CREATE TABLE t (id int PRIMARY KEY, v int)")
    engine.dispose()
    if "pg_stat_statements" in str(loaded):
        pytest.skip("this server preloads pg_stat_statements")

    report = tune(pg_url)

    assert [f.code for f in report.findings] == ["HT000"]
    assert report.advice == ()
