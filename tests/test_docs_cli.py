"""docs/cli.md is the CLI's own help, regenerated; the docs' links resolve."""

from __future__ import annotations

import importlib.util
import re
from types import ModuleType

from tests.conftest import REPO_ROOT

DOCS = REPO_ROOT / "docs"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _cli_docs() -> ModuleType:
    path = REPO_ROOT / "scripts" / "cli_docs.py"
    spec = importlib.util.spec_from_file_location("cli_docs", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_md_is_what_the_cli_generates() -> None:
    """Run `python scripts/cli_docs.py` when this fails."""
    generated = _cli_docs().render_cli_docs()
    assert (DOCS / "cli.md").read_text(encoding="utf-8") == generated


def test_every_command_has_a_section() -> None:
    from sparc.cli import main

    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for name in main.list_commands(None):  # type: ignore[arg-type]
        assert f"## `sparc {name}`" in text


def test_relative_links_in_readme_and_docs_resolve() -> None:
    pages = [REPO_ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    broken = []
    for page in pages:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO_ROOT)} -> {target}")
    assert broken == []


def test_docs_cover_the_topics_users_need() -> None:
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    for page in [
        "quickstart.md",
        "concepts.md",
        "personas.md",
        "engines.md",
        "llm.md",
        "hephaestus.md",
        "review-rules.md",
        "batch-and-ci.md",
        "embedding.md",
        "deployment.md",
        "cli.md",
    ]:
        assert f"({page})" in index, page
        assert (DOCS / page).is_file(), page
