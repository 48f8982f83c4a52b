"""Hephaestus as reviewer: design rules, migration safety, inputs and rule docs."""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import pytest

from sparc.agents.hephaestus.lint import (
    RULES,
    LintReport,
    ReviewSettings,
    lint_file,
    lint_migrations,
    lint_path,
    lint_spec,
    render_rule_docs,
)
from sparc.agents.hephaestus.lint import migrations as migration_lint
from sparc.agents.hephaestus.lint.rules import CATEGORIES, SQUAWK_RULES
from sparc.agents.hephaestus.spec import (
    Column,
    ColumnType,
    ForeignKey,
    PrimaryKey,
    SchemaSpec,
    Table,
)
from sparc.engines import Finding
from sparc.errors import InputError
from tests.conftest import CASES, EXAMPLES, REPO_ROOT, SCHEMAS

INTEGER = ColumnType(kind="integer")
SQUAWK_MISSING = migration_lint.find_squawk() is None
WORKSPACE_ENV = REPO_ROOT / "workspace_templates" / "alembic" / "env.py"


def _sql(tmp_path: Path, text: str, name: str = "schema.sql") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _codes(findings: list[Finding] | tuple[Finding, ...]) -> list[str]:
    return [f.code for f in findings]


def _of(findings: list[Finding], category: str) -> list[Finding]:
    return [f for f in findings if f.category == category]


def _case(number: str) -> Path:
    return next(CASES.glob(f"{number}-*.sql"))


# -- the registry --------------------------------------------------------------


def test_rule_codes_are_stable_shapes_with_known_categories() -> None:
    for code, rule in RULES.items():
        assert rule.code == code
        assert re.fullmatch(r"H[DM]\d{3}", code)
        assert rule.category in CATEGORIES
        assert rule.severity in ("error", "warning", "info")
        assert rule.title and rule.why and rule.fix
    assert len({rule.code for rule in SQUAWK_RULES}) == len(SQUAWK_RULES)
    assert all(rule.code in RULES for rule in SQUAWK_RULES)


def test_committed_rule_page_is_the_generated_one() -> None:
    committed = (REPO_ROOT / "docs" / "review-rules.md").read_text(encoding="utf-8")
    assert committed == render_rule_docs()
    for code in RULES:
        assert code in committed


# -- acceptance: shop step 3 with steps 1 and 2 as context ---------------------


def test_shop_step_three_reports_only_the_duplicate_email_index() -> None:
    target = SCHEMAS / "shop-3-indexes.sql"
    findings = lint_file(
        target, context=[SCHEMAS / "shop-1-core.sql", SCHEMAS / "shop-2-auth.sql"]
    )

    over = _of(findings, "over-indexing")
    assert [(f.code, f.location) for f in over] == [("HD402", f"{target}:5")]
    assert "idx_users_email" in over[0].message
    assert "users" in over[0].message and "email" in over[0].message
    assert not any("idx_orders_user_date" in f.message for f in findings)
    assert all(f.location.startswith(f"{target}:") for f in findings)


def test_shop_step_one_alone_reports_its_unindexed_foreign_keys() -> None:
    findings = lint_file(SCHEMAS / "shop-1-core.sql")
    assert [(f.code, f.message.split(" ->")[0]) for f in findings] == [
        ("HD501", "foreign key orders (user_id)"),
        ("HD501", "foreign key order_items (order_id)"),
        ("HD501", "foreign key order_items (product_id)"),
    ]


# -- case 14: money in floating point ------------------------------------------


def test_case_14_money_in_float_is_an_error_naming_table_and_column() -> None:
    findings = lint_file(_case("14"))
    types = _of(findings, "wrong-data-type")

    errors = [f for f in types if f.severity == "error"]
    assert {f.code for f in errors} == {"HD201"}
    assert ["wallet.balance" in f.message for f in errors] == [True, False]
    assert "wallet.credit_limit" in errors[1].message
    rate = [f for f in types if "fee_rate" in f.message]
    assert [(f.code, f.severity) for f in rate] == [("HD202", "info")]
    assert not any("item_count" in f.message for f in findings)


def test_case_14_fixed_schema_has_no_type_finding(tmp_path: Path) -> None:
    fixed = _sql(
        tmp_path,
        """
        CREATE TABLE wallet (
            id            INTEGER PRIMARY KEY,
            owner_ref     VARCHAR(64) NOT NULL,
            balance       NUMERIC(12, 2) NOT NULL DEFAULT 0,
            credit_limit  NUMERIC(12, 2),
            fee_rate      NUMERIC(7, 6),
            item_count    INTEGER NOT NULL DEFAULT 0
        );
        """,
    )
    assert _of(lint_file(fixed), "wrong-data-type") == []


def test_other_wrong_types_by_name_and_target(tmp_path: Path) -> None:
    path = _sql(
        tmp_path,
        """
        CREATE TABLE event (
            id          INTEGER PRIMARY KEY,
            happened_at VARCHAR(40),
            note        VARCHAR,
            is_public   CHAR(1) NOT NULL,
            grade       CHAR(1)
        );
        """,
    )
    default = lint_file(path)
    assert _codes(_of(default, "wrong-data-type")) == ["HD203", "HD205"]
    assert "event.happened_at" in default[0].message

    mariadb = lint_file(path, targets=("postgresql", "mariadb"))
    assert _codes(_of(mariadb, "wrong-data-type")) == ["HD203", "HD204", "HD205"]


# -- case 20: link table without pair uniqueness -------------------------------


def test_case_20_link_table_findings() -> None:
    findings = lint_file(_case("20"))
    by_code = {(f.code, f.message) for f in findings}

    assert any(
        code == "HD302" and "member_team_group" in msg and "member_id" in msg
        for code, msg in by_code
    )
    nullable = [f.message for f in findings if f.code == "HD303"]
    assert len(nullable) == 2
    assert any("member_id" in m for m in nullable)
    assert any("team_group_id" in m for m in nullable)
    assert len([f for f in findings if f.code == "HD304"]) == 2
    unindexed = [f.message for f in findings if f.code == "HD501"]
    assert any("(team_group_id)" in m for m in unindexed)


def test_case_20_fixed_link_table_is_clean(tmp_path: Path) -> None:
    fixed = _sql(
        tmp_path,
        """
        CREATE TABLE member (id INTEGER PRIMARY KEY, handle VARCHAR(40) NOT NULL);
        CREATE TABLE team_group (id INTEGER PRIMARY KEY, label VARCHAR(80) NOT NULL);
        CREATE TABLE member_team_group (
            member_id INTEGER NOT NULL REFERENCES member (id) ON DELETE CASCADE,
            team_group_id INTEGER NOT NULL
                REFERENCES team_group (id) ON DELETE CASCADE,
            PRIMARY KEY (member_id, team_group_id)
        );
        CREATE INDEX ix_member_team_group_team_group_id
            ON member_team_group (team_group_id);
        """,
    )
    findings = lint_file(fixed)
    assert _of(findings, "missing-constraint") == []
    assert _of(findings, "unindexed-foreign-key") == []


def test_entity_referenced_by_others_is_not_a_link_table(tmp_path: Path) -> None:
    path = _sql(
        tmp_path,
        """
        CREATE TABLE film (film_id INTEGER PRIMARY KEY);
        CREATE TABLE store (store_id INTEGER PRIMARY KEY);
        CREATE TABLE inventory (
            inventory_id INTEGER PRIMARY KEY,
            film_id INTEGER NOT NULL REFERENCES film (film_id),
            store_id INTEGER NOT NULL REFERENCES store (store_id)
        );
        CREATE INDEX ix_inventory_store_film ON inventory (store_id, film_id);
        CREATE TABLE rental (
            rental_id INTEGER PRIMARY KEY,
            inventory_id INTEGER NOT NULL REFERENCES inventory (inventory_id)
        );
        """,
    )
    assert _of(lint_file(path), "missing-constraint") == []


# -- case 22: duplicate and redundant indexes ----------------------------------


def test_case_22_reports_exactly_the_redundant_indexes() -> None:
    findings = _of(lint_file(_case("22")), "over-indexing")
    assert [(f.code, f.message.split(" ")[1], f.severity) for f in findings] == [
        ("HD401", "ux_shortlink_id", "warning"),
        ("HD402", "ix_shortlink_slug", "warning"),
        ("HD404", "ix_shortlink_owner", "warning"),
        ("HD403", "ix_shortlink_owner_again", "warning"),
    ]
    assert "ix_shortlink_owner_created" in findings[2].message
    assert "ix_shortlink_owner" in findings[3].message.split("identical to")[1]
    assert not any("ux_link_note_link" in f.message for f in lint_file(_case("22")))


def test_case_22_cleaned_schema_has_no_over_indexing(tmp_path: Path) -> None:
    cleaned = _sql(
        tmp_path,
        """
        CREATE TABLE shortlink (
            id          INTEGER PRIMARY KEY,
            slug        VARCHAR(16) NOT NULL UNIQUE,
            target_url  VARCHAR(2048) NOT NULL,
            owner_id    INTEGER NOT NULL,
            created_at  TIMESTAMP NOT NULL
        );
        CREATE INDEX ix_shortlink_owner_created ON shortlink (owner_id, created_at);
        CREATE TABLE link_note (
            link_id INTEGER NOT NULL, lang CHAR(2) NOT NULL, body VARCHAR(500) NOT NULL,
            PRIMARY KEY (link_id, lang)
        );
        CREATE UNIQUE INDEX ux_link_note_link ON link_note (link_id);
        """,
    )
    assert _of(lint_file(cleaned), "over-indexing") == []


def test_indexes_that_only_look_redundant_are_not_reported(tmp_path: Path) -> None:
    path = _sql(
        tmp_path,
        """
        CREATE TABLE doc (
            id INTEGER PRIMARY KEY,
            owner_id INTEGER NOT NULL,
            title TEXT NOT NULL,
            archived BOOLEAN NOT NULL DEFAULT false,
            created_at TIMESTAMP NOT NULL,
            UNIQUE (owner_id, title)
        );
        CREATE INDEX ix_doc_title_owner ON doc (title, owner_id);
        CREATE INDEX ix_doc_owner_live ON doc (owner_id) WHERE NOT archived;
        CREATE INDEX ix_doc_title_lower ON doc (lower(title));
        CREATE INDEX ix_doc_title_hash ON doc USING hash (title);
        CREATE INDEX ix_doc_title_pattern ON doc (title text_pattern_ops);
        CREATE INDEX ix_doc_owner_created ON doc (owner_id, created_at DESC);
        CREATE UNIQUE INDEX ux_doc_owner_created ON doc (owner_id, created_at);
        """,
    )
    assert _of(lint_file(path), "over-indexing") == []


def test_unique_index_is_preferred_over_its_plain_twin(tmp_path: Path) -> None:
    path = _sql(
        tmp_path,
        """
        CREATE TABLE tag (id INTEGER PRIMARY KEY, label TEXT NOT NULL);
        CREATE INDEX ix_tag_label ON tag (label);
        CREATE UNIQUE INDEX ux_tag_label ON tag (label);
        """,
    )
    over = _of(lint_file(path), "over-indexing")
    assert [(f.code, f.message.split(" ")[1]) for f in over] == [
        ("HD403", "ix_tag_label")
    ]


# -- cases 19, 10, 03, 04: composite keys and clean inputs ---------------------


def test_case_19_unindexed_composite_foreign_key(tmp_path: Path) -> None:
    findings = lint_file(_case("19"))
    assert [(f.code, f.category) for f in findings] == [
        ("HD501", "unindexed-foreign-key")
    ]
    assert "parking_permit (building_id, unit_no)" in findings[0].message

    text = _case("19").read_text(encoding="utf-8")
    indexed = _sql(
        tmp_path,
        text
        + "\nCREATE INDEX ix_permit_unit ON parking_permit (unit_no, building_id);",
    )
    assert _of(lint_file(indexed), "unindexed-foreign-key") == []


def test_case_10_poll_id_index_is_neither_missing_nor_duplicate() -> None:
    assert lint_file(_case("10")) == []


@pytest.mark.parametrize("number", ["03", "04", "10"])
def test_clean_cases_have_no_findings(number: str) -> None:
    assert lint_file(_case(number)) == []


# -- case 16: reserved words ---------------------------------------------------


def test_case_16_reserved_identifiers(tmp_path: Path) -> None:
    naming = _of(lint_file(_case("16")), "naming")
    assert {f.message.split(":")[0] for f in naming} == {
        "table user",
        "table group",
        "table order",
        "column order.group",
        "column order.desc",
    }
    hints = [f.hint for f in lint_file(_case("16")) if f.code == "HD501"]
    assert 'CREATE INDEX ix_order_group ON "order" ("group")' in hints

    renamed = _sql(
        tmp_path,
        """
        CREATE TABLE app_user (id INTEGER PRIMARY KEY, handle VARCHAR(40) NOT NULL);
        CREATE TABLE user_group (id INTEGER PRIMARY KEY, label VARCHAR(80) NOT NULL);
        CREATE TABLE customer_order (
            id INTEGER PRIMARY KEY,
            app_user_id INTEGER NOT NULL REFERENCES app_user (id),
            user_group_id INTEGER REFERENCES user_group (id),
            description VARCHAR(200)
        );
        """,
    )
    assert _of(lint_file(renamed), "naming") == []


def test_mariadb_reserved_words_only_when_mariadb_is_a_target(tmp_path: Path) -> None:
    path = _sql(tmp_path, "CREATE TABLE film (id INTEGER PRIMARY KEY, fulltext TEXT);")
    assert _of(lint_file(path), "naming") == []
    mariadb = _of(lint_file(path, targets=("mariadb",)), "naming")
    assert [f.code for f in mariadb] == ["HD601"]
    assert "MariaDB" in mariadb[0].message


def test_mixed_plural_and_case_names(tmp_path: Path) -> None:
    path = _sql(
        tmp_path,
        """
        CREATE TABLE users (id INTEGER PRIMARY KEY, "FirstName" TEXT);
        CREATE TABLE orders (id INTEGER PRIMARY KEY);
        CREATE TABLE order_item (id INTEGER PRIMARY KEY);
        """,
    )
    naming = _of(lint_file(path), "naming")
    assert [(f.code, f.location) for f in naming] == [
        ("HD604", f"{path}:2"),
        ("HD603", f"{path}:4"),
    ]
    assert "order_item is singular" in naming[1].message


def test_identifier_over_63_bytes() -> None:
    # PostgreSQL's parser truncates long names, so this comes from a spec
    name = "é" * 32
    spec = SchemaSpec(
        tables=[
            Table(
                name="t",
                columns=[
                    Column(name="id", type=INTEGER),
                    Column(name=name, type=INTEGER),
                ],
                primary_key=PrimaryKey(columns=["id"]),
            )
        ]
    )
    assert [(f.code, f.location) for f in lint_spec(spec)] == [("HD602", f"t.{name}")]


# -- missing foreign keys, primary keys, normalization -------------------------


def test_reference_columns_without_foreign_key(tmp_path: Path) -> None:
    path = _sql(
        tmp_path,
        """
        CREATE TABLE customers (id INTEGER PRIMARY KEY);
        CREATE TABLE staff (staff_id INTEGER PRIMARY KEY);
        CREATE TABLE orders (
            id INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL,
            manager_staff_id INTEGER,
            owner_id INTEGER,
            staff_id TEXT
        );
        """,
    )
    missing = _of(lint_file(path), "missing-foreign-key")
    assert [f.message.split(" ")[0] for f in missing] == [
        "orders.customer_id",
        "orders.manager_staff_id",
    ]
    assert "customers.id" in missing[0].message
    assert missing[0].location == f"{path}:6"


def test_table_without_primary_key(tmp_path: Path) -> None:
    path = _sql(tmp_path, "CREATE TABLE audit_log (message TEXT NOT NULL);")
    assert [(f.code, f.location) for f in lint_file(path)] == [("HD301", f"{path}:1")]


def test_repeating_groups_but_not_address_lines(tmp_path: Path) -> None:
    path = _sql(
        tmp_path,
        """
        CREATE TABLE contact (
            id INTEGER PRIMARY KEY,
            phone1 TEXT, phone2 TEXT, phone3 TEXT,
            address TEXT, address2 TEXT,
            address_line_1 TEXT, address_line_2 TEXT,
            ipv4 TEXT, ipv6 TEXT,
            tags TEXT,
            labels TEXT[]
        );
        """,
    )
    found = _of(lint_file(path), "normalization")
    assert [(f.code, f.severity) for f in found] == [
        ("HD701", "warning"),
        ("HD702", "info"),
    ]
    assert "phone1, phone2, phone3" in found[0].message
    assert "contact.tags" in found[1].message


# -- chinook and pagila --------------------------------------------------------


def test_chinook_findings_are_the_expected_ones() -> None:
    path = SCHEMAS / "chinook.sql"
    assert [(f.code, f.location) for f in lint_file(path)] == [
        ("HD304", f"{path}:176"),
        ("HD404", f"{path}:179"),
        ("HD304", f"{path}:181"),
    ]


def test_pagila_findings_are_the_expected_ones() -> None:
    path = SCHEMAS / "pagila.sql"
    findings = lint_file(path)
    assert [(f.code, f.location) for f in findings] == [
        ("HD101", f"{path}:1780"),
        ("HD501", f"{path}:2676"),
        ("HD501", f"{path}:2708"),
        ("HD501", f"{path}:2868"),
        ("HD501", f"{path}:2884"),
        ("HD501", f"{path}:2892"),
        ("HD501", f"{path}:2900"),
        ("HD501", f"{path}:2908"),
    ]
    # triggers, the tsvector column, its GiST index and the partitions are fine
    for word in ("last_update", "fulltext", "payment", "film_actor"):
        assert not any(word in f.message for f in findings)


# -- inputs: in-memory spec, markdown, models, suppression, settings -----------


def test_lint_spec_locates_by_table_and_column_without_positions() -> None:
    spec = SchemaSpec(
        tables=[
            Table(
                name="parent",
                columns=[Column(name="id", type=INTEGER, nullable=False)],
                primary_key=PrimaryKey(columns=["id"]),
            ),
            Table(
                name="child",
                columns=[
                    Column(name="id", type=INTEGER, nullable=False),
                    Column(name="parent_id", type=INTEGER),
                    Column(name="price", type=ColumnType(kind="double")),
                ],
                primary_key=PrimaryKey(columns=["id"]),
                foreign_keys=[
                    ForeignKey(
                        columns=["parent_id"], ref_table="parent", ref_columns=["id"]
                    )
                ],
            ),
        ]
    )
    findings = lint_spec(spec)
    assert [(f.code, f.location) for f in findings] == [
        ("HD501", "child.parent_id"),
        ("HD201", "child.price"),
    ]
    located = lint_spec(spec, locations={"child.price": "design.sql:7"})
    assert [(f.code, f.location) for f in located][-1] == ("HD201", "design.sql:7")


def test_markdown_findings_use_markdown_lines(tmp_path: Path) -> None:
    path = tmp_path / "design.md"
    path.write_text(
        "# Design\n\nSome prose.\n\n```sql\nCREATE TABLE wallet (\n"
        "    id INTEGER PRIMARY KEY,\n    balance REAL\n);\n```\n",
        encoding="utf-8",
    )
    assert [(f.code, f.location) for f in lint_file(path)] == [("HD201", f"{path}:8")]


def test_models_file_is_linted_with_class_lines(tmp_path: Path) -> None:
    models = tmp_path / "models.py"
    models.write_text(
        textwrap.dedent(
            """
            from __future__ import annotations

            import sqlalchemy as sa
            from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


            class Base(DeclarativeBase):
                pass


            class Wallet(Base):
                __tablename__ = "wallet"

                id: Mapped[int] = mapped_column(primary_key=True)
                balance: Mapped[float] = mapped_column(sa.Double())
            """
        ),
        encoding="utf-8",
    )
    report = lint_path(models)
    assert [(f.code, f.location) for f in report.findings] == [
        ("HD201", f"{models}:16")
    ]


def test_inline_comment_silences_a_code(tmp_path: Path) -> None:
    path = _sql(
        tmp_path,
        """
        CREATE TABLE account (id INTEGER PRIMARY KEY, email TEXT UNIQUE);
        -- sparc: ignore HD402
        CREATE INDEX ix_account_email ON account (email);
        CREATE TABLE audit (
            message TEXT  -- sparc: ignore HD301
        );
        """,
    )
    assert lint_file(path) == []
    report = lint_path(path)
    assert (report.findings, report.suppressed) == ((), 2)


def test_settings_ignore_and_relevel(tmp_path: Path) -> None:
    path = _case("14")
    settings = ReviewSettings(ignore=("HD202",), severity={"HD201": "warning"})
    report = lint_path(path, settings=settings)
    assert [(f.code, f.severity) for f in report.findings] == [
        ("HD201", "warning"),
        ("HD201", "warning"),
    ]
    assert report.suppressed == 1

    with pytest.raises(ValueError, match="HD999"):
        ReviewSettings(ignore=("HD999",))
    with pytest.raises(ValueError, match="oracle"):
        ReviewSettings(targets=("oracle",))


def test_lint_path_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="missing.sql: does not exist; check the"):
        lint_path(tmp_path / "missing.sql")
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    with pytest.raises(InputError):
        lint_path(tmp_path / "notes.txt")


def test_workspace_lints_backlog_references_in_order(tmp_path: Path) -> None:
    workspace = tmp_path / "shop"
    shutil.copytree(EXAMPLES / "shop", workspace)
    report = lint_path(workspace)

    assert report.sources == (
        "docs/data/shop-1-core.sql",
        "docs/data/shop-queries.sql",
        "docs/data/shop-2-auth.sql",
        "docs/data/shop-3-indexes.sql",
    )
    step_three = [
        f for f in report.findings if f.location.startswith("docs/data/shop-3")
    ]
    assert [(f.code, f.location) for f in step_three] == [
        ("HD402", "docs/data/shop-3-indexes.sql:5")
    ]


# -- migrations ----------------------------------------------------------------

_FIRST = '''\
"""core tables"""
import sqlalchemy as sa
from alembic import op

revision = "001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "account",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("handle", sa.String(40), nullable=False),
        sa.Column("note", sa.String(200)),
        sa.Column("price", sa.Numeric(10, 4)),
    )
    op.create_table(
        "session",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "account_id",
            sa.Integer(),
            sa.ForeignKey("account.id", ondelete="CASCADE"),
            nullable=False,
        ),
    )
    op.create_index("ix_session_account_id", "session", ["account_id"])
    op.execute("CREATE VIEW account_note AS SELECT id, note FROM account")


def downgrade() -> None:
    op.drop_table("session")
    op.drop_table("account")
'''


def _alembic(tmp_path: Path, upgrade_body: str) -> Path:
    folder = tmp_path / "alembic"
    versions = folder / "versions"
    versions.mkdir(parents=True)
    (versions / "001_core.py").write_text(_FIRST, encoding="utf-8")
    body = textwrap.indent(textwrap.dedent(upgrade_body).strip(), "    ")
    (versions / "002_change.py").write_text(
        '"""change"""\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
        'revision = "002"\ndown_revision = "001"\n\n\n'
        f"def upgrade() -> None:\n{body}\n\n\ndef downgrade() -> None:\n    pass\n",
        encoding="utf-8",
    )
    return folder


needs_squawk = pytest.mark.skipif(SQUAWK_MISSING, reason="squawk is not installed")


@needs_squawk
def test_each_revision_is_checked_on_its_own(tmp_path: Path) -> None:
    folder = _alembic(
        tmp_path, 'op.create_index("ix_account_handle", "account", ["handle"])'
    )
    findings = lint_migrations(folder, display="alembic")
    assert [(f.code, f.location) for f in findings] == [
        ("HM101", "alembic/versions/002_change.py:10")
    ]
    assert "require-concurrent-index-creation" in findings[0].message
    assert "CREATE INDEX ix_account_handle" in findings[0].message


@needs_squawk
def test_case_06_not_null_column_without_default(tmp_path: Path) -> None:
    unsafe = _alembic(
        tmp_path / "unsafe",
        'op.add_column("account", sa.Column("is_verified", sa.Boolean(), '
        "nullable=False))",
    )
    codes = _codes(lint_migrations(unsafe))
    assert codes == ["HM012", "HM116"]

    safe = _alembic(
        tmp_path / "safe",
        'op.add_column("account", sa.Column("is_verified", sa.Boolean(), '
        "nullable=False, server_default=sa.false()))",
    )
    assert _of(lint_migrations(safe), "migration-safety") == []


@needs_squawk
def test_sqlite_copy_views_narrowing_and_mariadb(tmp_path: Path) -> None:
    folder = _alembic(
        tmp_path,
        """
        with op.batch_alter_table("account") as batch_op:
            batch_op.alter_column(
                "handle", existing_type=sa.String(40), type_=sa.String(20)
            )
            batch_op.alter_column(
                "note", existing_type=sa.String(200), type_=sa.String(300)
            )
        op.drop_column("account", "note")  # sparc: ignore HM113
        """,
    )
    default = lint_migrations(folder, display="alembic")
    assert [(f.code, f.location.rsplit(":", 1)[1]) for f in default] == [
        ("HM010", "12"),
        ("HM020", "12"),
        ("HM106", "12"),
        ("HM106", "15"),
        ("HM011", "17"),
    ]
    assert "session" in default[0].message
    assert "account_note" in default[-1].message

    mariadb = lint_migrations(folder, targets=("mariadb",))
    copies = [f for f in mariadb if f.code == "HM030"]
    assert len(copies) == 1 and "account.handle" in copies[0].message


@needs_squawk
def test_sqlite_copy_guarded_by_the_environment(tmp_path: Path) -> None:
    batch = """
        with op.batch_alter_table("account") as batch_op:
            batch_op.alter_column(
                "handle", existing_type=sa.String(40), type_=sa.String(20)
            )
        """
    guarded = _alembic(tmp_path / "guarded", batch)
    shutil.copy(WORKSPACE_ENV, guarded / "env.py")
    assert "HM010" not in _codes(lint_migrations(guarded))

    # a mention in a comment guards nothing
    commented = _alembic(tmp_path / "commented", batch)
    (commented / "env.py").write_text(
        "# PRAGMA foreign_keys=OFF would be needed here\n", encoding="utf-8"
    )
    assert "HM010" in _codes(lint_migrations(commented))


@needs_squawk
def test_unique_constraint_is_not_told_to_use_not_valid(tmp_path: Path) -> None:
    unique = _alembic(
        tmp_path / "unique",
        'op.create_unique_constraint("uq_account_handle", "account", ["handle"])',
    )
    codes = _codes(lint_migrations(unique))
    assert "HM111" in codes and "HM103" not in codes

    check = _alembic(
        tmp_path / "check",
        'op.create_check_constraint("ck_account_handle", "account", "handle <> \'\'")',
    )
    assert "HM103" in _codes(lint_migrations(check))


def test_missing_squawk_is_an_info_finding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migration_lint, "find_squawk", lambda: None)
    folder = _alembic(tmp_path, 'op.drop_column("account", "price")')
    findings = lint_migrations(folder, display="alembic")
    assert [(f.code, f.severity, f.location) for f in findings] == [
        ("HM001", "info", "alembic")
    ]


def test_revision_that_cannot_render_offline(tmp_path: Path) -> None:
    folder = _alembic(tmp_path, 'raise RuntimeError("needs a live database")')
    findings = lint_migrations(folder, display="alembic")
    broken = [f for f in findings if f.code == "HM002"]
    assert len(broken) == 1
    assert "needs a live database" in broken[0].message
    assert broken[0].location == "alembic/versions/002_change.py:9"


@needs_squawk
def test_lint_path_dispatches_an_alembic_folder(tmp_path: Path) -> None:
    folder = _alembic(tmp_path, 'op.drop_column("account", "price")')
    report = lint_path(folder)
    assert isinstance(report, LintReport)
    assert _codes(report.findings) == ["HM113"]
