"""sparc: the SPARC method as a LangGraph state machine over a backlog of tasks."""

from __future__ import annotations

from sparc.errors import SparcError

__all__ = ["SparcError", "__version__"]

__version__ = "0.1.0"
