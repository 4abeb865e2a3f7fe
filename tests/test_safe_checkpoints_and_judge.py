"""Issue 13, notebook code: atomic checkpoint saves, loaders that stay safe on hostile files,
and a judge client that survives any reply (fake servers on 127.0.0.1 only). The guarantees
live in the support modules safe_checkpoints and judge_client; the chapters' functions are
tested here because they are what learners and the scripts call."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

import previous_chapters
import safe_checkpoints
from judge_client import JudgeError
from previous_chapters import (
    GPT_CONFIG_124M, GPTModel, add_classification_head, load_classifier_checkpoint,
    load_gpt_checkpoint, parse_score, query_model, save_gpt_checkpoint,
)
from tiny_models import TINY


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return GPTModel(TINY)


# ---------------------------------------------------------------------------
# 3. save_gpt_checkpoint is atomic
# ---------------------------------------------------------------------------

def test_an_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "model.pth"
    save_gpt_checkpoint(path, tiny_model(0), TINY)
    good = path.read_bytes()
    real_save = torch.save

    def killed_midway(obj, f, *args, **kwargs):
        target = open(f, "wb") if isinstance(f, (str, Path)) else f
        target.write(good[:100])  # part of a file, then the process "dies"
        target.flush()
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed_midway)
    with pytest.raises(KeyboardInterrupt):
        save_gpt_checkpoint(path, tiny_model(1), TINY)
    monkeypatch.setattr(torch, "save", real_save)
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pth"]  # no temporary left
    model, _ = load_gpt_checkpoint(path)
    assert torch.equal(model.tok_emb.weight, tiny_model(0).tok_emb.weight)


# ---------------------------------------------------------------------------
# 5, 9. Loaders: no unsafe advice, no allocation the file does not justify
# ---------------------------------------------------------------------------

class NotATensor:
    pass


def test_a_file_with_python_objects_is_refused_without_unsafe_advice(tmp_path):
    path = tmp_path / "objects.pth"
    torch.save({"config": TINY, "model_state_dict": {"x": NotATensor()}}, path)
    for load in (load_gpt_checkpoint, load_classifier_checkpoint):
        with pytest.raises(ValueError) as error:
            load(path)
        message = str(error.value)
        assert "never loaded" in message
        assert "weights_only" not in message and "False" not in message, message
        assert "\n" not in message


@pytest.mark.parametrize("change", [{"vocab_size": 10**12}, {"context_length": 10**6}])
def test_a_config_asking_for_a_huge_model_is_refused_before_allocating(tmp_path, change,
                                                                       monkeypatch):
    path = tmp_path / "huge.pth"
    state_dict = tiny_model().state_dict()

    def never_built(config):
        raise AssertionError(f"GPTModel was built for {config}: the size check came too late")

    monkeypatch.setattr(previous_chapters, "GPTModel", never_built)
    torch.save({"config": {**TINY, **change}, "model_state_dict": state_dict}, path)
    with pytest.raises(ValueError, match="far larger model"):
        load_gpt_checkpoint(path)
    classifier = {**TINY, **change, "num_classes": 2}
    torch.save({"config": classifier, "model_state_dict": state_dict}, path)
    with pytest.raises(ValueError, match="far larger model"):
        load_classifier_checkpoint(path)


def test_the_size_check_knows_the_chapters_model():
    """safe_checkpoints keeps its own copy of two facts about GPTModel: its configuration keys
    and how many numbers it holds."""
    assert set(safe_checkpoints.GPT_CONFIG_KEYS) == set(GPT_CONFIG_124M)
    config = {**TINY, "qkv_bias": True}
    assert safe_checkpoints.gpt_numel(config) == sum(p.numel() for p in GPTModel(config).parameters())


@pytest.mark.parametrize("config", [{**TINY, "emb_dim": str(TINY["emb_dim"])}, [1, 2, 3]])
def test_a_config_of_the_wrong_types_is_a_value_error(tmp_path, config):
    path = tmp_path / "odd.pth"
    torch.save({"config": config, "model_state_dict": tiny_model().state_dict()}, path)
    with pytest.raises(ValueError, match="configuration"):
        load_gpt_checkpoint(path)


def test_a_classifier_with_an_impossible_head(tmp_path):
    model = add_classification_head(tiny_model(), 2)
    path = tmp_path / "clf.pth"
    save_gpt_checkpoint(path, model, {**TINY, "num_classes": 10**12})
    with pytest.raises(ValueError, match="num_classes"):
        load_classifier_checkpoint(path)


# ---------------------------------------------------------------------------
# 4, 5. The judge: any reply gives a grade, None, or one error type; a deadline
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("reply", ["9" * 400, "1e999", None, 42, "", "grade: -0.4",
                                   "99.5", "inf", "nan"])
def test_parse_score_handles_any_reply(reply):
    score = parse_score(reply)
    assert score is None or 0 <= score <= 100
    assert parse_score("9" * 400) is None and parse_score("Score: 87") == 87


def judge(answer):
    """A fake judge server; `answer(handler)` writes whatever HTTP reply it likes."""
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            try:
                answer(self)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/api/chat"


def body(data, length=None):
    def answer(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data) if length is None else length))
        handler.end_headers()
        handler.wfile.write(data)
    return answer


@pytest.mark.parametrize("answer", [
    body(b"<html>502 Bad Gateway</html>"),                    # garbage
    body(b"\xff\xfe\x00{"),                                   # not UTF-8
    body(b"[1, 2, 3]"),                                       # a JSON list
    body(b"42"),                                              # a JSON number
    body(b'{"message": {"content": 7}}'),                     # no text in it
    body(b'{"message": {"content": "8'),                      # cut off, no Content-Length lie
    body(b'{"message": {"content": "80"}}', length=500),      # cut off: fewer bytes than promised
], ids=["garbage", "not-utf8", "list", "number", "no-text", "cut-json", "cut-length"])
def test_every_bad_reply_is_one_error_type(answer):
    server, url = judge(answer)
    try:
        with pytest.raises(JudgeError):
            query_model("grade this", url=url, timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert issubclass(JudgeError, RuntimeError)


def test_a_trickling_judge_meets_the_deadline():
    """A server that sends one byte every 20 ms would take 40 s for its 2,000 bytes; the client
    gives up at its deadline, so the server finds the connection closed long before."""
    offered, written, stopped = 2000, [], threading.Event()

    def trickle(handler):
        handler.send_response(200)
        handler.end_headers()
        try:
            for _ in range(offered):
                handler.wfile.write(b" ")
                handler.wfile.flush()
                written.append(1)
                time.sleep(0.02)
        finally:
            stopped.set()

    server, url = judge(trickle)
    try:
        with pytest.raises(ConnectionError, match="within 0.5 s"):
            query_model("grade this", url=url, timeout=0.5)
        stopped.wait(timeout=120)  # the server notices the closed connection at its next writes
    finally:
        server.shutdown()
        server.server_close()
    assert stopped.is_set() and len(written) < offered
