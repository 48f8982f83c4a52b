"""sparc as a Model Context Protocol server, over stdio.

Any MCP client (an IDE assistant, Claude Desktop, another agent) can show the
backlog, run a task, forge a schema from DDL and review a schema in one
workspace. Start it with `sparc -C WORKSPACE mcp` or
`python -m sparc.mcp_server --workspace WORKSPACE`; stdout carries the
protocol, so log events go to stderr.

The tools are the methods of `sparc.tools.SparcOperations`; each runs in a
worker thread so a long task run never stalls the protocol.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import structlog

from sparc import __version__
from sparc.errors import SparcError
from sparc.redact import redact_text
from sparc.tools import DESCRIPTIONS, SparcOperations

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

log = structlog.get_logger(__name__)

SERVER_NAME = "sparc"

INSTRUCTIONS = (
    "sparc runs the SPARC method over a backlog of task files in one workspace. "
    "Call show_backlog first to see the tasks and which are ready; run_task runs "
    "one ready task and commits its deliverables; forge_schema previews the "
    "models and migration for some DDL without writing anything; review_schema "
    "lints a schema file, the alembic folder or the whole workspace."
)


def build_server(workspace: Path | str) -> MCPServer:
    """An MCP server whose tools work on `workspace`.

    Args:
        workspace: the workspace folder.

    Returns:
        The server, not yet running; `run_stdio` serves it.

    Raises:
        WorkspaceError: the folder does not exist.
    """
    from mcp.server.mcpserver import MCPServer

    operations = SparcOperations(workspace)
    server: MCPServer = MCPServer(
        SERVER_NAME, instructions=INSTRUCTIONS, version=__version__
    )
    for name in operations.names():
        server.add_tool(
            _in_thread(operations.operation(name)),
            name=name,
            description=DESCRIPTIONS[name],
        )
    log.debug("mcp_server_built", workspace=str(operations.workspace.root))
    return server


def run_stdio(workspace: Path | str) -> None:
    """Serve the tools of `workspace` on stdin and stdout until the client leaves."""
    build_server(workspace).run("stdio")


def _in_thread(
    method: Callable[..., dict[str, Any]],
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Run `method` in a worker thread; a sparc error becomes the tool's answer.

    The SDK hides any other exception's text from the client, which is right
    for a crash; sparc's own errors are meant to be read (they name the file,
    line or task and say what to do), so they are passed on as `ToolError`.
    """
    from mcp.server.mcpserver.exceptions import ToolError

    # wraps keeps the signature, from which the tool's input schema is made
    @functools.wraps(method)
    async def call(*args: Any, **kwargs: Any) -> dict[str, Any]:
        bound = functools.partial(method, *args, **kwargs)
        try:
            return await anyio.to_thread.run_sync(bound)
        except SparcError as exc:
            raise ToolError(redact_text(f"error: {exc}")) from exc

    return call


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m sparc.mcp_server --workspace DIR`: log to stderr, serve stdio."""
    from sparc.cli import configure_logging

    parser = argparse.ArgumentParser(
        prog="python -m sparc.mcp_server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--workspace", type=Path, default=Path("."))
    parser.add_argument("--log-format", choices=["console", "json"], default="json")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    options = parser.parse_args(argv)

    level = {0: logging.WARNING, 1: logging.INFO}.get(options.verbose, logging.DEBUG)
    configure_logging(level, options.log_format)
    try:
        run_stdio(options.workspace)
    except SparcError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
