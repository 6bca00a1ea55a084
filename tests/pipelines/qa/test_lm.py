"""The language-model path against a real HTTP server on 127.0.0.1 (stdlib http.server)."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from typing import get_args
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog import RoomtoneError
from pipelines.qa import Context, EventFact, Facts, LmConfig, Ontology, contradiction, extract_facts, facts_prompt, \
    generate, parse
from pipelines.qa.families import SPATIAL_NOTE
from pipelines.qa.lm import ask_all, preflight
from pipelines.stages.synthetic_events import Kind
from simulation.scenes import PlannedEvent
from simulation.scenes.labels import describe
from tests.conftest import free_port
from tests.pipelines.qa.test_families import CLASSES, ONTOLOGY, scene_row

GOOD = {"q": "What happens first, and where?", "a": "The Dog barks first, to the left, then the Bell rings."}
BAD = {"q": "How many sounds are there?", "a": "There are five sound events, including a Cat."}


def facts(dog: str | None = None, bell: str | None = None) -> Facts:
    """A static Dog (0.5-1.5 s, left front, 1.5 m) then a static Bell (2-3 s, right behind, 2 m)."""
    events = (EventFact("Dog", dog, "dog-1", 0.5, 1.5, 80.0, 0.0, 1.5), EventFact("Bell", bell, "bell-1", 2.0, 3.0,
                                                                                  -100.0, 10.0, 2.0))
    return Facts("scene-1", 4.0, ("Bell", "Dog"), {"Bell": bell, "Dog": dog}, events, True, 1, 0.5, 60.0)


@pytest.fixture(scope="module")
def ontology():
    if not ONTOLOGY.is_file():
        pytest.skip("../shared/data is not beside the checkout")
    return Ontology.load(ONTOLOGY)


class Stub(BaseHTTPRequestHandler):
    requests: list = []
    status: int | None = None        # refuse every request with this status
    chat_status: int | None = None   # refuse real (chat) requests with this status ...
    chat_marker: str = ""            # ... those whose prompt holds this text

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        Stub.requests.append((dict(self.headers), body))
        chat = "messages" in body and Stub.chat_marker in body["messages"][-1]["content"]
        refuse = Stub.status or (400 if "messages" not in body else Stub.chat_status if chat else None)
        if refuse:
            self.send_response(refuse)
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
    Stub.requests, Stub.status, Stub.chat_status, Stub.chat_marker = [], None, None, ""
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_one_good_and_one_contradicting_answer_keep_one_and_count_one(stub, monkeypatch):
    monkeypatch.setenv("ROOMTONE_TEST_KEY", "sk-test-123")
    cfg = LmConfig(base_url=stub, model="stub-model", api_key_env="ROOMTONE_TEST_KEY")
    preflight(cfg)
    kept, summary = ask_all(cfg, [facts()], vocabulary=["Bell", "Cat", "Dog"])
    assert [(q.question, q.output, q.generator, q.closed) for q in kept["scene-1"]] == \
        [(GOOD["q"] + SPATIAL_NOTE, GOOD["a"], "lm", False)]  # a spatial clip's question states the frame
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


@pytest.mark.parametrize("status, says", [(401, "key was refused"), (403, "key was refused"),
                                           (404, "no chat endpoint at that path"), (500, "server's log")])
def test_an_endpoint_that_refuses_requests_fails_before_the_job(stub, status, says):
    """Any HTTP error used to pass the pre-flight: a refused key or a wrong path then failed every
    request, and the run published without the model's answers. Only 400/422 (an empty request
    refused by a live endpoint) pass."""
    Stub.status = status
    with pytest.raises(RoomtoneError, match=f"HTTP {status}") as err:
        preflight(LmConfig(base_url=stub, model="m"))
    assert says in err.value.fix


def test_when_every_request_fails_the_run_stops_naming_the_first_failure(stub):
    cfg = LmConfig(base_url=stub, model="no-such-model")
    Stub.chat_status = 404  # the endpoint is live, the model is not
    preflight(cfg)
    with pytest.raises(RoomtoneError, match="every request .* failed .* scene-1: HTTP 404"):
        ask_all(cfg, [facts()], vocabulary=["Bell", "Dog"])


def test_a_failed_request_among_good_ones_is_counted_with_its_reason(stub):
    cfg = LmConfig(base_url=stub, model="m")
    Stub.chat_status, Stub.chat_marker = 500, "a refused clip"
    refused = replace(facts(), audio_id="scene-2", caption="a refused clip")
    kept, summary = ask_all(cfg, [facts(), refused], vocabulary=["Bell", "Cat", "Dog"])
    assert summary["failed_requests"] == 1 and summary["first_failure"].startswith("scene-2: HTTP 500")
    assert summary["kept"] == 1 and set(kept) == {"scene-1"}


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


@pytest.mark.parametrize("text, kind", [
    ("The Bell is heard first, then the Dog.", "order"),            # the audit's misses
    ("The Dog follows the Bell.", "order"),
    ("Only a single sound event occurs.", "count"),
    ("The Dog and the Bell are both on the right.", "direction"),
    ("The Bell precedes the Dog.", "order"),
    ("After the Bell rings, the Dog barks.", "order"),
    ("The Dog barks after the Bell.", "order"),
    ("First the Bell, then the Dog.", "order"),
    ("The Bell is followed by the Dog.", "order"),
    ("There is one sound source in the room.", "count"),
    ("Three different sounds can be heard.", "count"),
    ("Two moving sources circle the array.", "count"),              # both are static
    ("The Dog is on the right and the Bell on the left.", "direction"),
    ("Both the Dog and the Bell are behind the listener.", "direction"),
    ("The Dog comes last.", "order"),
    ("The Bell is heard first and the Dog last.", "order"),
    ("Three Dogs are barking.", "count"),                            # the second audit's misses
    ("Both sounds come from the left.", "direction"),
    ("The Bell is the first sound.", "order"),
    ("The first sound is the Bell.", "order"),
    ("The Dog is the last one to be heard.", "order"),
    ("Every sound comes from behind.", "direction"),
    ("Only a Dog can be heard; there is no Bell in the clip.", "class"),   # the third audit's misses
    ("The Bell is absent.", "class"),
    ("The Bell cannot be heard.", "class"),
    ("The Dog and the Bell overlap.", "order"),
    ("The Dog and the Bell ring out at the same time.", "order"),
    ("First, the Bell rings.", "order"),                                    # the fourth audit's misses
    ("The clip begins with the Bell.", "order"),
    ("The Dog is at the rear.", "direction"),
    ("The Bell is straight ahead.", "direction"),
])
def test_common_phrasings_of_a_wrong_order_count_or_direction_are_rejected(text, kind):
    found = contradiction(text, facts(), ["Bell", "Cat", "Dog"])
    assert (found[0] if found else None) == kind, found


@pytest.mark.parametrize("text", [
    "The Dog barks first, then the Bell rings.",
    "The Dog is heard first, to the left, and then the Bell rings behind, on the right.",
    "The Bell follows the Dog.",
    "The Dog precedes the Bell, which is followed by silence.",
    "After the Dog barks, the Bell rings.",
    "The Dog barks and then, after a pause, the Bell rings.",
    "The Dog barks right before the Bell rings.",                   # "right before" is no direction
    "There are two sound events, never more than one at a time.",
    "A pair of sounds is heard: a Dog and a Bell.",
    "Two sounds occur, one at a time, and no source is moving: two static sources.",
    "The Dog is a single sound event on the left.",                 # describes the Dog, counts nothing
    "The Dog is on the left and the Bell on the right.",
    "The Dog and the Bell are both static.",
    "One of the two sounds, the Dog, comes from the front left.",
    "The first sound is the Dog; the Bell rings later, from behind.",
    "The Bell comes last, after the Dog.",
    "The Dog's bark lasts a second; at last the Bell rings.",
    "One Dog barks, then one Bell rings.",
    "The Dog is the first sound, the Bell the last one.",
    "The first Dog barks on the left.",
    "Both sounds are static.",
    "There is no Cat, only a Dog and then a Bell.",
    "The Dog barks; no other sound overlaps it.",
    "The Bell is not heard until the Dog has stopped.",
    "The Dog is heard first, then, on the right, the Bell.",
    "First, the Dog barks; the Bell comes from the back.",
    "The clip begins with the Dog, and the Bell rings back and forth.",
])
def test_correct_answers_in_those_phrasings_are_kept(text):
    assert contradiction(text, facts(), ["Bell", "Cat", "Dog"]) is None


def test_with_an_ontology_any_sound_source_counts_but_related_and_descriptive_words_do_not(ontology):
    f = facts(dog=CLASSES["Dog"], bell=CLASSES["Bell"])
    for text in ("A Siren wails in the distance.", "A Cat meows.", "Rain falls behind the listener."):
        assert contradiction(text, f, ["Bell", "Dog"], ontology)[0] == "class", text
        assert contradiction(text, f, ["Bell", "Dog"]) is None  # the dataset's vocabulary alone misses them
    kept = ("The Dog barks on the left, then the Bell chimes; a domestic animal and a musical instrument.",
            "The room adds reverberation and some background noise, picked up by the microphone array.",
            "The Dog's bark has a sharp echo.")
    for text in kept:
        assert contradiction(text, f, ["Bell", "Dog"], ontology) is None, text


DEMO_CLASSES = get_args(Kind)   # the zero-download demo's synthetic library: noise_burst, chirp_tone, ...


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), duration=st.sampled_from([3.0, 6.0, 10.0]), moving=st.sampled_from([0.0, 0.5, 1.0]),
       names=st.one_of(st.lists(st.sampled_from(sorted(CLASSES)), min_size=1, max_size=4, unique=True),
                       st.lists(st.sampled_from(DEMO_CLASSES), min_size=1, max_size=4, unique=True)))
def test_the_template_answers_true_by_construction_are_never_rejected(ontology, seed, duration, moving, names):
    """Every family's answers and the scene caption, for AudioSet names and the demo's own (not the
    ontology's descriptions, whose prose names other sources: "struck by a ... hammer")."""
    row = scene_row(seed, duration, moving, names)
    plan_events = [PlannedEvent(e["event_id"], 0, e["class_name"], e["track"], e["onset"], e["offset"], 0.0,
                                e["azimuth"], e["elevation"], e["distance"], e["speed"]) for e in row["events"]]
    row["caption"] = describe(plan_events) + ", in a small dry room"
    f = extract_facts(row)
    vocabulary = sorted(set(CLASSES) | set(DEMO_CLASSES))
    for qa in generate(f, Context(seed=0, class_map=tuple(vocabulary), ontology=ontology)):
        if qa.family == "description":
            continue
        assert contradiction(qa.output, f, vocabulary, ontology) is None, (qa.task, qa.output)


def test_parse_keeps_only_well_formed_pairs():
    text = '{"q": "a?", "a": "b"}\nnoise {"q": 1, "a": "x"} {broken\n{"q": "c?", "a": "d"}'
    assert parse(text) == [("a?", "b"), ("c?", "d")]
    assert "Counts: 2 events, 2 kinds, at most 1 at once" in facts_prompt(facts())


def test_ordinals_of_a_class_named_like_a_noun_are_no_order_claims():
    """'the first noise_burst' (the demo's synthetic class, as the templates name it) was read as
    'noise_burst is the first sound', and the template's own true answer was rejected."""
    from pipelines.qa.facts import _named

    events = _named([EventFact("chirp_tone", None, "c-1", 0.1, 1.0, 30.0, 0.0, 1.5),
                     EventFact("noise_burst", None, "n-1", 2.0, 2.5, -100.0, 0.0, 1.6),
                     EventFact("noise_burst", None, "n-2", 3.0, 3.5, -100.0, 0.0, 1.6)])
    f = Facts("s", 4.0, ("chirp_tone", "noise_burst"), {"chirp_tone": None, "noise_burst": None}, events, True, 1)
    vocabulary = ["chirp_tone", "noise_burst"]
    for qa in generate(f, Context(families=("open",))):
        assert contradiction(qa.output, f, vocabulary) is None, qa.output
    assert contradiction("The second noise burst comes after the first noise burst.", f, vocabulary) is None
    assert contradiction("The noise_burst is the first sound.", f, vocabulary)[0] == "order"


def _two_dogs() -> Facts:
    """A Dog on the left at 0 s, a Bell in front at 3 s, a second Dog on the right at 6 s."""
    def event(name, onset, azimuth):
        return {"event_id": f"{name}-{onset}", "class_name": name, "onset": onset, "offset": onset + 1.0,
                "azimuth": azimuth, "elevation": 0.0, "distance": 2.0, "speed": 0.0, "track": 0}
    return extract_facts({"id": "s", "duration": 10.0, "format": "foa", "num_channels": 4, "label": ["Bell", "Dog"],
                          "events": [event("Dog", 0.0, 90.0), event("Bell", 3.0, 0.0), event("Dog", 6.0, -90.0)]})


@pytest.mark.parametrize("text, kind", [
    ("The first Dog barks from the right.", "direction"),
    ("The second Dog is on the left.", "direction"),
    ("The second Dog barks before the Bell.", "order"),
    ("The Bell rings after the second Dog.", "order"),
    ("The first Dog and the Bell sound at the same time.", "order"),
    ("The first Dog comes from the left, the second Dog from the right.", None),
    ("The Bell rings after the first Dog and before the second Dog.", None),
    ("A Dog barks on the right.", None),   # one of the Dogs is there
])
def test_a_claim_about_the_second_dog_is_checked_against_that_dog(text, kind):
    """The prompt names a recurring class's events by ordinal; the check pooled them, so a claim
    false of the second Dog but true of the first was kept."""
    f = _two_dogs()
    assert "second Dog: [6.0s-7.0s, right" in facts_prompt(f)
    assert (contradiction(text, f, ["Bell", "Dog"]) or (None,))[0] == kind


@pytest.mark.parametrize("text, kind", [
    ("There isn't a Bell in the clip.", "class"),                    # the eleventh audit's misses
    ("The recording does not contain any Dog.", "class"),
    ("The Bell rings, and later the Dog barks.", "order"),
    ("The Bell rings and afterwards the Dog barks.", "order"),
    ("The Dog is not on the left.", "direction"),
    ("The Dog isn't coming from the left side.", "direction"),
    ("The Dog is at an azimuth of -90 degrees.", "direction"),
    ("The Bell is at an elevation of 60°.", "direction"),
    ("The Bell rings 5 metres away.", "direction"),
    ("The Dog and the Bell never overlap.", None),                    # true: 0.5-1.5 s and 2-3 s
    ("The Bell is not on the left.", None),
    ("The Dog is at about 80 degrees azimuth, 1.5 m away.", None),
    ("The Bell rings at azimuth 255 degrees and elevation 10 degrees.", None),   # -105: within the margin
    ("The Bell rings in a 5 m wide room of 60 cubic metres.", None),
    ("The Bell is 10 degrees above the horizontal plane.", None),
    ("The Bell is 40 degrees below the array.", "direction"),
    ("We do not hear the Bell until the Dog stops.", None),
    ("There is not only a Dog but also a Bell.", None),
])
def test_denials_later_and_numbers_are_read(text, kind):
    found = contradiction(text, facts(), ["Bell", "Cat", "Dog"])
    assert (found[0] if found else None) == kind, found


def test_sounds_said_never_to_overlap_that_do_are_rejected():
    overlapping = replace(facts(), events=(facts().events[0], replace(facts().events[1], onset=1.0, offset=2.0)))
    assert contradiction("The Dog and the Bell do not overlap.", overlapping, ["Bell", "Dog"])[0] == "order"
    assert contradiction("The Dog and the Bell overlap.", overlapping, ["Bell", "Dog"]) is None


@pytest.mark.parametrize("question, answer_text, kind", [
    ("Why does the Bell ring before the Dog?", "Because the bell was struck first.", "order"),
    ("Why does the Cat meow?", "It is hungry.", "class"),
    ("Does the Bell ring before the Dog?", "Yes, it does.", "order"),
    ("Does the Bell ring before the Dog?", "No, the Dog comes first.", None),
    ("Is there a Cat?", "No.", None),
    ("Which sound comes first, and from where?", "The Dog, from the left.", None),
])
def test_a_question_that_presupposes_a_falsehood_is_rejected(question, answer_text, kind):
    """The answer alone was checked, so a question built on a false premise was kept with it."""
    from pipelines.qa.lm import contradicted_pair

    found = contradicted_pair(question, answer_text, facts(), ["Bell", "Cat", "Dog"])
    assert (found[0] if found else None) == kind, found


def _moving_dog() -> Facts:
    """facts() with the Dog turning clockwise from the left (80 deg) to the front (20 deg)."""
    f = facts()
    return replace(f, events=(replace(f.events[0], speed=-60.0), f.events[1]))


@pytest.mark.parametrize("text, kind", [
    ("The Dog barks on the left, moving towards the front while the Bell rings behind.", None),  # a caption's shape
    ("The Dog moves clockwise and the Bell is static.", None),
    ("The Dog moves counter-clockwise.", "direction"),                  # the twelfth audit's misses
    ("The Bell is moving.", "direction"),
    ("The Dog is stationary.", "direction"),
    ("The Dog is not moving.", "direction"),
])
def test_motion_claims_are_checked(text, kind):
    found = contradiction(text, _moving_dog(), ["Bell", "Cat", "Dog"])
    assert (found[0] if found else None) == kind, found


@pytest.mark.parametrize("text, kind", [
    ("Both sounds are heard at the same time.", "order"),
    ("Two sound events overlap.", "count"),
    ("The Bell is the earliest sound.", "order"),
    ("The Bell rings 2.0 m away on the left.", "direction"),
    ("The Dog (1.5 m) is on the right.", "direction"),
    ("No two sounds overlap.", None),
    ("At most one sound is heard at once.", None),
    ("The Dog barks from the left at 1.5 m, then the Bell rings on the right at 2.0 m.", None),
    ("The Bell is not the first sound; the Dog is.", None),
    ("The Dog, not the Bell, comes first.", None),
    ("The Dog barks while the Bell is silent.", None),
])
def test_unnamed_overlaps_decimals_and_negated_orders_are_read(text, kind):
    found = contradiction(text, facts(), ["Bell", "Cat", "Dog"])
    assert (found[0] if found else None) == kind, found


@pytest.mark.parametrize("question, answer_text", [
    ("Does the Bell ring before the Dog?", "The Dog barks first and the Bell rings after it, so the answer is no."),
    ("Does the Bell ring before the Dog?", "The Bell does not ring before the Dog; the Dog comes first."),
    ("Is there a Cat in the clip?", "There is no Cat; only a Dog and a Bell are heard."),
])
def test_a_yes_no_question_answered_other_than_yes_claims_nothing(question, answer_text):
    """Step-by-step answers put the 'no' last: the question was checked as a claim and true answers rejected."""
    from pipelines.qa.lm import contradicted_pair

    assert contradicted_pair(question, answer_text, facts(), ["Bell", "Cat", "Dog"]) is None


@pytest.mark.parametrize("question, answer_text, kind", [
    ("Is the Bell heard before the Dog?", "The Bell rings from 2.0s to 3.0s and the Dog from 0.5s to 1.5s. So the "
                                          "answer is yes.", "order"),                # the thirteenth audit's misses
    ("Do the Dog and the Bell overlap?", "The Dog spans 0.5-1.5 s and the Bell 2.0-3.0 s; therefore yes.", "order"),
    ("Where is the Dog relative to the array?", "It is on the right side, about 1.5 m away.", "direction"),
    ("Which sound is heard first?", "The Bell, at 0.5 s.", "order"),
    ("Is the Dog louder than the Bell?", "The Dog is not louder than the Bell, so no.", None),
    ("Where is the Bell?", "It is behind on the right, 2.0 m away, and above the array.", None),
])
def test_a_verdict_at_the_end_and_a_pronoun_are_read(question, answer_text, kind):
    from pipelines.qa.lm import contradicted_pair

    found = contradicted_pair(question, answer_text, facts(), ["Bell", "Cat", "Dog"])
    assert (found[0] if found else None) == kind, found


@pytest.mark.parametrize("text, kind", [
    ("The Bell starts at 0.5s and the Dog at 2.0s.", "order"),
    ("The Bell is heard from 0.5s-1.5s.", "order"),
    ("The Bell is the closest source.", "direction"),
    ("The Dog is farther away than the Bell.", "direction"),
    ("The Dog is heard from 0.5s-1.5s and the Bell from 2.0s to 3.0s.", None),
    ("The Dog is the closest source, 0.5 m closer than the Bell.", None),
    ("The Bell is 0.5 m farther away than the Dog.", None),
    ("The Dog does not overlap with the Bell.", None),
    ("The Dog is not heard at the same time as the Bell.", None),
    ("The Dog is not moving and the Bell is not moving either.", None),
    ("After the Dog stops, only the Bell is left.", None),
    ("The Dog is heard right from the start of the clip.", None),
    ("The room's RT60 of 0.5 s makes the Bell ring on.", None),
])
def test_times_distances_and_more_negations_are_read(text, kind):
    found = contradiction(text, facts(), ["Bell", "Cat", "Dog"])
    assert (found[0] if found else None) == kind, found


@pytest.mark.parametrize("text, kind", [
    ("There are two sound events in the clip.", "count"),     # 3 events of 2 kinds, one at a time
    ("The clip holds three different kinds of sound.", "count"),
    ("At most three sounds overlap at once.", "count"),
    ("There are three sound events of two kinds, one at a time.", None),
    ("The Dog is heard twice, first at 0.5s on the left and then at 6.0s on the right.", None),
])
def test_counts_are_read_by_what_they_count(text, kind):
    f = _two_dogs()   # Dog 0 s left, Bell 3 s front, Dog 6 s right
    found = contradiction(text.replace("0.5s", "0.0s"), f, ["Bell", "Dog"])
    assert (found[0] if found else None) == kind, found
