"""One request to an Ollama server's chat API, with bounds: the guarantees behind Chapter 7's judge.

Chapter 7's query_model writes the request (the judge model, the prompt, the settings that
make grading repeatable) and calls post_chat, which sends it and returns the reply's text:

- one deadline, `timeout` seconds, bounds the whole exchange, however slowly the server sends;
- at most MAX_REPLY_BYTES are read: a grade is a few bytes;
- ConnectionError when no server answers in time; JudgeError (a RuntimeError) for any answer
  that is not a usable reply: an error such as an unknown model, an HTTP error status, or a
  body that is not Ollama's JSON (one object, or the JSON lines of a streamed reply) or is
  cut off. Every message is one line that names the URL.

This module never imports previous_chapters (the chapters import it).
"""

import http.client
import json
import socket
import time
import urllib.error
import urllib.request

MAX_REPLY_BYTES = 10 * 2**20  # a grade is a few bytes; no reply needs more than this


class JudgeError(RuntimeError):
    """The judge server answered, but not with a usable reply (every such case)."""


def post_chat(url, payload, timeout):
    """POST `payload` (a dict, sent as JSON) to Ollama's chat API at `url`; return the
    assistant's text, all within `timeout` seconds."""
    request = urllib.request.Request(url, data=json.dumps(payload).encode("utf-8"),
                                     headers={"Content-Type": "application/json"}, method="POST")
    deadline = time.monotonic() + timeout
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = read_reply(response, deadline, url, timeout)
    except urllib.error.HTTPError as error:
        detail = " ".join(error.read(2000).decode("utf-8", errors="replace").split())
        raise JudgeError(f"Ollama at {url} answered HTTP {error.code}: {detail}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", None) or error or type(error).__name__
        if isinstance(reason, (TimeoutError, socket.timeout)) or isinstance(error, TimeoutError):
            reason = f"no answer within {timeout:g} s"
        raise ConnectionError(f"Ollama is not reachable at {url} ({reason}); "
                              "start it with `ollama serve`") from None
    return reply_text(body, url)


def read_reply(response, deadline, url, timeout):
    """The body of `response`, read before `deadline` and at most MAX_REPLY_BYTES long."""
    parts, size = [], 0
    while True:
        if time.monotonic() > deadline:
            raise ConnectionError(f"Ollama at {url} did not finish its reply within "
                                  f"{timeout:g} s")
        part = response.read1(65536)  # what has arrived: a trickle can't outlast the deadline
        if not part:
            break
        size += len(part)
        if size > MAX_REPLY_BYTES:
            raise JudgeError(f"Ollama at {url} sent more than {MAX_REPLY_BYTES:,} bytes")
        parts.append(part)
    if response.length:  # fewer bytes than its Content-Length promised
        raise JudgeError(f"Ollama at {url} cut its reply short")
    return b"".join(parts)


def reply_text(body, url):
    """The assistant's text in an Ollama chat reply: one JSON object, or JSON lines."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise JudgeError(f"Ollama at {url} sent a reply that is not UTF-8 text") from None
    try:
        chunks = [json.loads(text)]  # one JSON object ("stream": false)
    except json.JSONDecodeError:     # newline-delimited chunks (a streamed reply)
        try:
            chunks = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError:
            raise JudgeError(f"Ollama at {url} sent a reply that is not JSON "
                             f"(it begins {text[:60]!r})") from None
    if not chunks:
        raise JudgeError(f"Ollama at {url} sent an empty reply")
    contents = []
    for chunk in chunks:
        if not isinstance(chunk, dict):
            raise JudgeError(f"Ollama at {url} sent a JSON {type(chunk).__name__}, "
                             "not a chat reply object")
        if "error" in chunk:
            raise JudgeError(f"Ollama at {url} reported an error: {chunk['error']}")
        message = chunk.get("message", {})
        content = message.get("content", "") if isinstance(message, dict) else None
        if not isinstance(content, str):
            raise JudgeError(f"Ollama at {url} sent a reply without a text message")
        contents.append(content)
    return "".join(contents)
