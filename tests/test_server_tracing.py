"""LangSmith tracing: off unless the environment alone turns it on."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sparc.runner import Runner
from tests.test_server import library_workspace

TRACING_VARIABLES = (
    "LANGSMITH_TRACING",
    "LANGSMITH_TRACING_V2",
    "LANGCHAIN_TRACING",
    "LANGCHAIN_TRACING_V2",
    "LANGSMITH_API_KEY",
    "LANGCHAIN_API_KEY",
    "LANGSMITH_ENDPOINT",
    "LANGCHAIN_ENDPOINT",
    "LANGSMITH_PROJECT",
    "LANGCHAIN_PROJECT",
)


@pytest.fixture
def no_tracing_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TRACING_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_no_tracing_and_no_network_by_default(
    tmp_path: Path,
    git_env: None,
    no_tracing_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A whole task run opens no network connection and never builds a client."""
    import langsmith

    connections: list[Any] = []
    clients: list[Any] = []
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            connections.append(address)
        return real_connect(self, address)

    real_client_init = langsmith.Client.__init__

    def client_init(self: Any, *args: Any, **kwargs: Any) -> None:
        clients.append(kwargs)
        real_client_init(self, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(langsmith.Client, "__init__", client_init)
    workspace = library_workspace(tmp_path / "library")

    with Runner.open(workspace) as runner:
        outcome = runner.run("DB-001")

    assert outcome.complete, outcome.reason
    assert connections == []
    assert clients == []


class _Collector(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding in ("deflate", "zstd") and encoding == "deflate":
            body = zlib.decompress(body)
        self.received.append(
            {"path": self.path, "type": self.headers.get("Content-Type"), "body": body}
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    do_PATCH = do_POST  # noqa: N815

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"batch_ingest_config": {}}).encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback HTTP server standing in for LangSmith, keeping what it gets."""
    _Collector.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Collector.received
    finally:
        server.shutdown()
        server.server_close()


# langsmith caches what it read from the environment, so the traced run gets a
# process of its own, started as a user would start sparc
_TRACED_RUN = """
import sys
from langchain_core.tracers.langchain import wait_for_all_tracers
from sparc.runner import Runner
with Runner.open(sys.argv[1]) as runner:
    outcome = runner.run("DB-001")
wait_for_all_tracers()
print(outcome.status)
"""


@pytest.mark.slow
def test_environment_alone_turns_tracing_on(
    tmp_path: Path,
    git_env: None,
    no_tracing_env: None,
    collector: tuple[str, list[dict[str, Any]]],
) -> None:
    """With LANGSMITH_TRACING=true the graph's runs are sent to the endpoint."""
    endpoint, received = collector
    workspace = library_workspace(tmp_path / "library")
    env = {
        **os.environ,
        "LANGSMITH_TRACING": "true",
        "LANGSMITH_ENDPOINT": endpoint,
        "LANGSMITH_API_KEY": "lsv2-test-key-not-real",
        "LANGSMITH_PROJECT": "sparc-tests",
    }

    result = subprocess.run(
        [sys.executable, "-c", _TRACED_RUN, str(workspace)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )

    assert result.stdout.splitlines()[-1] == "COMPLETE", result.stderr[-3000:]
    sent = b"".join(item["body"] for item in received)
    assert received, "no trace reached the endpoint"
    assert b"load_task" in sent and b"refinement" in sent
