"""Persona cards: mojibake repair, parsing, errors, registry routing, matrix."""

from __future__ import annotations

import ast
from pathlib import Path

import pydantic
import pytest
from structlog.testing import capture_logs

from sparc.errors import PersonaCardError, WorkflowError
from sparc.persona import (
    MAX_CARD_BYTES,
    PersonaCard,
    PersonaRegistry,
    PhaseOwnership,
    format_ownership_matrix,
    load_card,
    parse_card,
    repair_mojibake,
    slugify,
)
from sparc.workflow import SPARC_PHASES

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "hephaestus-persona.md"
SEED = ROOT.parent / "shared" / "seeds" / "hephaestus-persona.md"
SHIPPED = ROOT / "personas"

REAL_OWNERSHIP = [
    PhaseOwnership(
        phase="specification",
        primary=False,
        support=True,
        deliverable="Review data requirements",
    ),
    PhaseOwnership(
        phase="pseudocode",
        primary=False,
        support=True,
        deliverable="Validate data structures",
    ),
    PhaseOwnership(
        phase="architecture",
        primary=False,
        support=True,
        deliverable="Schema design input",
    ),
    PhaseOwnership(phase="planning", primary=False, support=False, deliverable=None),
    PhaseOwnership(
        phase="refinement",
        primary=True,
        support=False,
        deliverable="Migrations, indices, queries",
    ),
    PhaseOwnership(
        phase="completion",
        primary=False,
        support=True,
        deliverable="Production DB setup",
    ),
]

CARD = """\
# 🧪 Tessa (Test Analyst)

### 0. Initialization
"🧪 Ready."

### 1. Core Responsibility
Checks things
thoroughly.

Second paragraph.

### 2. SPARC Phase Ownership
| Phase | Primary | Support | Deliverable |
|-------|---------|---------|-------------|
| Specification | ✗ | ✓ | Criteria |
| Pseudocode | ✗ | ✗ | — |
| Architecture | ✗ | ✗ | — |
| Planning | ✗ | ✗ | - |
| Refinement | ✓ | ✗ | Tests |
| Completion | N | y | Evidence |

### 3. Notes
Free text.
"""


def _card(text: str, key: str) -> PersonaCard:
    return parse_card(text, source=f"{key}.md")


def _mutated(old: str, new: str) -> str:
    assert old in CARD
    return CARD.replace(old, new, 1)


# --------------------------------------------------------------------- fixture


def test_fixture_is_the_seed_byte_for_byte() -> None:
    """The test fixture is an untouched copy of the card as it arrived."""
    if not SEED.exists():
        pytest.skip(f"the seed card {SEED} is not on this machine")
    assert FIXTURE.read_bytes() == SEED.read_bytes()


def test_real_card_arrived_damaged() -> None:
    raw = FIXTURE.read_text(encoding="utf-8")
    assert "| Refinement | âœ“ | âœ— |" in raw
    assert raw.startswith("# ðŸ”¨ Hephaestus")


def test_real_card_parses_to_its_ownership_table() -> None:
    card = load_card(FIXTURE)

    assert card.ownership == REAL_OWNERSHIP
    assert card.key == "hephaestus-persona"
    assert card.name == "Hephaestus"
    assert card.role == "Database Engineer"
    assert card.specialist == "database-engineer"
    assert card.emoji == "🔨"
    assert card.title == "🔨 Hephaestus (Database Engineer)"
    assert card.initialization == (
        "🔨 Ready to forge database architecture. Show me the schema requirements."
    )
    assert card.responsibility.startswith("Schema design, Alembic/Prisma migrations")
    assert card.body.startswith("# 🔨 Hephaestus (Database Engineer)\n")
    assert "| Refinement | ✓ | ✗ | Migrations, indices, queries |" in card.body
    assert "| Planning | ✗ | ✗ | — |" in card.body
    assert "├── alembic.ini" in card.body


def test_real_card_helpers_answer_from_the_table() -> None:
    card = load_card(FIXTURE)

    assert [card.is_primary(p) for p in SPARC_PHASES] == [
        False,
        False,
        False,
        False,
        True,
        False,
    ]
    assert [card.is_support(p) for p in SPARC_PHASES] == [
        True,
        True,
        True,
        False,
        False,
        True,
    ]
    assert card.deliverable("Refinement") == "Migrations, indices, queries"
    assert card.deliverable("planning") is None
    with pytest.raises(WorkflowError, match="unknown SPARC phase 'deploy'"):
        card.is_primary("deploy")


def test_repairing_the_real_card_matches_a_strict_redecode() -> None:
    """The whole card comes back as the UTF-8 it was before cp1252 damaged it."""
    raw = FIXTURE.read_text(encoding="utf-8")
    expected = raw.encode("cp1252").decode("utf-8")

    repaired = repair_mojibake(raw)

    assert repaired == expected
    assert repaired.count("\n") == raw.count("\n")
    assert "â" not in repaired and "ð" not in repaired
    assert repaired.count("✓") == 5 and repaired.count("✗") == 7


def test_loading_the_damaged_card_logs_the_repair() -> None:
    with capture_logs() as logs:
        load_card(FIXTURE)

    repaired = [e for e in logs if e["event"] == "persona_card_mojibake_repaired"]
    assert repaired == [
        {
            "event": "persona_card_mojibake_repaired",
            "log_level": "warning",
            "path": str(FIXTURE),
            "lines": 26,
        }
    ]


# --------------------------------------------------------------- shipped cards


def test_shipped_hephaestus_table_equals_the_real_card() -> None:
    shipped = load_card(SHIPPED / "hephaestus.md")
    real = load_card(FIXTURE)

    assert shipped.ownership == real.ownership == REAL_OWNERSHIP
    assert (shipped.name, shipped.role, shipped.emoji) == (
        real.name,
        real.role,
        real.emoji,
    )
    assert shipped.key == "hephaestus"


def test_shipped_cards_are_clean_utf8() -> None:
    """Shipped cards need no repair, and repairing them changes nothing."""
    paths = sorted(SHIPPED.glob("*.md"))
    assert [p.stem for p in paths] == [
        "deployment-engineer",
        "designer",
        "documentation",
        "hephaestus",
        "orchestrator",
        "planner",
        "python-engineer",
        "quality-engineer",
        "specification-analyst",
    ]
    for path in paths:
        text = path.read_bytes().decode("utf-8")
        assert repair_mojibake(text) == text, path.name
        assert load_card(path).body == text


def test_builtin_registry_loads_every_shipped_card() -> None:
    registry = PersonaRegistry.builtin()

    assert registry.keys == sorted(p.stem for p in SHIPPED.glob("*.md"))
    for card in registry:
        assert card.name and card.role and card.emoji, card.key
        assert card.initialization and card.responsibility, card.key
        assert [row.phase for row in card.ownership] == list(SPARC_PHASES)


def test_shipped_cards_route_every_phase() -> None:
    """One primary per phase, two in Refinement (by specialist), support everywhere."""
    registry = PersonaRegistry.builtin()

    for phase in SPARC_PHASES:
        primaries = sorted(c.key for c in registry if c.is_primary(phase))
        if phase == "refinement":
            assert primaries == ["hephaestus", "python-engineer"]
        else:
            assert len(primaries) == 1, (phase, primaries)
        assert registry.support(phase), phase

    assert registry.primary("specification").key == "specification-analyst"
    assert registry.primary("pseudocode").key == "designer"
    assert registry.primary("architecture").key == "designer"
    assert registry.primary("planning").key == "planner"
    assert registry.primary("completion").key == "deployment-engineer"
    assert registry.get("orchestrator").is_support("planning")
    assert not any(
        c.is_primary(p) for c in [registry.get("orchestrator")] for p in SPARC_PHASES
    )
    assert registry.get("quality-engineer").is_support("refinement")
    assert registry.get("quality-engineer").is_support("completion")


def test_hephaestus_is_never_in_planning() -> None:
    registry = PersonaRegistry.builtin()

    assert "hephaestus" not in [c.key for c in registry.support("planning")]
    assert registry.primary("planning").key != "hephaestus"
    assert [c.key for c in registry.support("architecture")] == [
        "deployment-engineer",
        "hephaestus",
        "planner",
        "python-engineer",
    ]


# ----------------------------------------------------------------- the matrix


def test_matrix_has_one_row_per_persona_and_a_legend() -> None:
    registry = PersonaRegistry.builtin()
    lines = format_ownership_matrix(registry).splitlines()

    header = lines[0]
    assert header.split() == ["persona", "specialist", *SPARC_PHASES]
    assert set(lines[1]) == {"-", " "}
    rows = lines[2 : 2 + len(registry)]
    assert [row.split()[0] for row in rows] == registry.keys
    assert lines[2 + len(registry)] == ""
    assert lines[-3].startswith("primary: ")
    assert lines[-2].startswith("support: ")
    assert lines[-1].startswith("blank: ")

    def cells(key: str) -> list[str]:
        row = next(r for r in rows if r.split()[0] == key).ljust(len(header))
        starts = [header.index(phase) for phase in SPARC_PHASES]
        ends = [*starts[1:], len(header) + 1]
        return [row[a:b].strip() for a, b in zip(starts, ends, strict=True)]

    assert cells("hephaestus") == [
        "support",
        "support",
        "support",
        "",
        "primary",
        "support",
    ]
    assert cells("designer") == ["", "primary", "primary", "support", "", ""]
    assert "hephaestus             database-engineer" in "\n".join(rows)


def test_matrix_has_no_trailing_spaces() -> None:
    text = format_ownership_matrix(PersonaRegistry.builtin())
    assert all(line == line.rstrip() for line in text.splitlines())
    assert text.endswith("\n")


# -------------------------------------------------------------------- routing


def test_refinement_is_routed_by_specialist() -> None:
    registry = PersonaRegistry.builtin()

    assert registry.primary("refinement", "database-engineer").key == "hephaestus"
    assert registry.primary("Refinement", "python-engineer").key == "python-engineer"
    assert registry.primary("refinement", "Database Engineer").key == "hephaestus"


def test_single_owner_ignores_the_specialist() -> None:
    registry = PersonaRegistry.builtin()

    owner = registry.primary("specification", "database-engineer")

    assert owner.key == "specification-analyst"


def test_unknown_specialist_lists_the_candidates() -> None:
    registry = PersonaRegistry.builtin()

    with pytest.raises(PersonaCardError) as caught:
        registry.primary("refinement", "rust-engineer")

    assert str(caught.value) == (
        "no persona primary for refinement has specialist 'rust-engineer'; "
        "candidates: hephaestus (database-engineer), python-engineer "
        "(python-engineer)"
    )
    assert caught.value.exit_code == 2


def test_several_owners_need_a_specialist() -> None:
    with pytest.raises(PersonaCardError) as caught:
        PersonaRegistry.builtin().primary("refinement")

    assert str(caught.value) == (
        "several personas are primary for refinement: hephaestus "
        "(database-engineer), python-engineer (python-engineer); give the task a "
        "specialist to choose one"
    )


def test_a_phase_without_owner_is_an_error() -> None:
    registry = PersonaRegistry([_card(CARD, "tessa")])

    with pytest.raises(PersonaCardError) as caught:
        registry.primary("planning")

    assert str(caught.value) == (
        "no persona card is primary for planning; mark one card's Planning row "
        "✓ in its Primary column"
    )


def test_two_cards_with_the_same_specialist_are_ambiguous() -> None:
    other = _card(CARD.replace("Tessa", "Tomas"), "tomas")
    registry = PersonaRegistry([_card(CARD, "tessa"), other])

    with pytest.raises(PersonaCardError) as caught:
        registry.primary("refinement", "test-analyst")

    assert str(caught.value) == (
        "more than one persona primary for refinement has specialist "
        "'test-analyst'; candidates: tessa (test-analyst), tomas (test-analyst)"
    )


def test_support_is_sorted_and_can_exclude_the_primary() -> None:
    registry = PersonaRegistry.builtin()

    assert [c.key for c in registry.support("completion")] == [
        "documentation",
        "hephaestus",
        "orchestrator",
        "quality-engineer",
    ]
    assert [c.key for c in registry.support("completion", exclude="hephaestus")] == [
        "documentation",
        "orchestrator",
        "quality-engineer",
    ]
    assert [c.key for c in registry.support("refinement")] == ["quality-engineer"]


def test_by_specialist_and_get() -> None:
    registry = PersonaRegistry.builtin()

    assert [c.key for c in registry.by_specialist("database-engineer")] == [
        "hephaestus"
    ]
    assert registry.by_specialist("astronaut") == []
    assert registry.get("planner").name == "Chronos"
    assert "planner" in registry and "nobody" not in registry
    with pytest.raises(PersonaCardError) as caught:
        registry.get("nobody")
    assert str(caught.value) == (
        "no persona card 'nobody'; known personas: deployment-engineer, designer, "
        "documentation, hephaestus, orchestrator, planner, python-engineer, "
        "quality-engineer, specification-analyst"
    )


def test_unknown_phase_is_refused_by_the_registry() -> None:
    with pytest.raises(WorkflowError, match="unknown SPARC phase 'testing'"):
        PersonaRegistry.builtin().support("testing")


def test_workspace_cards_override_the_builtin_ones(tmp_path: Path) -> None:
    first = tmp_path / "first"
    second = tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "hephaestus.md").write_text(
        CARD.replace("Tessa (Test Analyst)", "Hephaestus (Data Smith)"),
        encoding="utf-8",
    )
    (second / "hephaestus.md").write_text(
        CARD.replace("Tessa (Test Analyst)", "Hephaestus (Database Engineer)"),
        encoding="utf-8",
    )
    (first / "tessa.md").write_text(CARD, encoding="utf-8")
    (first / "notes.txt").write_text("not a card", encoding="utf-8")

    plain = PersonaRegistry.from_dirs(first, second)
    merged = PersonaRegistry.from_dirs(first, second, builtin=True)

    assert plain.keys == ["hephaestus", "tessa"]
    assert plain.get("hephaestus").source == str(second / "hephaestus.md")
    assert merged.get("hephaestus").is_primary("specification") is False
    assert merged.get("hephaestus").is_support("specification") is True
    assert merged.get("hephaestus").deliverable("refinement") == "Tests"
    assert "designer" in merged and "tessa" in merged
    assert len(merged) == 10
    assert PersonaRegistry.builtin().get("hephaestus").deliverable("refinement") == (
        "Migrations, indices, queries"
    )


def test_missing_persona_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PersonaCardError) as caught:
        PersonaRegistry.from_dirs(tmp_path / "nope")

    assert str(caught.value) == (
        f"{tmp_path / 'nope'}: persona folder does not exist; create it or leave it out"
    )


# -------------------------------------------------------------------- parsing


def test_minimal_card_parses() -> None:
    card = _card(CARD, "Tessa")

    assert card.key == "tessa"
    assert (card.emoji, card.name, card.role) == ("🧪", "Tessa", "Test Analyst")
    assert card.specialist == "test-analyst"
    assert card.initialization == "🧪 Ready."
    assert card.responsibility == "Checks things thoroughly."
    assert card.ownership[3] == PhaseOwnership(
        phase="planning", primary=False, support=False, deliverable=None
    )
    assert card.ownership[5] == PhaseOwnership(
        phase="completion", primary=False, support=True, deliverable="Evidence"
    )
    assert card.body == CARD


def test_card_without_emoji_and_with_crlf() -> None:
    text = CARD.replace("# 🧪 Tessa", "# Tessa Lane").replace("\n", "\r\n")

    card = _card(text, "tessa")

    assert (card.emoji, card.name) == ("", "Tessa Lane")
    assert card.title == "Tessa Lane (Test Analyst)"
    assert "\r" not in card.body


def test_rows_in_any_order_and_columns_reordered() -> None:
    text = _mutated(
        "| Phase | Primary | Support | Deliverable |",
        "| Deliverable | Phase | Support | Primary |",
    )
    table = [
        "| Criteria | Specification | ✓ | ✗ |",
        "| — | Pseudocode | ✗ | ✗ |",
        "| Tests | Refinement | ✗ | ✓ |",
        "| — | Architecture | ✗ | ✗ |",
        "| — | Planning | ✗ | ✗ |",
        "| Evidence | completion | ✓ | ✗ |",
    ]
    start = text.index("| Specification")
    end = text.index("\n\n### 3.")
    text = text[:start] + "\n".join(table) + text[end:]

    card = _card(text, "tessa")

    assert [row.phase for row in card.ownership] == list(SPARC_PHASES)
    assert card.is_primary("refinement") and card.deliverable("refinement") == "Tests"
    assert card.is_support("completion")


def test_headings_inside_code_fences_are_not_sections() -> None:
    text = _mutated(
        "### 3. Notes\nFree text.\n",
        "### 3. Notes\n```\n### 2. SPARC Phase Ownership\n```\n",
    )

    assert _card(text, "tessa").ownership == _card(CARD, "tessa").ownership


def test_a_cell_may_hold_an_escaped_pipe() -> None:
    text = _mutated("| Tests |", r"| Tests \| fixtures |")

    assert _card(text, "tessa").deliverable("refinement") == "Tests | fixtures"


ERROR_CASES = [
    pytest.param(
        "",
        "bad.md:1: the card is empty; it must start with a title line "
        "'# <emoji> <Name> (<Role>)'",
        id="empty",
    ),
    pytest.param(
        _mutated("# 🧪 Tessa (Test Analyst)", "# Tessa"),
        "bad.md:1: the card must start with a title line '# <emoji> <Name> (<Role>)'",
        id="title-without-role",
    ),
    pytest.param(
        "\n\n" + CARD.replace("# 🧪 Tessa (Test Analyst)\n", "", 1),
        "bad.md:4: the card must start with a title line '# <emoji> <Name> (<Role>)'",
        id="missing-title",
    ),
    pytest.param(
        _mutated('### 0. Initialization\n"🧪 Ready."\n', ""),
        "bad.md: the card has no '### 0. Initialization' section",
        id="missing-initialization",
    ),
    pytest.param(
        _mutated('"🧪 Ready."\n', ""),
        "bad.md:3: the '### 0. Initialization' section is empty; write its text "
        "under the heading",
        id="empty-initialization",
    ),
    pytest.param(
        _mutated("### 1. Core Responsibility", "### 1. Duties"),
        "bad.md: the card has no '### 1. Core Responsibility' section",
        id="missing-responsibility",
    ),
    pytest.param(
        _mutated("### 3. Notes", "## SPARC Phase Ownership"),
        "bad.md:22: the card has two '### 2. SPARC Phase Ownership' sections "
        "(lines 12 and 22); keep one",
        id="two-tables",
    ),
    pytest.param(
        CARD[: CARD.index("### 2.")],
        "bad.md: the card has no '### 2. SPARC Phase Ownership' section with its "
        "table '| Phase | Primary | Support | Deliverable |'",
        id="missing-table",
    ),
    pytest.param(
        _mutated("| Phase | Primary |", "Phase | Primary |"),
        "bad.md:13: expected the ownership table '| Phase | Primary | Support | "
        "Deliverable |' under the 'SPARC Phase Ownership' heading",
        id="garbled-header",
    ),
    pytest.param(
        _mutated("| Phase | Primary | Support | Deliverable |", "| Phase | Owner |"),
        "bad.md:13: the ownership table header must have exactly the columns "
        "Phase, Primary, Support, Deliverable (got phase, owner)",
        id="wrong-columns",
    ),
    pytest.param(
        _mutated("|-------|---------|---------|-------------|", "| x | y | z | w |"),
        "bad.md:14: the ownership table needs a separator row like "
        "'|---|---|---|---|' under its header",
        id="missing-separator",
    ),
    pytest.param(
        _mutated("| Pseudocode | ✗ | ✗ | — |", "| Pseudocode | ✗ | ✗ |"),
        "bad.md:16: the ownership row has 3 cells, the header has 4",
        id="short-row",
    ),
    pytest.param(
        _mutated("| Pseudocode |", "| Deployment |"),
        "bad.md:16: unknown phase 'Deployment' in the ownership table; the phases "
        "are Specification, Pseudocode, Architecture, Planning, Refinement, "
        "Completion",
        id="unknown-phase",
    ),
    pytest.param(
        _mutated("| Pseudocode |", "| Specification |"),
        "bad.md:16: phase Specification appears twice in the ownership table "
        "(first at line 15); keep one row per phase",
        id="repeated-phase",
    ),
    pytest.param(
        _mutated("| Planning | ✗ | ✗ | - |\n", ""),
        "bad.md:13: the ownership table has no row for Planning; it needs one row "
        "per SPARC phase",
        id="missing-phase",
    ),
    pytest.param(
        _mutated("| Refinement | ✓ |", "| Refinement | yes |"),
        "bad.md:19: the Primary cell for Refinement is 'yes'; write ✓ (or Y) or "
        "✗ (or N)",
        id="primary-yes",
    ),
    pytest.param(
        _mutated("| Specification | ✗ | ✓ |", "| Specification | ✗ | x |"),
        "bad.md:15: the Support cell for Specification is 'x'; write ✓ (or Y) or "
        "✗ (or N)",
        id="support-x",
    ),
    pytest.param(
        _mutated("| Specification | ✗ | ✓ |", "| Specification | ✗ |  |"),
        "bad.md:15: the Support cell for Specification is ''; write ✓ (or Y) or "
        "✗ (or N)",
        id="support-empty",
    ),
    pytest.param(
        _mutated("| Refinement | ✓ | ✗ |", "| Refinement | ✓ | ✓ |"),
        "bad.md:19: Refinement is marked both Primary and Support; a persona "
        "either owns a phase or reviews it",
        id="primary-and-support",
    ),
]


@pytest.mark.parametrize(("text", "message"), ERROR_CASES)
def test_card_errors_name_the_file_line_and_problem(text: str, message: str) -> None:
    with pytest.raises(PersonaCardError) as caught:
        parse_card(text, source="bad.md")

    assert str(caught.value) == message
    assert caught.value.path == Path("bad.md")


def test_card_error_in_a_damaged_card_points_at_the_file_line(tmp_path: Path) -> None:
    """Line numbers survive the mojibake repair."""
    raw = FIXTURE.read_text(encoding="utf-8").replace(
        "| Planning | âœ— | âœ— |", "| Planning | âœ— | maybe |"
    )
    path = tmp_path / "hephaestus.md"
    path.write_text(raw, encoding="utf-8")

    with pytest.raises(PersonaCardError) as caught:
        load_card(path)

    assert str(caught.value) == (
        f"{path}:19: the Support cell for Planning is 'maybe'; write ✓ (or Y) or "
        "✗ (or N)"
    )
    assert caught.value.line == 19


def test_bad_file_name_is_refused() -> None:
    with pytest.raises(PersonaCardError) as caught:
        parse_card(CARD, source="cards/My Card.md")

    assert str(caught.value) == (
        "cards/My Card.md: the file name 'My Card' cannot be a persona key; name "
        "the card like 'database-engineer.md' (letters, digits, '-' and '_')"
    )


def test_non_utf8_byte_is_located(tmp_path: Path) -> None:
    path = tmp_path / "latin.md"
    path.write_bytes(CARD.encode("utf-8").replace(b"Free text.", b"Caf\xe9."))

    with pytest.raises(PersonaCardError) as caught:
        load_card(path)

    assert str(caught.value) == (
        f"{path}:23: the card is not UTF-8 text (byte 0xe9); save it as UTF-8"
    )


def test_oversized_card_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.md"
    path.write_text(CARD + "x" * MAX_CARD_BYTES, encoding="utf-8")
    size = path.stat().st_size

    with pytest.raises(PersonaCardError) as caught:
        load_card(path)
    assert str(caught.value) == (
        f"{path}: the card is {size} bytes, over the 262144 byte limit; keep "
        "persona cards short"
    )

    with pytest.raises(PersonaCardError, match="over the 262144 byte limit"):
        parse_card(CARD + "x" * MAX_CARD_BYTES, source="huge.md")


def test_card_at_the_size_limit_is_accepted() -> None:
    padding = MAX_CARD_BYTES - len(CARD.encode("utf-8"))

    card = parse_card(CARD + "x" * padding, source="big.md")

    assert len(card.body.encode("utf-8")) == MAX_CARD_BYTES


def test_missing_card_file(tmp_path: Path) -> None:
    with pytest.raises(PersonaCardError) as caught:
        load_card(tmp_path / "ghost.md")

    assert str(caught.value) == (
        f"{tmp_path / 'ghost.md'}: cannot read the persona card: No such file or "
        "directory"
    )


def test_ownership_must_hold_six_phases_in_order() -> None:
    card = _card(CARD, "tessa")

    with pytest.raises(pydantic.ValidationError, match="ownership must list"):
        PersonaCard(**{**card.model_dump(), "ownership": card.ownership[::-1]})


def test_slugify() -> None:
    assert slugify("Database Engineer") == "database-engineer"
    assert slugify("  C++ / Rust  Engineer ") == "c-rust-engineer"


# --------------------------------------------------------------------- repair


@pytest.mark.parametrize(
    "clean",
    [
        "plain ASCII text",
        "| Refinement | ✓ | ✗ | Migrations — indices |",
        "🔨 café, naïve, São Paulo, Ærø, ½ ° ±",
        "├── alembic.ini\n│   └── 001_init.py",
        "„ÄÖÜ” and Ä” inside quotes",
        "Ω Д 東京 \u00a0nbsp",
    ],
)
def test_repair_leaves_clean_text_alone(clean: str) -> None:
    assert repair_mojibake(clean) == clean


@pytest.mark.parametrize(
    "original",
    ["✓", "✗", "🔨", "—", "├──", "✝ cross", "Á", "é", "Привет", "ÿ €"],
)
@pytest.mark.parametrize("codec", ["cp1252", "latin-1"])
def test_repair_undoes_both_misreadings(original: str, codec: str) -> None:
    """cp1252 undefined bytes (0x81, 0x9D in ✝ and Á) survive as C1 controls."""
    raw = original.encode("utf-8")
    damaged = "".join(
        bytes([byte]).decode(codec, errors="strict")
        if codec == "latin-1" or byte not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)
        else chr(byte)
        for byte in raw
    )
    assert damaged != original

    assert repair_mojibake(f"before {damaged} after") == f"before {original} after"


def test_repair_goes_segment_by_segment_on_an_odd_line() -> None:
    """A genuine ✓ or a lost byte on a line does not stop the rest being repaired."""
    line = "ok ✓ then âœ“ and â€” and Ã© but \ufffd stays"

    assert repair_mojibake(line) == "ok ✓ then ✓ and — and é but \ufffd stays"


def test_repair_keeps_weak_pairs_on_an_odd_line() -> None:
    """On a line that is not wholly damage, two-character pairs like Ä” stay."""
    assert repair_mojibake("✓ „Ä” âœ“") == "✓ „Ä” ✓"


def test_repair_is_line_by_line() -> None:
    text = "Ð”Ð° clean? no\nreal Ä” line with „\nâœ“"

    assert repair_mojibake(text) == "Да clean? no\nreal Ä” line with „\n✓"


def test_repair_undoes_double_damage() -> None:
    damaged = "✓ done".encode().decode("cp1252").encode().decode("cp1252")

    assert repair_mojibake(damaged) == "✓ done"


def test_damaged_bom_is_dropped() -> None:
    damaged = ("\ufeff" + CARD).encode("utf-8").decode("cp1252")

    card = parse_card(damaged, source="tessa.md")

    assert card.body == CARD


# --------------------------------------------------------------- plain data


@pytest.mark.parametrize("module", ["sparc/persona.py", "sparc/workflow.py"])
def test_plain_data_modules_do_not_import_the_runtime(module: str) -> None:
    tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)

    assert not any(name.split(".")[0] == "langgraph" for name in imported)
    assert {n for n in imported if n.startswith("sparc")} <= {
        "sparc.errors",
        "sparc.safe_yaml",
        "sparc.workflow",
    }
