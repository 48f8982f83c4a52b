"""Persona cards: who owns and who reviews each SPARC phase.

A card is markdown. Three parts are read; the rest is free text kept in `body`
as the persona's instructions:

    # 🔨 Hephaestus (Database Engineer)

    ### 0. Initialization
    "🔨 Ready to forge database architecture."

    ### 1. Core Responsibility
    One paragraph saying what the persona is for.

    ### 2. SPARC Phase Ownership
    | Phase | Primary | Support | Deliverable |
    |-------|---------|---------|-------------|
    | Specification | ✗ | ✓ | Review data requirements |
    ...

The table has one row per SPARC phase. Primary and Support cells hold ✓ or ✗;
their ASCII forms Y and N (either case) are accepted too, and nothing else. A
Deliverable of "—" (or "-", or an empty cell) means none. The table is the
routing table: the primary of a phase does its work, the support personas
review it.

Cards sometimes arrive with mojibake (UTF-8 bytes read as cp1252, `âœ“` for
✓); the loader repairs it. This module is plain data: it does not import
LangGraph. The shipped cards live in the `sparc.personas` package folder.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import structlog
from pydantic import BaseModel, ConfigDict, field_validator

from sparc.errors import PersonaCardError
from sparc.workflow import SPARC_PHASES, normalize_phase, phase_key

log = structlog.get_logger(__name__)

MAX_CARD_BYTES = 256 * 1024

_BUILTIN_PACKAGE = "sparc.personas"
_CHECKS = {"✓": True, "y": True, "✗": False, "n": False}
_NO_DELIVERABLE = {"", "—", "–", "-"}
_TABLE_COLUMNS = ("phase", "primary", "support", "deliverable")


class PhaseOwnership(BaseModel):
    """One row of a card's ownership table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    phase: str
    primary: bool
    support: bool
    deliverable: str | None = None


class PersonaCard(BaseModel):
    """A parsed persona card."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    name: str
    role: str
    specialist: str
    emoji: str
    initialization: str
    responsibility: str
    ownership: list[PhaseOwnership]
    body: str
    source: str = ""

    @field_validator("ownership")
    @classmethod
    def _six_phases_in_order(cls, rows: list[PhaseOwnership]) -> list[PhaseOwnership]:
        phases = tuple(row.phase for row in rows)
        if phases != SPARC_PHASES:
            raise ValueError(
                f"ownership must list {', '.join(SPARC_PHASES)} in that order, "
                f"got {', '.join(phases) or 'nothing'}"
            )
        return rows

    @property
    def title(self) -> str:
        """The card's heading text, for example "🔨 Hephaestus (Database Engineer)"."""
        name = f"{self.emoji} {self.name}" if self.emoji else self.name
        return f"{name} ({self.role})"

    def row(self, phase: str) -> PhaseOwnership:
        """Return the ownership row of `phase` (a key or a capitalised name).

        Raises:
            WorkflowError: `phase` is not a SPARC phase.
        """
        return self.ownership[SPARC_PHASES.index(normalize_phase(phase))]

    def is_primary(self, phase: str) -> bool:
        """Whether this persona owns `phase` and writes its deliverable."""
        return self.row(phase).primary

    def is_support(self, phase: str) -> bool:
        """Whether this persona reviews the work of `phase`."""
        return self.row(phase).support

    def deliverable(self, phase: str) -> str | None:
        """What this persona delivers or checks in `phase`, None for nothing."""
        return self.row(phase).deliverable


# ---------------------------------------------------------------------------
# mojibake repair


def _byte_table() -> dict[str, int]:
    # Latin-1 first: every byte 0x80-0xFF as the character of the same number,
    # which also covers the five bytes cp1252 leaves undefined (0x81, 0x8D, 0x8F,
    # 0x90, 0x9D) when a lenient decoder turned them into C1 controls.
    table = {chr(byte): byte for byte in range(0x80, 0x100)}
    for byte in range(0x80, 0xA0):
        try:
            table[bytes([byte]).decode("cp1252")] = byte
        except UnicodeDecodeError:
            continue
    return table


_BYTE_OF = _byte_table()


def _byte_class(low: int, high: int) -> str:
    chars = sorted(char for char, byte in _BYTE_OF.items() if low <= byte <= high)
    return "[" + "".join(re.escape(char) for char in chars) + "]"


_CONTINUATION = _byte_class(0x80, 0xBF)
# A character sequence that spells one complete UTF-8 encoded character.
_SEQUENCE = re.compile(
    f"{_byte_class(0xC2, 0xDF)}{_CONTINUATION}"
    f"|{_byte_class(0xE0, 0xEF)}{_CONTINUATION}{{2}}"
    f"|{_byte_class(0xF0, 0xF4)}{_CONTINUATION}{{3}}"
)
# Two-character sequences led by Â or Ã encode U+0080-U+00FF; with the three and
# four character ones they are the damage that clean text practically never
# contains, so they are repaired even inside a line that is otherwise odd.
_STRONG_LEADS = "\u00c2\u00c3"
_C1_CONTROLS = re.compile("[\u0080-\u009f]")
_MAX_REPAIR_PASSES = 3


def repair_mojibake(text: str) -> str:
    """Undo UTF-8 text that was decoded as cp1252 or latin-1.

    The repair works line by line. A line whose non-ASCII characters, turned
    back into the bytes they were decoded from, form valid UTF-8 is decoded
    again as a whole. A line that does not (a stray genuine character, a byte
    lost to a replacement mark) keeps its text except for the sequences that are
    unmistakably damage: three and four byte characters and those led by Â or
    Ã. Text without such damage, including correct UTF-8, comes back unchanged.
    Text damaged twice is repaired twice.

    Args:
        text: the possibly damaged text.

    Returns:
        The repaired text, with the same number of lines.
    """
    repaired = text
    for _ in range(_MAX_REPAIR_PASSES):
        fixed = "\n".join(_repair_line(line) for line in repaired.split("\n"))
        if fixed == repaired:
            break
        repaired = fixed
    return repaired


def _repair_line(line: str) -> str:
    if line.isascii():
        return line
    whole = _redecode(line)
    if whole is not None:
        return whole
    return _SEQUENCE.sub(_repair_sequence, line)


def _repair_sequence(match: re.Match[str]) -> str:
    sequence = match.group()
    if len(sequence) == 2 and sequence[0] not in _STRONG_LEADS:
        return sequence
    return _redecode(sequence) or sequence


def _redecode(text: str) -> str | None:
    """Decode the bytes `text` was misread from as UTF-8, None if they are not."""
    raw = bytearray()
    for char in text:
        code = ord(char)
        if code < 0x80:
            raw.append(code)
            continue
        byte = _BYTE_OF.get(char)
        if byte is None:
            return None
        raw.append(byte)

    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if _C1_CONTROLS.search(decoded):
        return None
    return decoded


# ---------------------------------------------------------------------------
# parsing

# The title is matched in two simple steps instead of one pattern with nested
# optional parts, which backtracked for minutes on a long line without a role.
_TITLE = re.compile(r"#[ \t](?P<name>[^()]*)\((?P<role>[^()]*)\)")
_TITLE_EMOJI = re.compile(r"(?P<emoji>[^\w\s()]+)[ \t]+(?P<name>.*)", re.DOTALL)
_WORD = re.compile(r"\w")
_HEADING = re.compile(r"(?P<level>#{1,6})[ \t]+(?P<text>.*)")
_SECTION_NUMBER = re.compile(r"^\d+(?:\.\d+)*\.?[ \t]*")
_FENCE = re.compile(r"^[ \t]{0,3}(?P<fence>`{3,}|~{3,})")
_SEPARATOR_CELL = re.compile(r"^:?-+:?$")
_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_QUOTES = "\"'“”‘’"
_HEADINGS = {
    "initialization": "### 0. Initialization",
    "core responsibility": "### 1. Core Responsibility",
    "sparc phase ownership": "### 2. SPARC Phase Ownership",
}


@dataclass(frozen=True)
class _Section:
    title: str
    line: int
    lines: list[tuple[int, str]]


def load_card(path: Path | str) -> PersonaCard:
    """Read and parse the persona card at `path`; its file stem is the key.

    Raises:
        PersonaCardError: the file is missing, over 256 KiB, not UTF-8, or is
            not a valid card; the message names the file and line.
    """
    path = Path(path)
    try:
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):
            raise PersonaCardError(
                "not a regular file; a persona card must be a file", path=path
            )
        size = status.st_size
        if size > MAX_CARD_BYTES:
            raise _too_large(size, path)
        data = path.read_bytes()
    except OSError as exc:
        raise PersonaCardError(
            f"cannot read the persona card: {exc.strerror or exc}", path=path
        ) from exc
    return _parse_bytes(data, source=path)


def parse_card(text: str, *, source: Path | str) -> PersonaCard:
    """Parse the text of a persona card.

    Args:
        text: the card's markdown; mojibake is repaired first.
        source: the card's file name or path; its stem becomes the key and it
            is named in every error.

    Raises:
        PersonaCardError: the text is over 256 KiB or is not a valid card.
    """
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise PersonaCardError(
            f"the card holds a character that is not valid UTF-8 "
            f"(position {exc.start}); save the card as UTF-8",
            path=source,
            line=text.count("\n", 0, exc.start) + 1,
        ) from exc
    if size > MAX_CARD_BYTES:
        raise _too_large(size, source)

    key = _card_key(source)
    original = text.removeprefix("\ufeff").replace("\r\n", "\n")
    text = repair_mojibake(original).removeprefix("\ufeff")
    if text != original:
        changed = sum(
            old != new
            for old, new in zip(original.split("\n"), text.split("\n"), strict=True)
        )
        log.warning("persona_card_mojibake_repaired", path=str(source), lines=changed)

    lines = text.split("\n")
    emoji, name, role = _parse_title(lines, source)
    sections = _sections(lines)
    initialization = _section_text(sections, "initialization", _first_line, source)
    responsibility = _section_text(
        sections, "core responsibility", _first_paragraph, source
    )
    ownership = _ownership(_section(sections, "sparc phase ownership", source), source)

    card = PersonaCard(
        key=key,
        name=name,
        role=role,
        specialist=slugify(role),
        emoji=emoji,
        initialization=initialization,
        responsibility=responsibility,
        ownership=ownership,
        body=text,
        source=str(source),
    )
    log.debug("persona_card_loaded", key=key, path=str(source))
    return card


def slugify(text: str) -> str:
    """Lowercase `text` and join its words with dashes ("Database Engineer")."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _parse_bytes(data: bytes, *, source: Path | str) -> PersonaCard:
    if len(data) > MAX_CARD_BYTES:
        raise _too_large(len(data), source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PersonaCardError(
            f"the card is not UTF-8 text (byte 0x{data[exc.start]:02x}); save it "
            "as UTF-8",
            path=source,
            line=data.count(b"\n", 0, exc.start) + 1,
        ) from exc
    return parse_card(text, source=source)


def _too_large(size: int, source: Path | str) -> PersonaCardError:
    return PersonaCardError(
        f"the card is {size} bytes, over the {MAX_CARD_BYTES} byte limit; keep "
        "persona cards short",
        path=source,
    )


def _card_key(source: Path | str) -> str:
    stem = Path(str(source)).stem
    key = stem.lower()
    if not _KEY.match(key):
        raise PersonaCardError(
            f"the file name {stem!r} cannot be a persona key; name the card like "
            "'database-engineer.md' (letters, digits, '-' and '_')",
            path=source,
        )
    return key


def _parse_title(lines: list[str], source: Path | str) -> tuple[str, str, str]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        title = _split_title(line.strip())
        if title is None:
            raise PersonaCardError(
                "the card must start with a title line '# <emoji> <Name> (<Role>)'",
                path=source,
                line=number,
            )
        return title
    raise PersonaCardError(
        "the card is empty; it must start with a title line "
        "'# <emoji> <Name> (<Role>)'",
        path=source,
        line=1,
    )


def _split_title(line: str) -> tuple[str, str, str] | None:
    """The emoji, name and role of a title line, None when it is not one."""
    match = _TITLE.fullmatch(line)
    if match is None:
        return None
    name, role = match["name"].strip(" \t"), match["role"].strip()
    emoji = ""
    with_emoji = _TITLE_EMOJI.fullmatch(name)
    if with_emoji is not None and _WORD.search(with_emoji["name"]):
        emoji, name = with_emoji["emoji"], with_emoji["name"]
    if not _WORD.search(name) or not _WORD.search(role):
        return None
    return emoji, name.strip(), role


def _sections(lines: list[str]) -> list[_Section]:
    """Split the card at its headings, skipping lines inside fenced code."""
    sections: list[_Section] = []
    fence: str | None = None
    for number, line in enumerate(lines, start=1):
        opening = _FENCE.match(line)
        if fence is not None:
            if opening and opening["fence"].startswith(fence):
                fence = None
        elif opening:
            fence = opening["fence"][:3]
        else:
            heading = _HEADING.fullmatch(line)
            if heading and len(heading["level"]) > 1:
                # closing hashes are stripped here: a pattern doing it backtracked
                # quadratically on a long run of ' #'
                text = heading["text"].rstrip(" \t#")
                title = _SECTION_NUMBER.sub("", text).strip().lower()
                sections.append(_Section(title, number, []))
                continue
        if sections:
            sections[-1].lines.append((number, line))
    return sections


def _section(
    sections: list[_Section], title: str, source: Path | str
) -> _Section | None:
    found = [section for section in sections if section.title == title]
    if len(found) > 1:
        raise PersonaCardError(
            f"the card has two '{_HEADINGS[title]}' sections (lines {found[0].line} "
            f"and {found[1].line}); keep one",
            path=source,
            line=found[1].line,
        )
    return found[0] if found else None


def _section_text(
    sections: list[_Section],
    title: str,
    extract: Callable[[list[str]], str],
    source: Path | str,
) -> str:
    heading = _HEADINGS[title]
    section = _section(sections, title, source)
    if section is None:
        raise PersonaCardError(f"the card has no '{heading}' section", path=source)
    text = extract([line for _, line in section.lines])
    if not text:
        raise PersonaCardError(
            f"the '{heading}' section is empty; write its text under the heading",
            path=source,
            line=section.line,
        )
    return text


def _first_line(lines: list[str]) -> str:
    for line in lines:
        if line.strip():
            return line.strip().strip(_QUOTES).strip()
    return ""


def _first_paragraph(lines: list[str]) -> str:
    paragraph: list[str] = []
    for line in lines:
        if line.strip():
            paragraph.append(line.strip())
        elif paragraph:
            break
    return " ".join(paragraph)


def _ownership(section: _Section | None, source: Path | str) -> list[PhaseOwnership]:
    if section is None:
        raise PersonaCardError(
            "the card has no '### 2. SPARC Phase Ownership' section with its "
            "table '| Phase | Primary | Support | Deliverable |'",
            path=source,
        )

    rows = iter([(n, line) for n, line in section.lines if line.strip()])
    header_line, header = next(rows, (section.line, ""))
    columns = _table_header(header, header_line, source)
    separator_line, separator = next(rows, (header_line, ""))
    if not separator.strip().startswith("|") or not all(
        _SEPARATOR_CELL.match(cell.replace(" ", "")) for cell in _cells(separator)
    ):
        raise PersonaCardError(
            "the ownership table needs a separator row like '|---|---|---|---|' "
            "under its header",
            path=source,
            line=separator_line,
        )

    found: dict[str, tuple[int, PhaseOwnership]] = {}
    for number, line in rows:
        if not line.strip().startswith("|"):
            break
        row = _table_row(line, number, columns, source)
        if row.phase in found:
            raise PersonaCardError(
                f"phase {row.phase.title()} appears twice in the ownership table "
                f"(first at line {found[row.phase][0]}); keep one row per phase",
                path=source,
                line=number,
            )
        found[row.phase] = (number, row)

    missing = [phase.title() for phase in SPARC_PHASES if phase not in found]
    if missing:
        raise PersonaCardError(
            f"the ownership table has no row for {', '.join(missing)}; it needs "
            f"one row per SPARC phase",
            path=source,
            line=header_line,
        )
    return [found[phase][1] for phase in SPARC_PHASES]


def _table_header(line: str, number: int, source: Path | str) -> dict[str, int]:
    if not line.strip().startswith("|"):
        raise PersonaCardError(
            "expected the ownership table '| Phase | Primary | Support | "
            "Deliverable |' under the 'SPARC Phase Ownership' heading",
            path=source,
            line=number,
        )

    names = [cell.strip().lower() for cell in _cells(line)]
    missing = [column.title() for column in _TABLE_COLUMNS if column not in names]
    if missing or len(names) != len(_TABLE_COLUMNS):
        raise PersonaCardError(
            "the ownership table header must have exactly the columns Phase, "
            f"Primary, Support, Deliverable (got {', '.join(names) or 'none'})",
            path=source,
            line=number,
        )
    return {column: names.index(column) for column in _TABLE_COLUMNS}


def _table_row(
    line: str, number: int, columns: dict[str, int], source: Path | str
) -> PhaseOwnership:
    cells = [cell.strip() for cell in _cells(line)]
    if len(cells) != len(columns):
        raise PersonaCardError(
            f"the ownership row has {len(cells)} cells, the header has {len(columns)}",
            path=source,
            line=number,
        )

    phase_cell = cells[columns["phase"]]
    phase = phase_key(phase_cell.strip("*_` "))
    if phase is None:
        raise PersonaCardError(
            f"unknown phase {phase_cell!r} in the ownership table; the phases are "
            f"{', '.join(name.title() for name in SPARC_PHASES)}",
            path=source,
            line=number,
        )

    marks: dict[str, bool] = {}
    for column in ("primary", "support"):
        cell = cells[columns[column]]
        mark = _CHECKS.get(cell.lower())
        if mark is None:
            raise PersonaCardError(
                f"the {column.title()} cell for {phase.title()} is {cell!r}; write "
                "✓ (or Y) or ✗ (or N)",
                path=source,
                line=number,
            )
        marks[column] = mark
    if marks["primary"] and marks["support"]:
        raise PersonaCardError(
            f"{phase.title()} is marked both Primary and Support; a persona "
            "either owns a phase or reviews it",
            path=source,
            line=number,
        )

    deliverable = cells[columns["deliverable"]]
    return PhaseOwnership(
        phase=phase,
        primary=marks["primary"],
        support=marks["support"],
        deliverable=None if deliverable in _NO_DELIVERABLE else deliverable,
    )


def _cells(line: str) -> list[str]:
    inner = line.strip()
    inner = inner.removeprefix("|")
    if inner.endswith("|") and not inner.endswith("\\|"):
        inner = inner[:-1]
    return [cell.replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", inner)]


# ---------------------------------------------------------------------------
# registry


class PersonaRegistry:
    """The persona cards in use, by key; routes phases to their personas."""

    def __init__(self, cards: Iterable[PersonaCard] = ()) -> None:
        """Hold `cards`; when two share a key, the later one wins."""
        by_key: dict[str, PersonaCard] = {}
        for card in cards:
            by_key[card.key] = card
        self._cards = dict(sorted(by_key.items()))

    @classmethod
    def builtin(cls) -> PersonaRegistry:
        """The cards shipped with sparc, in the `sparc.personas` package."""
        return cls(_builtin_cards())

    @classmethod
    def from_dirs(cls, *dirs: Path | str, builtin: bool = False) -> PersonaRegistry:
        """Load every `*.md` card of `dirs`; a later folder overrides by key.

        Args:
            dirs: folders of cards, for example a workspace's `.sparc/personas`.
            builtin: start from the shipped cards, which the folders override.

        Raises:
            PersonaCardError: a folder does not exist or a card is invalid.
        """
        base = cls.builtin() if builtin else cls()
        return base.with_dirs(*dirs)

    def with_dirs(self, *dirs: Path | str) -> PersonaRegistry:
        """A new registry: these cards, overridden and extended by `dirs`.

        For example `PersonaRegistry.builtin().with_dirs(ws / ".sparc/personas")`.

        Raises:
            PersonaCardError: a folder does not exist or a card is invalid.
        """
        cards = list(self._cards.values())
        for folder in map(Path, dirs):
            if not folder.is_dir():
                raise PersonaCardError(
                    "persona folder does not exist; create it or leave it out",
                    path=folder,
                )
            for path in sorted(folder.glob("*.md")):
                card = load_card(path)
                if any(known.key == card.key for known in cards):
                    log.info("persona_overridden", key=card.key, path=str(path))
                cards.append(card)
        return PersonaRegistry(cards)

    @property
    def cards(self) -> list[PersonaCard]:
        """Every card, ordered by key."""
        return list(self._cards.values())

    @property
    def keys(self) -> list[str]:
        """Every persona key, sorted."""
        return list(self._cards)

    def __len__(self) -> int:
        return len(self._cards)

    def __iter__(self) -> Iterator[PersonaCard]:
        return iter(self.cards)

    def __contains__(self, key: object) -> bool:
        return key in self._cards

    def get(self, key: str) -> PersonaCard:
        """Return the card with `key`.

        Raises:
            PersonaCardError: no card has that key; the message lists the keys.
        """
        card = self._cards.get(key)
        if card is None:
            raise PersonaCardError(
                f"no persona card {key!r}; known personas: {', '.join(self._cards)}",
                field="persona",
            )
        return card

    def primary(self, phase: str, specialist: str | None = None) -> PersonaCard:
        """Return the persona that owns `phase`.

        When one card is primary for the phase it is the owner whatever the
        specialist. When several are (Refinement), the one whose role slug
        equals `specialist` is.

        Raises:
            PersonaCardError: no card is primary for the phase, or several are
                and `specialist` picks none or more than one of them; the
                message lists the candidates.
            WorkflowError: `phase` is not a SPARC phase.
        """
        key = normalize_phase(phase)
        candidates = [card for card in self._cards.values() if card.is_primary(key)]
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise PersonaCardError(
                f"no persona card is primary for {key}; mark one card's "
                f"{key.title()} row ✓ in its Primary column",
                field="persona",
            )

        listed = ", ".join(f"{c.key} ({c.specialist})" for c in candidates)
        if specialist is None:
            raise PersonaCardError(
                f"several personas are primary for {key}: {listed}; give the task "
                "a specialist to choose one",
                field="specialist",
            )
        wanted = slugify(specialist)
        chosen = [card for card in candidates if card.specialist == wanted]
        if len(chosen) != 1:
            problem = "no" if not chosen else "more than one"
            raise PersonaCardError(
                f"{problem} persona primary for {key} has specialist "
                f"{specialist!r}; candidates: {listed}",
                field="specialist",
            )
        return chosen[0]

    def support(self, phase: str, *, exclude: str | None = None) -> list[PersonaCard]:
        """Return the personas that review `phase`, sorted by key.

        Args:
            phase: a SPARC phase key or capitalised name.
            exclude: a persona key to leave out, usually the phase's primary.

        Raises:
            WorkflowError: `phase` is not a SPARC phase.
        """
        key = normalize_phase(phase)
        return [
            card
            for card in self._cards.values()
            if card.is_support(key) and card.key != exclude
        ]

    def by_specialist(self, specialist: str) -> list[PersonaCard]:
        """Return the cards whose role slug is `specialist`, sorted by key."""
        wanted = slugify(specialist)
        return [card for card in self._cards.values() if card.specialist == wanted]


@cache
def _builtin_cards() -> tuple[PersonaCard, ...]:
    folder = resources.files(_BUILTIN_PACKAGE)
    entries = sorted(
        (e for e in folder.iterdir() if e.name.endswith(".md") and e.is_file()),
        key=lambda entry: entry.name,
    )
    return tuple(
        _parse_bytes(entry.read_bytes(), source=str(entry)) for entry in entries
    )


# ---------------------------------------------------------------------------
# output

_LEGEND = (
    "primary: owns the phase and writes its deliverable "
    "(Refinement: one owner per specialist)",
    "support: reviews the primary's work before the phase gate",
    "blank:   not involved in the phase",
)


def format_ownership_matrix(registry: PersonaRegistry) -> str:
    """Render who owns and who reviews each phase, as plain text.

    One row per persona (key and specialist), one column per SPARC phase, cells
    `primary`, `support` or blank, then a legend.
    """
    header = ["persona", "specialist", *SPARC_PHASES]
    rows = [header]
    for card in registry.cards:
        cells = [card.key, card.specialist]
        for row in card.ownership:
            cells.append("primary" if row.primary else "support" if row.support else "")
        rows.append(cells)

    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(width) for cell, width in zip(row, widths, strict=True)
        ).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join([*lines, "", *_LEGEND]) + "\n"
