"""The persona cards shipped with sparc, one markdown file per persona.

The code that reads them is `sparc.persona`; it is re-exported here so that
`from sparc.personas import PersonaRegistry` works too. (A `sparc/personas.py`
module cannot exist: this package has the same import name.)
"""

from __future__ import annotations

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

__all__ = [
    "MAX_CARD_BYTES",
    "PersonaCard",
    "PersonaRegistry",
    "PhaseOwnership",
    "format_ownership_matrix",
    "load_card",
    "parse_card",
    "repair_mojibake",
    "slugify",
]
