"""The language-model path against a real HTTP server on 127.0.0.1 (stdlib http.server)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from catalog import RoomtoneError
from pipelines.qa import EventFact, Facts, LmConfig, contradiction, facts_prompt, parse
from pipelines.qa.lm import ask_all, preflight
from tests.conftest import free_port

GOOD = {"q": "What happens first, and where?", "a": "The Dog barks first, to the left, then the Bell rings."}
BAD = {"q": "How many sounds are there?", "a": "There are five sound events, including a Cat."}


def facts() -> Facts:
    events = (EventFact("Dog", None, "dog-1", 0.5, 1.5, 80.0, 0.0, 1.5), EventFact("Bell", None, "bell-1", 2.0, 3.0,
                                                                                   -100.0, 10.0, 2.0))
    return Facts("scene-1", 4.0, ("Bell", "Dog"), {"Bell": None, "Dog": None}, events, True, 1, 0.5, 60.0)


class Stub(BaseHTTPRequestHandler):
    requests: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        Stub.requests.append((dict(self.headers), body))
        if "messages" not in body:
            self.send_response(400)
            self.end_headers()
            return
        content = json.dumps(GOOD) + "\n" + json.dumps(BAD)
        reply = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Stub.requests = []
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_one_good_and_one_contradicting_answer_keep_one_and_count_one(stub, monkeypatch):
    monkeypatch.setenv("ROOMTONE_TEST_KEY", "sk-test-123")
    cfg = LmConfig(base_url=stub, model="stub-model", api_key_env="ROOMTONE_TEST_KEY")
    preflight(cfg)
    kept, summary = ask_all(cfg, [facts()], vocabulary=["Bell", "Cat", "Dog"])
    assert [(q.question, q.output, q.generator, q.closed) for q in kept["scene-1"]] == \
        [(GOOD["q"], GOOD["a"], "lm", False)]
    assert summary["kept"] == 1 and summary["rejected"] == 1 and summary["answers"] == 2
    assert summary["rejected_by_kind"] == {"class": 1}
    headers, body = Stub.requests[-1]
    assert headers["Authorization"] == "Bearer sk-test-123" and body["model"] == "stub-model"
    assert "Dog: [0.5s-1.5s, left, front, 1.5 m, static]" in body["messages"][1]["content"]
    assert "sk-test-123" not in json.dumps(summary) and "sk-test-123" not in cfg.model_dump_json()


def test_an_unreachable_endpoint_fails_before_the_job_naming_the_url():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RoomtoneError, match=f"endpoint {url}/v1/chat/completions is unreachable") as err:
        preflight(LmConfig(base_url=url, model="m"))
    assert "lm.base_url" in err.value.fix


def test_a_named_but_unset_key_variable_is_refused(monkeypatch):
    monkeypatch.delenv("ROOMTONE_NO_SUCH_KEY", raising=False)
    with pytest.raises(RoomtoneError, match="ROOMTONE_NO_SUCH_KEY"):
        preflight(LmConfig(base_url="http://127.0.0.1:1", model="m", api_key_env="ROOMTONE_NO_SUCH_KEY"))


@pytest.mark.parametrize("text, kind", [
    ("The Dog barks to the left while the Bell rings.", None),
    ("A Cat meows next to the Dog.", "class"),
    ("There are three sound events.", "count"),
    ("There are 2 distinct sounds, a Dog and a Bell.", None),
    ("The Dog is to the right of the listener.", "direction"),
    ("The Bell is heard from the right.", None),
    ("The Bell rings before the Dog barks.", "order"),
    ("The Dog barks before the Bell rings.", None),
])
def test_contradictions_by_kind(text, kind):
    found = contradiction(text, facts(), ["Bell", "Cat", "Dog"])
    assert (found[0] if found else None) == kind


def test_parse_keeps_only_well_formed_pairs():
    text = '{"q": "a?", "a": "b"}\nnoise {"q": 1, "a": "x"} {broken\n{"q": "c?", "a": "d"}'
    assert parse(text) == [("a?", "b"), ("c?", "d")]
    assert "Counts: 2 events, 2 kinds, at most 1 at once" in facts_prompt(facts())
