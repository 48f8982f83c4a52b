"""The schema and migration cases of ../shared/cases, fact by fact.

Each test names its case and fact (E1, E2, ...) and runs on the dialects the
case names. `.sql` cases are forged as one data task; `.yaml` cases forge
their baseline, then the request applied with `apply_requests`.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.orm import Session, configure_mappers

from sparc.agents.hephaestus.ddl import parse_sql
from sparc.agents.hephaestus.forge import ForgeResult, forge
from sparc.agents.hephaestus.models_render import (
    load_metadata,
    render_models,
    spec_from_models,
)
from sparc.agents.hephaestus.requests import apply_requests, parse_schema_request
from sparc.agents.hephaestus.spec import SchemaSpec
from sparc.agents.hephaestus.verify import alembic_config, verify_url
from tests.conftest import CASES

pytestmark = pytest.mark.skipif(
    not CASES.is_dir() and os.environ.get("CI") != "true",
    reason=f"shared cases not found at {CASES}",
)

PROJECT = "cases"
PG_AND_SQLITE = [pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"]
# the cases about schemas and migrations (25 on are about workflows)
SCHEMA_CASES = sorted(
    {p.name[:2] for p in CASES.glob("[01]*.expect.md")}
    | {p.name[:2] for p in CASES.glob("2[0-4]*.expect.md")}
)
ALL_DIALECTS = [*PG_AND_SQLITE, pytest.param("mariadb", marks=pytest.mark.mariadb)]


@dataclass
class Case:
    """A case forged into a workspace: one result per data task."""

    root: Path
    results: list[ForgeResult]
    task: dict[str, object]

    @property
    def alembic_dir(self) -> Path:
        return self.root / "alembic"

    @property
    def models_path(self) -> Path:
        return self.root / "src" / PROJECT / "db" / "models.py"

    @property
    def models(self) -> str:
        return self.models_path.read_text(encoding="utf-8")

    def revision(self, number: int = -1) -> str:
        files = sorted((self.alembic_dir / "versions").glob("*.py"))
        return files[number].read_text(encoding="utf-8")

    def upgrade_body(self, number: int = -1) -> str:
        text = self.revision(number)
        return text[text.index("def upgrade") : text.index("def downgrade")]

    def downgrade_body(self, number: int = -1) -> str:
        text = self.revision(number)
        return text[text.index("def downgrade") :]


def case_specs(number: str) -> tuple[list[SchemaSpec], dict[str, object]]:
    """The specs a case's data tasks ask for, in order, and its task block."""
    sql = sorted(CASES.glob(f"{number}-*.sql"))
    if sql:
        return [parse_sql(sql[0].read_text("utf-8"), source=sql[0].name).spec], {}
    path = next(CASES.glob(f"{number}-*.yaml"))
    task = yaml.safe_load(path.read_text("utf-8"))["task"]
    base = SchemaSpec()
    if task.get("baseline_ddl"):
        base = parse_sql(str(task["baseline_ddl"]), source=path.name).spec
    request = parse_schema_request(
        {"targets": task["targets"], "changes": _quoted_types(task["request"])}
    )
    after = apply_requests(base, request, source=path.name)
    return ([base] if base.tables else []) + [after], task


def _quoted_types(changes: object) -> object:
    # YAML splits `type: numeric(20,6)` inside {...} at the comma; the case
    # files write it so, a task file quotes it
    if isinstance(changes, list):
        return [_quoted_types(item) for item in changes]
    if isinstance(changes, dict):
        fixed = {key: _quoted_types(value) for key, value in changes.items()}
        for key in list(fixed):
            if re.fullmatch(r"\d+\)", str(key)) and fixed[key] is None:
                fixed.pop(key)
                fixed["type"] = f"{fixed['type']},{key}"
        return fixed
    return changes


def forge_into(root: Path, specs: list[SchemaSpec]) -> list[ForgeResult]:
    results = []
    for number, spec in enumerate(specs, start=1):
        result = forge(
            root,
            project=PROJECT,
            task_id=f"CASE-{number}",
            title=f"step {number}",
            spec=spec,
        )
        for relative, text in result.files.items():
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        results.append(result)
    return results


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Case]:
    """Each case forged once per module."""
    forged: dict[str, Case] = {}

    def get(number: str) -> Case:
        if number not in forged:
            root = tmp_path_factory.mktemp(f"case{number}")
            specs, task = case_specs(number)
            forged[number] = Case(root, forge_into(root, specs), task)
        return forged[number]

    return get


@pytest.fixture(autouse=True)
def _no_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'case.sqlite3'}"


def offline_sql(
    case: Case, *revisions: str, downgrade: bool = False, url: str = "postgresql://"
) -> str:
    """The SQL of an upgrade (or downgrade) in offline mode, PostgreSQL's unless
    `url` names another dialect."""
    config = alembic_config(case.alembic_dir)
    buffer = io.StringIO()
    config.output_buffer = buffer
    config.set_main_option("sqlalchemy.url", url)
    if downgrade:
        command.downgrade(config, revisions[0] if revisions else "head:base", sql=True)
    else:
        command.upgrade(config, revisions[0] if revisions else "head", sql=True)
    return buffer.getvalue()


def migrate(case: Case, url: str, action: str, target: str) -> None:
    """Run `alembic upgrade/downgrade target` through the workspace's env.py."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            config = alembic_config(case.alembic_dir)
            config.attributes["connection"] = connection
            getattr(command, action)(config, target)
            connection.commit()
    finally:
        engine.dispose()


def execute(url: str, *statements: str, pragma: bool = False) -> list[sa.Row[object]]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    rows: list[sa.Row[object]] = []
    try:
        with engine.begin() as connection:
            if pragma:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            for statement in statements:
                result = connection.execute(sa.text(statement))
                if result.returns_rows:
                    rows = list(result)
    finally:
        engine.dispose()
    return rows


def drift(case: Case, url: str) -> list[object]:
    metadata = load_metadata(case.models_path)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={"compare_type": True, "compare_server_default": True},
            )
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def models_module(case: Case) -> Iterator[object]:
    import importlib.util
    import sys

    name = f"_case_models_{abs(hash(case.root))}"
    module_spec = importlib.util.spec_from_file_location(name, case.models_path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
        configure_mappers()
        yield module
    finally:
        sys.modules.pop(name, None)


# --- 01: PostgreSQL enum type left behind by the downgrade ----------------------------


def test_01_e1_enum_values_in_order_and_not_null(case: Callable[[str], Case]) -> None:
    models = case("01").models
    assert (
        "OPEN = 'open'\n    IN_PROGRESS = 'in_progress'\n    CLOSED = 'closed'"
        in models
    )
    assert "name='ticket_status'" in models
    status = load_metadata(case("01").models_path).tables["ticket"].c.status
    assert list(status.type.enums) == ["open", "in_progress", "closed"]
    assert status.nullable is False


def test_01_e2_default_is_a_plain_literal(case: Callable[[str], Case]) -> None:
    assert "server_default=sa.text(\"'open'\")" in case("01").models
    assert "::ticket_status" not in case("01").models + case("01").revision()


def test_01_e3_offline_upgrade_creates_the_type_once_first(
    case: Callable[[str], Case],
) -> None:
    sql = offline_sql(case("01"))
    create = "CREATE TYPE ticket_status AS ENUM ('open', 'in_progress', 'closed')"
    assert sql.count(create) == 1
    assert sql.index(create) < sql.index("CREATE TABLE ticket")


def test_01_e4_offline_downgrade_drops_the_type_after_the_table(
    case: Callable[[str], Case],
) -> None:
    sql = offline_sql(case("01"), "001:base", downgrade=True)
    assert sql.index("DROP TABLE ticket") < sql.index("DROP TYPE ticket_status")


@pytest.mark.postgres
def test_01_e5_round_trip_on_postgresql_removes_the_type(
    case: Callable[[str], Case], pg_url: str
) -> None:
    migrate(case("01"), pg_url, "upgrade", "head")
    migrate(case("01"), pg_url, "downgrade", "base")
    left = execute(pg_url, "SELECT count(*) FROM pg_type WHERE typname='ticket_status'")
    migrate(case("01"), pg_url, "upgrade", "head")
    assert left[0][0] == 0


def test_01_e6_sqlite_has_no_type_and_a_varchar_11(
    case: Callable[[str], Case], sqlite_url: str
) -> None:
    report = verify_url(sqlite_url, case("01").alembic_dir, case("01").models_path)
    assert "empty after downgrade" in report.steps
    columns = execute(sqlite_url, "PRAGMA table_info(ticket)")
    assert {row[1]: row[2] for row in columns}["status"] == "VARCHAR(11)"
    upgrade = offline_sql(case("01"), url="sqlite://")
    downgrade = offline_sql(case("01"), "001:base", downgrade=True, url="sqlite://")
    assert "CREATE TABLE ticket" in upgrade and "DROP TABLE ticket" in downgrade
    assert "TYPE" not in upgrade + downgrade


# --- 03: column-level CHECK constraints -----------------------------------------------


def test_03_e1_both_checks_named_in_table_args(case: Callable[[str], Case]) -> None:
    models = case("03").models
    assert "sa.CheckConstraint('reading_kwh >= 0', name='kwh_nonneg')" in models
    assert "'quality >= 1 AND quality <= 5'" in models or "BETWEEN" in models
    checks = {
        str(c.name)
        for c in load_metadata(case("03").models_path)
        .tables["meter_reading"]
        .constraints
        if isinstance(c, sa.CheckConstraint)
    }
    assert checks == {"ck_meter_reading_kwh_nonneg", "ck_meter_reading_quality"}


def test_03_e2_create_table_carries_both_checks(case: Callable[[str], Case]) -> None:
    body = case("03").upgrade_body()
    assert body.count("sa.CheckConstraint(") == 2
    assert "name=op.f('ck_meter_reading_kwh_nonneg')" in body
    assert "name=op.f('ck_meter_reading_quality')" in body


@pytest.mark.postgres
def test_03_e3_postgresql_has_exactly_the_two_names(
    case: Callable[[str], Case], pg_url: str
) -> None:
    migrate(case("03"), pg_url, "upgrade", "head")
    names = execute(
        pg_url,
        "SELECT conname FROM pg_constraint WHERE contype = 'c' "
        "AND conrelid = 'meter_reading'::regclass ORDER BY 1",
    )
    assert [row[0] for row in names] == [
        "ck_meter_reading_kwh_nonneg",
        "ck_meter_reading_quality",
    ]


@pytest.mark.parametrize("dialect", PG_AND_SQLITE)
@pytest.mark.parametrize(
    "values", ["(1, 'm', -1, 3)", "(2, 'm', 1, 6)"], ids=["kwh", "quality"]
)
def test_03_e4_rows_breaking_a_check_are_refused(
    case: Callable[[str], Case],
    dialect: str,
    values: str,
    request: pytest.FixtureRequest,
) -> None:
    url = request.getfixturevalue("pg_url" if dialect == "postgresql" else "sqlite_url")
    migrate(case("03"), url, "upgrade", "head")
    refusal = "CHECK constraint failed" if dialect == "sqlite" else "violates check"
    execute(url, "INSERT INTO meter_reading VALUES (3, 'm', 0, 1)")
    with pytest.raises(sa.exc.IntegrityError, match=refusal):
        execute(url, f"INSERT INTO meter_reading VALUES {values}")


def test_03_e5_a_second_forge_finds_nothing_to_do(case: Callable[[str], Case]) -> None:
    again = forge(
        case("03").root,
        project=PROJECT,
        task_id="AGAIN",
        title="again",
        spec=case_specs("03")[0][-1],
    )
    assert again.revision is None and again.files == {}


@pytest.mark.postgres
def test_03_e5_no_constraint_drift_on_postgresql(
    case: Callable[[str], Case], pg_url: str
) -> None:
    migrate(case("03"), pg_url, "upgrade", "head")
    assert drift(case("03"), pg_url) == []


# --- 04: partial unique index on a boolean --------------------------------------------


def test_04_e1_models_give_every_dialect_the_predicate(
    case: Callable[[str], Case],
) -> None:
    models = case("04").models
    assert "postgresql_where=sa.text('is_active')" in models
    assert "sqlite_where=sa.text('is_active')" in models


def test_04_e2_migration_carries_the_predicate(case: Callable[[str], Case]) -> None:
    body = case("04").upgrade_body()
    assert "postgresql_where=sa.text('is_active')" in body
    assert "sqlite_where=sa.text('is_active')" in body
    assert "= 1" not in body and "where=True" not in body


@pytest.mark.postgres
def test_04_e3_postgresql_index_ends_with_the_predicate(
    case: Callable[[str], Case], pg_url: str
) -> None:
    migrate(case("04"), pg_url, "upgrade", "head")
    definition = execute(
        pg_url, "SELECT pg_get_indexdef('uq_vehicle_listing_vin_active'::regclass)"
    )
    assert definition[0][0].endswith("WHERE is_active")


@pytest.mark.parametrize("dialect", PG_AND_SQLITE)
def test_04_e4_unique_among_active_rows_only(
    case: Callable[[str], Case], dialect: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url" if dialect == "postgresql" else "sqlite_url")
    migrate(case("04"), url, "upgrade", "head")
    execute(
        url,
        "INSERT INTO vehicle_listing (id, vin, is_active) VALUES "
        "(1, 'VIN00000000000001', false), (2, 'VIN00000000000001', true)",
    )
    with pytest.raises(sa.exc.IntegrityError):
        execute(
            url,
            "INSERT INTO vehicle_listing (id, vin, is_active) "
            "VALUES (3, 'VIN00000000000001', true)",
        )


@pytest.mark.parametrize("dialect", PG_AND_SQLITE)
def test_04_e5_no_index_drift_after_upgrade(
    case: Callable[[str], Case], dialect: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url" if dialect == "postgresql" else "sqlite_url")
    migrate(case("04"), url, "upgrade", "head")
    changes = [diff for diff in drift(case("04"), url) if "index" in str(diff[0])]
    assert changes == []


# --- 06: NOT NULL columns added to a table with rows ----------------------------------


def test_06_e1_is_verified_has_a_false_server_default(
    case: Callable[[str], Case], sqlite_url: str
) -> None:
    body = case("06").upgrade_body()
    assert re.search(
        r"add_column\(sa\.Column\('is_verified', sa\.Boolean\(\), "
        r"server_default=sa\.false\(\), nullable=False\)\)",
        body,
    ), body
    # false on PostgreSQL, 0 on SQLite
    assert "is_verified BOOLEAN DEFAULT false NOT NULL" in offline_sql(case("06"))
    migrate(case("06"), sqlite_url, "upgrade", "head")
    ddl = execute(sqlite_url, "SELECT sql FROM sqlite_master WHERE name='account'")
    assert "is_verified BOOLEAN DEFAULT 0 NOT NULL" in ddl[0][0]


def test_06_e2_created_at_defaults_to_now(case: Callable[[str], Case]) -> None:
    body = case("06").upgrade_body()
    assert re.search(
        r"add_column\(sa\.Column\('created_at', sa\.DateTime\(timezone=True\), "
        r"server_default=sa\.func\.now\(\), nullable=False\)\)",
        body,
    ), body


def test_06_e3_columns_added_in_batch_mode(case: Callable[[str], Case]) -> None:
    body = case("06").upgrade_body()
    assert "with op.batch_alter_table('account'" in body
    assert not re.search(r"\bop\.add_column\(", body)


@pytest.mark.parametrize("dialect", PG_AND_SQLITE)
def test_06_e4_upgrade_fills_the_seeded_rows(
    case: Callable[[str], Case], dialect: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url" if dialect == "postgresql" else "sqlite_url")
    migrate(case("06"), url, "upgrade", "001")
    execute(url, str(case("06").task["baseline_seed"]))
    migrate(case("06"), url, "upgrade", "head")
    rows = execute(
        url,
        "SELECT count(*), sum(CASE WHEN is_verified THEN 1 ELSE 0 END) FROM account "
        "WHERE is_verified IS NOT NULL AND created_at IS NOT NULL",
    )
    assert tuple(rows[0]) == (2, 0)


def test_06_e5_models_declare_both_server_defaults(
    case: Callable[[str], Case],
) -> None:
    table = load_metadata(case("06").models_path).tables["account"]
    assert table.c.is_verified.server_default is not None
    assert table.c.created_at.server_default is not None


@pytest.mark.parametrize("dialect", PG_AND_SQLITE)
def test_06_e6_downgrade_drops_both_and_round_trips(
    case: Callable[[str], Case], dialect: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url" if dialect == "postgresql" else "sqlite_url")
    body = case("06").downgrade_body()
    assert "drop_column('created_at')" in body and "drop_column('is_verified')" in body
    report = verify_url(url, case("06").alembic_dir, case("06").models_path)
    assert report.steps[-1] == "no drift"


def test_06_e7_a_changed_server_default_is_migrated(
    case: Callable[[str], Case], tmp_path: Path
) -> None:
    specs, _ = case_specs("06")
    forge_into(tmp_path, specs)
    account = specs[-1].table("account")
    assert account is not None
    columns = [
        c.model_copy(update={"default": "clock_timestamp()"})
        if c.name == "created_at"
        else c
        for c in account.columns
    ]
    changed = specs[-1].model_copy(
        update={"tables": [account.model_copy(update={"columns": columns})]}
    )
    result = forge_into(tmp_path, [changed])[0]
    assert result.revision is not None
    assert "alter_column('created_at'" in result.revision.text
    assert "clock_timestamp()" in result.revision.text


# --- 07: UUID key and function defaults -----------------------------------------------


def test_07_e1_uuid_key_keeps_its_server_default(case: Callable[[str], Case]) -> None:
    models = case("07").models
    assert "id: Mapped[uuid.UUID] = mapped_column(" in models
    assert "default=uuid.uuid4" in models
    assert "server_default=sa.text('gen_random_uuid()')" in models


def test_07_e2_migration_and_offline_sql_call_the_function(
    case: Callable[[str], Case],
) -> None:
    assert "sa.text('gen_random_uuid()')" in case("07").upgrade_body()
    sql = offline_sql(case("07"))
    assert "DEFAULT gen_random_uuid()" in sql and "'gen_random_uuid()'" not in sql


def test_07_e3_timezone_default_is_an_expression(case: Callable[[str], Case]) -> None:
    assert "sa.text(\"timezone('utc', now())\")" in case("07").upgrade_body()
    assert "DEFAULT 'timezone(" not in offline_sql(case("07"))


def test_07_e4_no_extension_function_without_its_extension(
    case: Callable[[str], Case],
) -> None:
    sql = offline_sql(case("07"))
    assert (
        "uuid_generate_v4" not in sql
        or 'CREATE EXTENSION IF NOT EXISTS "uuid-ossp"' in sql
    )


@pytest.mark.postgres
def test_07_e5_postgresql_fills_id_and_created_at(
    case: Callable[[str], Case], pg_url: str
) -> None:
    migrate(case("07"), pg_url, "upgrade", "head")
    row = execute(
        pg_url,
        "INSERT INTO api_client (label) VALUES ('x') RETURNING id, created_at",
    )[0]
    assert row[0] is not None and row[1] is not None


@pytest.mark.postgres
def test_07_e6_no_server_default_drift_three_times(
    case: Callable[[str], Case], pg_url: str
) -> None:
    migrate(case("07"), pg_url, "upgrade", "head")
    assert [drift(case("07"), pg_url) for _ in range(3)] == [[], [], []]


def test_07_e7_sqlite_gets_no_server_function_and_orm_uuids(
    case: Callable[[str], Case], sqlite_url: str
) -> None:
    migrate(case("07"), sqlite_url, "upgrade", "head")
    ddl = execute(sqlite_url, "SELECT sql FROM sqlite_master WHERE name='api_client'")
    assert "gen_random_uuid" not in ddl[0][0]
    for module in models_module(case("07")):
        engine = sa.create_engine(sqlite_url)
        with Session(engine) as session:
            client = module.ApiClient(  # type: ignore[attr-defined]
                label="x", created_at=sa.func.current_timestamp()
            )
            session.add(client)
            session.commit()
            assert client.id is not None
        engine.dispose()


# --- 09: named constraints for the downgrade ------------------------------------------


def test_09_e1_naming_convention_has_every_key(case: Callable[[str], Case]) -> None:
    convention = load_metadata(case("09").models_path).naming_convention
    assert {"ix", "uq", "ck", "fk", "pk"} <= set(convention)


def test_09_e2_no_operation_names_none(case: Callable[[str], Case]) -> None:
    text = case("09").revision()
    assert not re.search(
        r"(create_foreign_key|create_unique_constraint|drop_constraint)\(None", text
    )


@pytest.mark.postgres
def test_09_e3_postgresql_has_the_convention_names(
    case: Callable[[str], Case], pg_url: str
) -> None:
    migrate(case("09"), pg_url, "upgrade", "head")
    rows = execute(
        pg_url,
        "SELECT conname, confdeltype FROM pg_constraint "
        "WHERE conrelid = 'attachment'::regclass AND contype IN ('f', 'u') ORDER BY 1",
    )
    assert [tuple(row) for row in rows] == [
        ("fk_attachment_folder_id_folder", "c"),
        ("uq_attachment_folder_id_file_name", " "),
    ] or [row[0] for row in rows] == [
        "fk_attachment_folder_id_folder",
        "uq_attachment_folder_id",
    ]


def test_09_e4_downgrade_drops_both_by_name_before_the_column(
    case: Callable[[str], Case],
) -> None:
    body = case("09").downgrade_body()
    fk = body.index("f('fk_attachment_folder_id_folder'), type_='foreignkey')")
    unique = body.index("drop_constraint('uq_attachment_folder_id_file_name'")
    assert max(fk, unique) < body.index("drop_column('folder_id')")


def test_09_e5_sqlite_batch_keeps_the_cascade_and_names(
    case: Callable[[str], Case], sqlite_url: str
) -> None:
    assert "with op.batch_alter_table('attachment'" in case("09").upgrade_body()
    migrate(case("09"), sqlite_url, "upgrade", "head")
    keys = execute(sqlite_url, "PRAGMA foreign_key_list(attachment)")
    assert [row[6] for row in keys] == ["CASCADE"]
    ddl = execute(sqlite_url, "SELECT sql FROM sqlite_master WHERE name='attachment'")
    assert "CONSTRAINT fk_attachment_folder_id_folder" in ddl[0][0]
    migrate(case("09"), sqlite_url, "downgrade", "001")


@pytest.mark.parametrize("dialect", PG_AND_SQLITE)
def test_09_e6_round_trip(
    case: Callable[[str], Case], dialect: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url" if dialect == "postgresql" else "sqlite_url")
    report = verify_url(url, case("09").alembic_dir, case("09").models_path)
    assert report.steps[-1] == "no drift"


# --- 10: ON DELETE CASCADE and passive deletes ----------------------------------------


def test_10_e1_foreign_key_cascades_with_one_index(case: Callable[[str], Case]) -> None:
    table = load_metadata(case("10").models_path).tables["poll_vote"]
    (fk,) = table.foreign_key_constraints
    assert fk.ondelete == "CASCADE"
    assert [[c.name for c in i.columns] for i in table.indexes] == [["poll_id"]]


def test_10_e2_relationship_deletes_passively(case: Callable[[str], Case]) -> None:
    models = case("10").models
    assert re.search(
        r"relationship\(\s*back_populates='poll',\s*cascade='all, delete-orphan',"
        r"\s*passive_deletes=True,?\s*\)",
        models,
    ), models


def test_10_e3_migration_key_cascades(case: Callable[[str], Case]) -> None:
    assert "ondelete='CASCADE'" in case("10").upgrade_body()


@pytest.mark.parametrize("dialect", PG_AND_SQLITE)
def test_10_e4_e5_deleting_a_poll_deletes_its_votes_in_the_database(
    case: Callable[[str], Case], dialect: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url" if dialect == "postgresql" else "sqlite_url")
    migrate(case("10"), url, "upgrade", "head")
    engine = sa.create_engine(url)
    if dialect == "sqlite":
        sa.event.listen(
            engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA foreign_keys=ON")
        )
    statements: list[str] = []
    sa.event.listen(
        engine,
        "before_cursor_execute",
        lambda *args: statements.append(args[2]),
    )
    for module in models_module(case("10")):
        with Session(engine) as session:
            poll = module.Poll(id=1, title="t")  # type: ignore[attr-defined]
            poll.poll_vote = [
                module.PollVote(id=1, choice="a"),  # type: ignore[attr-defined]
                module.PollVote(id=2, choice="b"),  # type: ignore[attr-defined]
            ]
            session.add(poll)
            session.commit()
            session.delete(poll)
            session.commit()
        with engine.connect() as connection:
            count = connection.execute(sa.text("SELECT count(*) FROM poll_vote"))
            assert count.scalar_one() == 0
    engine.dispose()
    assert not any("UPDATE poll_vote" in s for s in statements)


# --- 11: SQLite ALTERs in batch mode --------------------------------------------------


def test_11_e1_env_renders_batch_on_sqlite(case: Callable[[str], Case]) -> None:
    env = (case("11").alembic_dir / "env.py").read_text(encoding="utf-8")
    assert '"render_as_batch": dialect_name == "sqlite"' in env


def test_11_e2_all_three_changes_in_one_batch(case: Callable[[str], Case]) -> None:
    body = case("11").upgrade_body()
    assert body.count("with op.batch_alter_table('product'") == 1
    assert not re.search(r"\bop\.(alter_column|create_unique_constraint)\(", body)
    for change in ("alter_column('sku'", "alter_column('name'", "uq_product_sku"):
        assert f"batch_op.{change}" in body or change in body


def test_11_e3_sqlite_upgrade_keeps_rows_and_names_the_constraint(
    case: Callable[[str], Case], sqlite_url: str
) -> None:
    migrate(case("11"), sqlite_url, "upgrade", "001")
    execute(sqlite_url, str(case("11").task["baseline_seed"]))
    migrate(case("11"), sqlite_url, "upgrade", "head")
    info = {row[1]: row for row in execute(sqlite_url, "PRAGMA table_info(product)")}
    assert info["sku"][3] == 1 and info["name"][2] == "VARCHAR(120)"
    origins = [row[3] for row in execute(sqlite_url, "PRAGMA index_list(product)")]
    assert "u" in origins
    ddl = execute(sqlite_url, "SELECT sql FROM sqlite_master WHERE name='product'")
    assert "CONSTRAINT uq_product_sku UNIQUE (sku)" in ddl[0][0]
    assert execute(sqlite_url, "SELECT count(*) FROM product")[0][0] == 2


def test_11_e4_downgrade_restores_nullable_sku_and_varchar_50(
    case: Callable[[str], Case], sqlite_url: str
) -> None:
    assert re.search(
        r"drop_constraint\((batch_op\.f\()?'uq_product_sku'",
        case("11").downgrade_body(),
    )
    migrate(case("11"), sqlite_url, "upgrade", "head")
    migrate(case("11"), sqlite_url, "downgrade", "001")
    info = {row[1]: row for row in execute(sqlite_url, "PRAGMA table_info(product)")}
    assert info["sku"][3] == 0 and info["name"][2] == "VARCHAR(50)"
    ddl = execute(sqlite_url, "SELECT sql FROM sqlite_master WHERE name='product'")
    assert "uq_product_sku" not in ddl[0][0]


@pytest.mark.postgres
def test_11_e5_same_revision_on_postgresql(
    case: Callable[[str], Case], pg_url: str
) -> None:
    report = verify_url(pg_url, case("11").alembic_dir, case("11").models_path)
    assert report.steps[-1] == "no drift"


# --- 13: precision and scale changes of NUMERIC ---------------------------------------


def test_13_e1_two_alter_columns_with_existing_types(
    case: Callable[[str], Case],
) -> None:
    body = case("13").upgrade_body()
    assert re.search(
        r"alter_column\('unit_price',\s*existing_type=sa\.NUMERIC\(precision=18, "
        r"scale=6\),\s*type_=sa\.Numeric\(precision=20, scale=6\),\s*"
        r"existing_nullable=False\)",
        body,
    ), body
    assert re.search(
        r"alter_column\('quantity',\s*existing_type=sa\.NUMERIC\(precision=10, "
        r"scale=3\),\s*type_=sa\.Numeric\(precision=10, scale=4\),\s*"
        r"existing_nullable=False\)",
        body,
    ), body


@pytest.mark.postgres
def test_13_e2_e3_postgresql_precision_and_values(
    case: Callable[[str], Case], pg_url: str
) -> None:
    query = (
        "SELECT column_name, numeric_precision, numeric_scale "
        "FROM information_schema.columns WHERE table_name = 'invoice_line' "
        "AND data_type = 'numeric' ORDER BY 1"
    )
    migrate(case("13"), pg_url, "upgrade", "001")
    execute(pg_url, str(case("13").task["baseline_seed"]))
    migrate(case("13"), pg_url, "upgrade", "head")
    upgraded = [tuple(row) for row in execute(pg_url, query)]
    values = execute(
        pg_url, "SELECT unit_price::text, quantity::text FROM invoice_line"
    )
    migrate(case("13"), pg_url, "downgrade", "001")
    downgraded = [tuple(row) for row in execute(pg_url, query)]

    assert upgraded == [("quantity", 10, 4), ("unit_price", 20, 6)]
    assert tuple(values[0]) == ("12.500000", "3.2500")
    assert downgraded == [("quantity", 10, 3), ("unit_price", 18, 6)]
    assert any(
        "downgrade narrows invoice_line.quantity from numeric(10, 4) to "
        "numeric(10, 3)" in line
        for line in case("13").results[-1].report
    )


def test_13_e4_models_use_decimal_numerics(case: Callable[[str], Case]) -> None:
    models = case("13").models
    for column, numeric in (("unit_price", "20, 6"), ("quantity", "10, 4")):
        assert re.search(
            rf"{column}: Mapped\[decimal\.Decimal\] = mapped_column\(\s*"
            rf"sa\.Numeric\({numeric}\)",
            models,
        )


def test_13_e5_sqlite_runs_in_batch_and_the_report_says_so(
    case: Callable[[str], Case], sqlite_url: str
) -> None:
    assert "with op.batch_alter_table('invoice_line'" in case("13").upgrade_body()
    report = verify_url(sqlite_url, case("13").alembic_dir, case("13").models_path)
    assert report.steps[-1] == "no drift"
    assert any(
        line.startswith("sqlite: numeric column invoice_line.quantity does not enforce")
        for line in case("13").results[-1].report
    )


# --- 14: money in FLOAT (the corrected schema) ----------------------------------------


@pytest.fixture(scope="module")
def wallet(tmp_path_factory: pytest.TempPathFactory) -> Case:
    """Case 14's wallet with money in NUMERIC(12,2), as the lint finding asks."""
    text = next(CASES.glob("14-*.sql")).read_text(encoding="utf-8")
    corrected = re.sub(r"balance\s+FLOAT", "balance NUMERIC(12,2)", text)
    corrected = re.sub(r"credit_limit\s+REAL", "credit_limit NUMERIC(12,2)", corrected)
    root = tmp_path_factory.mktemp("case14")
    spec = parse_sql(corrected, source="14").spec
    return Case(root, forge_into(root, [spec]), {})


def test_14_e2_money_columns_are_decimal_numerics(wallet: Case) -> None:
    for column in ("balance", "credit_limit"):
        assert re.search(
            rf"{column}: Mapped\[(Optional\[)?decimal\.Decimal\]?\] = mapped_column\("
            r"\s*sa\.Numeric\(12, 2\)",
            wallet.models,
        )
    body = wallet.upgrade_body()
    assert "sa.Float" not in body and "sa.REAL" not in body.split("fee_rate")[0]


def test_14_e3_balance_keeps_not_null_and_zero_default(wallet: Case) -> None:
    column = load_metadata(wallet.models_path).tables["wallet"].c.balance
    assert column.nullable is False
    assert "server_default=sa.text('0')" in wallet.models
    assert re.search(
        r"sa\.Column\('balance', sa\.Numeric\(precision=12, scale=2\), "
        r"server_default=sa\.text\('0'\), nullable=False\)",
        wallet.upgrade_body(),
    ), wallet.upgrade_body()


@pytest.mark.postgres
def test_14_e4_decimal_sums_are_exact_on_postgresql(wallet: Case, pg_url: str) -> None:
    migrate(wallet, pg_url, "upgrade", "head")
    execute(
        pg_url,
        "INSERT INTO wallet (id, owner_ref, balance) "
        "VALUES (1, 'a', 0.10), (2, 'b', 0.20)",
    )
    assert execute(pg_url, "SELECT sum(balance) = 0.30 FROM wallet")[0][0] is True


def test_14_e5_sqlite_round_trip_raises_no_decimal_warning(
    wallet: Case, sqlite_url: str
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = verify_url(sqlite_url, wallet.alembic_dir, wallet.models_path)
        engine = sa.create_engine(sqlite_url, poolclass=sa.pool.NullPool)
        for module in models_module(wallet):
            with Session(engine) as session:
                for number, amount in ((1, "0.10"), (2, "0.20")):
                    session.add(
                        module.Wallet(  # type: ignore[attr-defined]
                            id=number, owner_ref="o", balance=Decimal(amount)
                        )
                    )
                session.commit()
                total = session.scalar(
                    sa.select(sa.func.sum(module.Wallet.balance))  # type: ignore[attr-defined]
                )
        engine.dispose()

    assert report.steps[-1] == "no drift"
    assert total == Decimal("0.30")
    assert not [w for w in caught if "Decimal" in str(w.message)], caught
    assert any(
        "sqlite: numeric column wallet.balance does not enforce" in line
        for line in wallet.results[-1].report
    )


# --- 16: reserved words as names ------------------------------------------------------


def test_16_e1_e4_names_kept_and_mapped_to_safe_attributes(
    case: Callable[[str], Case],
) -> None:
    """Policy: the names are kept and quoted by SQLAlchemy everywhere."""
    models = case("16").models
    for table in ("user", "group", "order"):
        assert f"__tablename__ = '{table}'" in models
    for module in models_module(case("16")):
        order = sa.inspect(module.Order)  # type: ignore[attr-defined]
        attributes = {c.key: c.columns[0].name for c in order.column_attrs}
        assert attributes["group"] == "group" and attributes["desc"] == "desc"
        assert all(key.isidentifier() for key in attributes)
        statement = sa.select(module.Order.desc).where(  # type: ignore[attr-defined]
            module.Order.group == 1  # type: ignore[attr-defined]
        )
        compiled = str(statement.compile(dialect=postgresql.dialect()))
        assert 'FROM "order"' in compiled and '"order"."group"' in compiled


@pytest.mark.parametrize("dialect", ALL_DIALECTS)
def test_16_e5_revision_quotes_through_sqlalchemy_everywhere(
    case: Callable[[str], Case], dialect: str, request: pytest.FixtureRequest
) -> None:
    assert "op.execute(" not in case("16").revision()
    fixture = {"postgresql": "pg_url", "sqlite": "sqlite_url", "mariadb": "mariadb_url"}
    url = request.getfixturevalue(fixture[dialect])
    report = verify_url(url, case("16").alembic_dir, case("16").models_path)
    assert report.steps[-1] == "no drift"
    migrate(case("16"), url, "downgrade", "base")
    migrate(case("16"), url, "upgrade", "head")
    quote = "`" if dialect == "mariadb" else '"'
    execute(
        url, f"INSERT INTO {quote}user{quote} (id, handle) VALUES (1, 'a'), (2, 'b')"
    )
    assert execute(url, f"SELECT count(*) FROM {quote}user{quote}")[0][0] == 2


def test_16_e6_convention_names_need_no_quotes(case: Callable[[str], Case]) -> None:
    names = re.findall(r"op\.f\('([^']+)'\)", case("16").revision())
    assert "fk_order_user_id_user" in names
    assert all(re.fullmatch(r"[a-z_][a-z0-9_]*", name) for name in names)


# --- 17: circular foreign keys --------------------------------------------------------


def test_17_e1_one_edge_added_later_and_post_updated(
    case: Callable[[str], Case],
) -> None:
    models = case("17").models
    assert (
        "sa.ForeignKey('employee.id', deferrable=True, initially='DEFERRED', "
        "use_alter=True, name='fk_department_head_employee_id_employee')"
    ) in models
    assert re.search(
        r"head_employee: Mapped\[Optional\[\"Employee\"\]\] = relationship\([^)]*"
        r"post_update=True",
        models,
    )


def test_17_e2_tables_first_then_the_closing_key(case: Callable[[str], Case]) -> None:
    body = case("17").upgrade_body()
    department = body[body.index("create_table('department'") :]
    department = department[: department.index("create_table('employee'")]
    assert "fk_department_head_employee_id_employee" not in department
    key = body.index("create_foreign_key('fk_department_head_employee_id_employee'")
    assert body.index("create_table('employee'") < key
    assert "['head_employee_id'], ['id'], initially=_initially('DEFERRED'), " in body
    assert "deferrable=_deferrable()" in body


@pytest.mark.parametrize("dialect", ALL_DIALECTS)
def test_17_e3_e6_cycle_round_trips(
    case: Callable[[str], Case], dialect: str, request: pytest.FixtureRequest
) -> None:
    fixture = {"postgresql": "pg_url", "sqlite": "sqlite_url", "mariadb": "mariadb_url"}
    url = request.getfixturevalue(fixture[dialect])
    body = case("17").downgrade_body()
    assert (
        body.index("drop_constraint('fk_department_head_employee_id_employee'")
        < body.index("drop_table('employee')")
        < body.index("drop_table('department')")
    )
    report = verify_url(url, case("17").alembic_dir, case("17").models_path)
    assert report.steps[-1] == "no drift"


def test_17_e5_metadata_sorts_without_cycle_warnings(
    case: Callable[[str], Case],
) -> None:
    metadata = load_metadata(case("17").models_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [t.name for t in metadata.sorted_tables] == ["department", "employee"]


# --- 19: composite primary and foreign keys -------------------------------------------


def test_19_e1_resident_key_in_order(case: Callable[[str], Case]) -> None:
    resident = load_metadata(case("19").models_path).tables["resident"]
    assert [c.name for c in resident.primary_key.columns] == ["building_id", "unit_no"]
    assert {fk.target_fullname for fk in resident.c.building_id.foreign_keys} == {
        "building.building_id"
    }


def test_19_e2_one_composite_key_on_parking_permit(
    case: Callable[[str], Case],
) -> None:
    models = case("19").models
    assert re.search(
        r"sa\.ForeignKeyConstraint\(\s*\['building_id', 'unit_no'\],\s*"
        r"\['resident\.building_id', 'resident\.unit_no'\],\s*ondelete='CASCADE'",
        models,
    )
    assert "ForeignKey('resident.unit_no')" not in models
    permit = load_metadata(case("19").models_path).tables["parking_permit"]
    assert len(permit.foreign_key_constraints) == 1


def test_19_e3_relationships_join_on_both_columns(case: Callable[[str], Case]) -> None:
    for module in models_module(case("19")):
        relation = module.ParkingPermit.resident.property  # type: ignore[attr-defined]
        assert len(relation.local_columns) == 2
        assert module.Building.resident  # type: ignore[attr-defined]
        assert module.Resident.building  # type: ignore[attr-defined]
        # E3b: with keys enforced, one flush must insert the building first
        engine = sa.create_engine("sqlite://")
        sa.event.listen(
            engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA foreign_keys=ON")
        )
        module.Base.metadata.create_all(engine)  # type: ignore[attr-defined]
        with Session(engine) as session:
            building = module.Building(building_id=1, name="b")  # type: ignore[attr-defined]
            resident = module.Resident(  # type: ignore[attr-defined]
                unit_no="4B", display_name="r", building=building
            )
            session.add_all([building, resident])
            session.commit()
            assert session.get(module.Resident, (1, "4B")) is resident  # type: ignore[attr-defined]
        engine.dispose()


@pytest.mark.postgres
def test_19_e4_postgresql_key_has_two_columns(
    case: Callable[[str], Case], pg_url: str
) -> None:
    migrate(case("19"), pg_url, "upgrade", "head")
    length = execute(
        pg_url,
        "SELECT array_length(conkey, 1) FROM pg_constraint "
        "WHERE conrelid = 'parking_permit'::regclass AND contype = 'f'",
    )
    assert [row[0] for row in length] == [2]


@pytest.mark.parametrize("dialect", PG_AND_SQLITE)
def test_19_e5_deleting_a_resident_cascades(
    case: Callable[[str], Case], dialect: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url" if dialect == "postgresql" else "sqlite_url")
    migrate(case("19"), url, "upgrade", "head")
    execute(
        url,
        "INSERT INTO building VALUES (1, 'b')",
        "INSERT INTO resident VALUES (1, '4B', 'r')",
        "INSERT INTO parking_permit VALUES (1, 1, '4B', '2030-01-01')",
        pragma=dialect == "sqlite",
    )
    assert execute(url, "SELECT count(*) FROM parking_permit")[0][0] == 1
    execute(url, "DELETE FROM resident", pragma=dialect == "sqlite")
    assert execute(url, "SELECT count(*) FROM parking_permit")[0][0] == 0


# --- 20: many-to-many pairs (the corrected link table) --------------------------------


@pytest.fixture(scope="module")
def membership(tmp_path_factory: pytest.TempPathFactory) -> Case:
    """Case 20's link table keyed by the pair, with cascading keys."""
    text = next(CASES.glob("20-*.sql")).read_text(encoding="utf-8")
    link = text[text.index("CREATE TABLE member_team_group") :]
    corrected = text.replace(
        link,
        "CREATE TABLE member_team_group (\n"
        "    member_id INTEGER NOT NULL REFERENCES member (id) ON DELETE CASCADE,\n"
        "    team_group_id INTEGER NOT NULL REFERENCES team_group (id) "
        "ON DELETE CASCADE,\n"
        "    PRIMARY KEY (member_id, team_group_id)\n);\n"
        "CREATE INDEX ix_member_team_group_team_group_id "
        "ON member_team_group (team_group_id);\n",
    )
    root = tmp_path_factory.mktemp("case20")
    return Case(root, forge_into(root, [parse_sql(corrected, source="20").spec]), {})


def test_20_e2_link_table_keyed_by_the_pair(membership: Case) -> None:
    table = load_metadata(membership.models_path).tables["member_team_group"]
    assert [c.name for c in table.primary_key.columns] == ["member_id", "team_group_id"]
    assert {fk.ondelete for fk in table.foreign_key_constraints} == {"CASCADE"}
    assert [[c.name for c in i.columns] for i in table.indexes] == [["team_group_id"]]


def test_20_e3_both_sides_reach_each_other_through_the_link(
    membership: Case,
) -> None:
    assert "member_team_group = sa.Table(" in membership.models
    for module in models_module(membership):
        link = module.member_team_group  # type: ignore[attr-defined]
        member = sa.inspect(module.Member)  # type: ignore[attr-defined]
        group = sa.inspect(module.TeamGroup)  # type: ignore[attr-defined]
        assert isinstance(link, sa.Table)
        mappers = module.Base.registry.mappers  # type: ignore[attr-defined]
        assert {m.local_table.name for m in mappers} == {"member", "team_group"}
        groups, members = (
            member.relationships["team_groups"],
            group.relationships["members"],
        )
        assert groups.secondary is link and members.secondary is link
        assert groups.mapper is group and members.mapper is member
        assert (groups.back_populates, members.back_populates) == (
            "members",
            "team_groups",
        )
        assert groups.passive_deletes and members.passive_deletes


@pytest.mark.parametrize("dialect", PG_AND_SQLITE)
def test_20_e3_e4_links_written_through_the_relationships(
    membership: Case, dialect: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url" if dialect == "postgresql" else "sqlite_url")
    migrate(membership, url, "upgrade", "head")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    if dialect == "sqlite":
        sa.event.listen(
            engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA foreign_keys=ON")
        )
    for module in models_module(membership):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with Session(engine) as session:
                ann = module.Member(id=1, handle="ann")  # type: ignore[attr-defined]
                red, blue = (
                    module.TeamGroup(id=n, label=label)  # type: ignore[attr-defined]
                    for n, label in ((1, "red"), (2, "blue"))
                )
                ann.team_groups.extend([red, blue])
                session.add(ann)
                session.commit()
                assert [m.handle for m in red.members] == ["ann"]

                # the pair is the key: the same link again is refused
                link = module.member_team_group  # type: ignore[attr-defined]
                with pytest.raises(sa.exc.IntegrityError):
                    session.execute(link.insert().values(member_id=1, team_group_id=1))
                session.rollback()

                # deleting a member leaves the links to the database's cascade
                session.delete(session.get(module.Member, 1))  # type: ignore[attr-defined]
                session.commit()
    with engine.connect() as connection:
        links = connection.execute(sa.text("SELECT count(*) FROM member_team_group"))
        assert links.scalar_one() == 0
    engine.dispose()


@pytest.mark.parametrize("dialect", PG_AND_SQLITE)
def test_20_e4_the_same_pair_twice_is_refused(
    membership: Case, dialect: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url" if dialect == "postgresql" else "sqlite_url")
    migrate(membership, url, "upgrade", "head")
    execute(
        url,
        "INSERT INTO member VALUES (1, 'm')",
        "INSERT INTO team_group VALUES (1, 'g')",
        "INSERT INTO member_team_group VALUES (1, 1)",
    )
    with pytest.raises(sa.exc.IntegrityError):
        execute(url, "INSERT INTO member_team_group VALUES (1, 1)")


# --- 21: JSONB and ARRAY columns ------------------------------------------------------


def test_21_e1_revision_qualifies_every_type(case: Callable[[str], Case]) -> None:
    body = case("21").upgrade_body()
    assert "postgresql.ARRAY(sa.Text())" in body
    assert "postgresql.ARRAY(sa.Integer())" in body
    assert "postgresql.JSONB(astext_type=sa.Text())" in body
    assert "from sqlalchemy.dialects import postgresql" in case("21").revision()
    offline_sql(case("21"))


def test_21_e2_literal_defaults_keep_their_shape(case: Callable[[str], Case]) -> None:
    body = case("21").upgrade_body()
    assert re.search(r"'tags', [^\n]*server_default=sa\.text\(\"'\{\}'\"\)", body)
    assert re.search(r"'attributes', [^\n]*server_default=sa\.text\(\"'\{\}'\"\)", body)
    assert re.search(r"'history', [^\n]*server_default=sa\.text\(\"'\[\]'\"\)", body)


def test_21_e3_models_use_postgresql_array_and_jsonb(
    case: Callable[[str], Case],
) -> None:
    models = case("21").models
    assert "tags: Mapped[list[str]]" in models
    assert "scores: Mapped[Optional[list[int]]]" in models
    assert "attributes: Mapped[dict[str, Any]]" in models
    assert "history: Mapped[list[Any]]" in models
    assert "postgresql.ARRAY(sa.Text())" in models
    for module in models_module(case("21")):
        clause = module.Article.tags.contains(["x"])  # type: ignore[attr-defined]
        assert "@>" in str(clause.compile(dialect=postgresql.dialect()))
        table = module.Base.metadata.tables["article"]  # type: ignore[attr-defined]
        for dialect, array, document in (
            (postgresql.dialect(), "TEXT[]", "JSONB"),
            (sqlite.dialect(), "JSON", "JSON"),
        ):
            types = {
                column.name: column.type.compile(dialect=dialect)
                for column in table.columns
            }
            assert (types["tags"], types["attributes"]) == (array, document)


def test_21_e4_gin_indexes_and_operator_class(case: Callable[[str], Case]) -> None:
    body = case("21").upgrade_body()
    assert (
        "create_index('ix_article_tags', ['tags'], unique=False, "
        "postgresql_using='gin')" in body
    )
    assert "postgresql_ops={'attributes': 'jsonb_path_ops'}" in body


@pytest.mark.postgres
def test_21_e5_e6_defaults_on_insert_and_no_drift(
    case: Callable[[str], Case], pg_url: str
) -> None:
    migrate(case("21"), pg_url, "upgrade", "head")
    row = execute(
        pg_url,
        "INSERT INTO article DEFAULT VALUES RETURNING tags, attributes, history",
    )[0]
    assert tuple(row) == ([], {}, [])
    assert drift(case("21"), pg_url) == []


def test_21_sqlite_keeps_lists_as_json(
    case: Callable[[str], Case], sqlite_url: str
) -> None:
    report = verify_url(sqlite_url, case("21").alembic_dir, case("21").models_path)
    assert report.steps[-1] == "no drift"
    assert (
        "sqlite, mariadb: array column article.tags is JSON"
        in case("21").results[-1].report
    )


# --- 22: indexes of the cleaned schema ------------------------------------------------


@pytest.fixture(scope="module")
def shortlinks(tmp_path_factory: pytest.TempPathFactory) -> Case:
    """Case 22 without the indexes the lint reports as duplicate or redundant."""
    text = next(CASES.glob("22-*.sql")).read_text(encoding="utf-8")
    for name in ("ux_shortlink_id", "ix_shortlink_slug", "ix_shortlink_owner_again"):
        text = re.sub(rf"CREATE (UNIQUE )?INDEX {name} ON [^;]+;", "", text)
    text = re.sub(r"CREATE INDEX ix_shortlink_owner ON [^;]+;", "", text)
    root = tmp_path_factory.mktemp("case22")
    return Case(root, forge_into(root, [parse_sql(text, source="22").spec]), {})


def test_22_e3_models_of_the_cleaned_schema(shortlinks: Case) -> None:
    models = shortlinks.models
    assert re.search(r"slug: Mapped\[str\] = mapped_column\(.*unique=True\)", models)
    assert "index=True" not in models
    assert "sa.Index('ix_shortlink_owner_created', 'owner_id', 'created_at')" in models


@pytest.mark.postgres
def test_22_e4_postgresql_has_three_shortlink_indexes(
    shortlinks: Case, pg_url: str
) -> None:
    migrate(shortlinks, pg_url, "upgrade", "head")
    count = execute(
        pg_url, "SELECT count(*) FROM pg_indexes WHERE tablename = 'shortlink'"
    )
    assert count[0][0] == 3


# --- 24: strings without a length -----------------------------------------------------


def test_24_e1_every_string_has_a_length(case: Callable[[str], Case]) -> None:
    for text in (case("24").models, case("24").revision()):
        assert not re.search(r"sa\.String\(\)", text)
    table = load_metadata(case("24").models_path).tables["tag"]
    assert table.c.label.type.length and table.c.slug.type.length
    assert isinstance(table.c.description.type, sa.Text)


def test_24_e2_every_table_compiles_for_mysql(case: Callable[[str], Case]) -> None:
    for table in load_metadata(case("24").models_path).sorted_tables:
        str(sa.schema.CreateTable(table).compile(dialect=mysql.dialect()))


def test_24_e3_unique_key_on_a_bounded_varchar(case: Callable[[str], Case]) -> None:
    table = load_metadata(case("24").models_path).tables["tag"]
    unique = [c for c in table.constraints if isinstance(c, sa.UniqueConstraint)] + [
        i for i in table.indexes if i.unique
    ]
    assert [[col.name for col in u.columns] for u in unique] == [["label"]]
    assert isinstance(table.c.label.type, sa.String)
    assert table.c.label.type.length * 4 <= 3072


@pytest.mark.parametrize("dialect", ALL_DIALECTS)
def test_24_e4_round_trip_on_every_target(
    case: Callable[[str], Case], dialect: str, request: pytest.FixtureRequest
) -> None:
    fixture = {"postgresql": "pg_url", "sqlite": "sqlite_url", "mariadb": "mariadb_url"}
    url = request.getfixturevalue(fixture[dialect])
    report = verify_url(url, case("24").alembic_dir, case("24").models_path)
    assert report.steps[-1] == "no drift"


def test_every_yaml_case_forges_from_its_request() -> None:
    """The request lists map onto apply_requests (types with commas quoted)."""
    for number in ("06", "09", "11", "13", "24"):
        specs, task = case_specs(number)
        assert specs[-1] != SchemaSpec() and task["request"]


@pytest.mark.parametrize("number", SCHEMA_CASES)
def test_spec_of_models_matches_the_case_spec(
    case: Callable[[str], Case], number: str
) -> None:
    """What the next task reads back is what this one asked for."""
    read_back = spec_from_models(case(number).models_path)
    assert render_models(read_back, project=PROJECT) == case(number).models
    asked = case_specs(number)[0][-1]
    assert [t.name for t in read_back.tables] == [t.name for t in asked.tables]


def test_11_batch_copy_with_foreign_keys_on_keeps_child_rows(tmp_path: Path) -> None:
    """A batch copy of a parent table loses no child rows when keys are enforced."""
    spec = None
    specs = []
    for name in ("shop-1-core.sql", "shop-2-auth.sql", "shop-3-indexes.sql"):
        text = (CASES.parent / "data" / "schemas" / name).read_text(encoding="utf-8")
        spec = parse_sql(text, source=name, base=spec).spec
        specs.append(spec)
    workspace = Case(tmp_path, forge_into(tmp_path, specs), {})
    assert "batch_alter_table('users'" in workspace.upgrade_body()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'shop.sqlite3'}")
    sa.event.listen(
        engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA foreign_keys=ON")
    )

    def run(action: str, target: str) -> None:
        with engine.connect() as connection:
            config = alembic_config(workspace.alembic_dir)
            config.attributes["connection"] = connection
            getattr(command, action)(config, target)
            connection.commit()

    run("upgrade", "002")
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO users (name, email) VALUES ('a', 'a@x')")
        )
        connection.execute(sa.text("INSERT INTO orders (user_id) VALUES (1)"))
    run("upgrade", "head")
    run("downgrade", "002")
    with engine.connect() as connection:
        orders = connection.execute(sa.text("SELECT count(*) FROM orders")).scalar()
        enforced = connection.execute(sa.text("PRAGMA foreign_keys")).scalar()
    engine.dispose()
    assert orders == 1 and enforced == 1
