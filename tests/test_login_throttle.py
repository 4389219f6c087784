"""The UI's login, served for real: failed logins from one client are throttled, a success clears them."""

from __future__ import annotations

import socket
import time

# conftest.py has imported rag already, so the offline environment is set before gradio is imported here.
import gradio as gr
import httpx

import app


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_wrong_passwords_are_throttled_and_the_right_one_waits_its_turn() -> None:
    with gr.Blocks() as demo:
        gr.Markdown("hello")
    _, url, _ = app.launch(demo, host="127.0.0.1", port=free_port(), auth=("reader", "right-pass"), block=False)
    try:
        login = url.rstrip("/") + "/login"
        statuses = [httpx.post(login, data={"username": "reader", "password": f"guess-{n}"}).status_code
                    for n in range(20)]
        assert statuses[:5] == [400] * 5  # the free tries
        assert set(statuses[5:]) <= {400, 429} and statuses.count(429) >= 10
        refused = httpx.post(login, data={"username": "reader", "password": "right-pass"})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert "Too many failed logins" in refused.json()["detail"]
        time.sleep(int(refused.headers["retry-after"]))
        assert httpx.post(login, data={"username": "reader", "password": "right-pass"}).status_code == 200
        # A success clears the count: the next mistake is a plain refusal again.
        assert httpx.post(login, data={"username": "reader", "password": "wrong"}).status_code == 400
    finally:
        demo.close()
