"""Tests for Chapter 7's LLM judge, against a fake Ollama server on the loopback interface."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psutil
import pytest

from previous_chapters import (
    check_if_running,
    format_judge_prompt,
    generate_model_scores,
    ollama_is_reachable,
    ollama_settings,
    parse_score,
    query_model,
)

MODEL = "judge-test"


class FakeOllama(BaseHTTPRequestHandler):
    """Speaks enough of Ollama's API: GET /api/tags and POST /api/chat.

    The server's `replies` list gives the assistant's answers in turn; with
    `stream = True` each answer is sent as newline-delimited JSON chunks.
    """

    def log_message(self, *args):  # keep pytest's output clean
        pass

    def send_body(self, status, body, content_type="application/json"):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/api/tags":
            self.send_body(200, json.dumps({"models": [{"name": MODEL}]}))
        else:
            self.send_body(404, "not found", "text/plain")

    def do_POST(self):
        if self.path != "/api/chat":
            self.send_body(404, "not found", "text/plain")
            return
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server = self.server
        server.requests.append(request)
        if request.get("model") != MODEL:
            self.send_body(404, json.dumps({"error": f"model '{request.get('model')}' not found"}))
            return
        messages = request.get("messages")
        if not (isinstance(messages, list) and len(messages) == 1
                and messages[0].get("role") == "user" and messages[0].get("content")):
            self.send_body(400, json.dumps({"error": "bad messages"}))
            return
        content = server.replies[(len(server.requests) - 1) % len(server.replies)]
        if server.stream:
            pieces = [content[i:i + 3] for i in range(0, len(content), 3)] or [""]
            lines = [json.dumps({"model": MODEL, "message": {"role": "assistant", "content": p},
                                 "done": False}) for p in pieces]
            lines.append(json.dumps({"model": MODEL, "message": {"role": "assistant", "content": ""},
                                     "done": True}))
            self.send_body(200, "\n".join(lines) + "\n", "application/x-ndjson")
        else:
            self.send_body(200, json.dumps({"model": MODEL, "message": {"role": "assistant",
                                                                         "content": content},
                                            "done": True}))


@pytest.fixture
def ollama():
    """Start a fake Ollama; yields a function that sets its replies and returns its host."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOllama)
    server.requests, server.replies, server.stream = [], ["50"], False
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()

    def configure(replies, stream=False):
        server.replies, server.stream = list(replies), stream
        return f"http://127.0.0.1:{server.server_address[1]}", server

    yield configure
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def closed_port_url():
    """A loopback URL where (almost certainly) nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


ENTRIES = [
    {"instruction": "Name the author of 'Pride and Prejudice'.", "input": "",
     "output": "Jane Austen.", "model_response": "Jane Austen."},
    {"instruction": "Convert 5 km to meters.", "input": "", "output": "5000 meters.",
     "model_response": "500 meters."},
    {"instruction": "Correct the spelling.", "input": "Ocassion", "output": "Occasion",
     "model_response": "Occasion"},
]


@pytest.mark.parametrize("stream", [False, True])
def test_query_model_sends_the_documented_request(ollama, stream):
    host, server = ollama(["Score: 87"], stream=stream)
    assert query_model("How good?", model=MODEL, url=host + "/api/chat", timeout=5) == "Score: 87"
    (request,) = server.requests
    assert request == {"model": MODEL, "messages": [{"role": "user", "content": "How good?"}],
                       "options": {"seed": 123, "temperature": 0, "num_ctx": 2048},
                       "stream": False}


@pytest.mark.parametrize("stream", [False, True])
def test_scores_are_parsed_and_averaged(ollama, stream):
    host, server = ollama(["90", "The answer deserves 40/100.", "75."], stream=stream)
    scores, n_unparsed = generate_model_scores(ENTRIES, model=MODEL, url=host + "/api/chat",
                                               timeout=5)
    assert scores == [90, 40, 75]
    assert n_unparsed == 0
    assert sum(scores) / len(scores) == pytest.approx(205 / 3)
    # Each request carries the entry's task, reference and response.
    prompt = server.requests[1]["messages"][0]["content"]
    assert prompt == format_judge_prompt(ENTRIES[1])
    assert "5000 meters." in prompt and "500 meters." in prompt


def test_replies_without_a_score_are_counted_not_fatal(ollama):
    host, _ = ollama(["I cannot grade this.", "80", "150"])
    scores, n_unparsed = generate_model_scores(ENTRIES, model=MODEL, url=host + "/api/chat",
                                               timeout=5)
    assert scores == [80]
    assert n_unparsed == 2


def test_json_key_selects_the_graded_field(ollama):
    host, server = ollama(["100"])
    entries = [{**ENTRIES[0], "other_model": "Charlotte Bronte"}]
    generate_model_scores(entries, json_key="other_model", model=MODEL, url=host + "/api/chat",
                          timeout=5)
    assert "Charlotte Bronte" in server.requests[0]["messages"][0]["content"]


def test_server_errors_are_reported(ollama):
    host, _ = ollama(["50"])
    with pytest.raises(RuntimeError, match="not found"):
        query_model("hi", model="no-such-model", url=host + "/api/chat", timeout=5)


def test_reachability(ollama):
    host, _ = ollama(["50"])
    assert ollama_is_reachable(host, timeout=2) is True
    assert ollama_is_reachable(closed_port_url(), timeout=2) is False


def test_a_server_that_is_down_gives_a_clear_error():
    url = closed_port_url() + "/api/chat"
    with pytest.raises(ConnectionError, match="not reachable"):
        query_model("hi", model=MODEL, url=url, timeout=2)
    with pytest.raises(ConnectionError, match="not reachable"):
        generate_model_scores(ENTRIES, model=MODEL, url=url, timeout=2)


@pytest.mark.parametrize("reply, score", [
    ("85", 85), (" 0 ", 0), ("100", 100), ("Score: 72/100", 72), ("I would rate it 90.", 90),
    ("89.5", 90), ("88.4 points", 88), ("150", None), ("-5", None), ("none", None), ("", None),
])
def test_parse_score(reply, score):
    assert parse_score(reply) == score


def test_ollama_settings_from_environment(monkeypatch):
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    monkeypatch.delenv("OLLAMA_MODEL", raising=False)
    assert ollama_settings() == ("http://localhost:11434", "llama3")
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9999")
    monkeypatch.setenv("OLLAMA_MODEL", "llama3.1")
    assert ollama_settings() == ("http://127.0.0.1:9999", "llama3.1")
    monkeypatch.setenv("OLLAMA_HOST", "https://judge.example/")
    assert ollama_settings()[0] == "https://judge.example"


def test_check_if_running_finds_this_process():
    assert check_if_running(psutil.Process().name()) is True
    assert check_if_running("no-such-process-name-4f1c9") is False
