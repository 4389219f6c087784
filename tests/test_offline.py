"""Nothing reaches the network: the tests' guard refuses connections, and ``import rag`` keeps libraries offline."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading

import pytest

from rag.offline import OFFLINE_ENVIRONMENT

UNROUTABLE = ("10.255.255.1", 80)


def test_guard_refuses_a_non_loopback_connection() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        with pytest.raises(ConnectionRefusedError, match="offline"):
            sock.connect(UNROUTABLE)
        with pytest.raises(ConnectionRefusedError, match="offline"):
            sock.connect_ex(UNROUTABLE)


def test_guard_refuses_name_lookups() -> None:
    with pytest.raises(socket.gaierror, match="offline"):
        socket.getaddrinfo("huggingface.co", 443)


def test_guard_allows_loopback() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        accepted: list[socket.socket] = []
        thread = threading.Thread(target=lambda: accepted.append(server.accept()[0]))
        thread.start()
        with socket.create_connection(server.getsockname(), timeout=5):
            thread.join(5)
        assert accepted
        accepted[0].close()
    assert socket.getaddrinfo("localhost", 80)


CHILD = """
import json, socket
outcome = {}
try:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(2)
    sock.connect(("10.255.255.1", 80))
    outcome["connect"] = "connected"
except ConnectionRefusedError as error:
    outcome["connect"] = "refused: " + str(error)
except OSError as error:
    outcome["connect"] = "other: " + repr(error)
try:
    socket.getaddrinfo("pypi.org", 443)
    outcome["lookup"] = "resolved"
except socket.gaierror as error:
    outcome["lookup"] = "refused: " + str(error)
print(json.dumps(outcome))
"""


def test_guard_is_loaded_by_child_processes() -> None:
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=True)
    outcome = json.loads(done.stdout)
    assert outcome["connect"].startswith("refused: offline test run"), outcome
    assert outcome["lookup"].startswith("refused: offline test run"), outcome


def run_import_rag(env: dict[str, str]) -> dict[str, str | None]:
    code = ("import json, os, rag; "
            f"print(json.dumps({{name: os.environ.get(name) for name in {sorted(OFFLINE_ENVIRONMENT)!r}}}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env,
                          check=True)
    seen: dict[str, str | None] = json.loads(done.stdout)
    return seen


def test_import_rag_sets_the_offline_environment() -> None:
    env = {name: value for name, value in os.environ.items() if name not in OFFLINE_ENVIRONMENT}
    seen = run_import_rag(env)
    assert seen["HF_HUB_OFFLINE"] == "1"
    assert seen["TRANSFORMERS_OFFLINE"] == "1"
    assert seen["HF_HUB_DISABLE_TELEMETRY"] == "1"
    assert seen["ANONYMIZED_TELEMETRY"] == "False"
    assert seen["GRADIO_ANALYTICS_ENABLED"] == "False"
    assert seen == OFFLINE_ENVIRONMENT


def test_import_rag_keeps_a_value_the_user_set() -> None:
    env = {name: value for name, value in os.environ.items() if name not in OFFLINE_ENVIRONMENT}
    env["TOKENIZERS_PARALLELISM"] = "true"
    seen = run_import_rag(env)
    assert seen["TOKENIZERS_PARALLELISM"] == "true"
    assert seen["HF_HUB_OFFLINE"] == "1"


def test_this_process_is_offline_too() -> None:
    for name in OFFLINE_ENVIRONMENT:
        assert name in os.environ, name
