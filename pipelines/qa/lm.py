"""Open-ended tuples from a language model behind an OpenAI-compatible endpoint, checked
against the facts: an answer that contradicts a class, a count, a direction or an order is
rejected and counted, never kept.

The prompt follows LTU's instruction generation (events with their times, a description,
one JSON object per line with keys "q" and "a") and adds the spatial facts. The API key is
read from the environment variable the config names, sent only in the request header, and
never stored or logged. Standard library HTTP only.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from catalog.errors import RoomtoneError
from pipelines.qa.facts import Facts, octant, side
from pipelines.qa.families import QA, answer

SYSTEM = ("You write question-answer pairs about an audio clip for training an audio language model. The user "
          "gives the exact facts of the clip. Write {n} different open-ended questions that need step-by-step "
          "thinking, with step-by-step answers that use only the given facts (which sounds, when, how many, "
          "where, moving or not, the room). Never add sounds, counts, directions or orders that the facts do not "
          "state. Output one JSON object per line with key \"q\" for the question and \"a\" for the answer, and "
          "nothing else.")
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
           "ten": 10}
COUNT_RE = re.compile(r"\b(\d+|" + "|".join(NUMBERS) + r")\s+(?:distinct\s+|different\s+|separate\s+|sound\s+)*"
                      r"(?:events?|sounds?|sources?)\b", re.I)
DIRECTION_RE = re.compile(r"\b(left|right|front|behind|above|below)\b", re.I)


class LmConfig(BaseModel):
    """Where the model is; the key comes from the environment variable ``api_key_env``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    base_url: str = Field(..., pattern=r"^https?://", description="e.g. http://127.0.0.1:8000 (or .../v1)")
    model: str = Field(..., min_length=1)
    api_key_env: str | None = Field(None, description="name of the environment variable holding the key")
    questions: int = Field(5, ge=1, le=20, description="pairs asked per clip")
    max_clips: int | None = Field(None, ge=1, le=10_000_000, description="ask about at most this many clips (default: all)")
    timeout_s: float = Field(60.0, gt=0, le=600)
    concurrency: int = Field(4, ge=1, le=64, description="requests in flight (the driver waits on I/O)")

    @property
    def url(self) -> str:
        base = self.base_url.rstrip("/")
        return base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")


def _headers(cfg: LmConfig) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if cfg.api_key_env:
        headers["Authorization"] = "Bearer " + os.environ[cfg.api_key_env]
    return headers


def preflight(cfg: LmConfig) -> None:
    """Fail before the job when the key's variable is unset or the endpoint does not answer."""
    if cfg.api_key_env and not os.environ.get(cfg.api_key_env):
        raise RoomtoneError(f"lm.api_key_env names {cfg.api_key_env}, which is not set in the environment",
                            f"export {cfg.api_key_env}=<key>, or unset lm.api_key_env for a server without keys")
    request = urllib.request.Request(cfg.url, data=b"{}", headers=_headers(cfg), method="POST")
    try:
        urllib.request.urlopen(request, timeout=min(cfg.timeout_s, 10.0)).close()
    except urllib.error.HTTPError:
        return  # it answered (an empty request is refused by design): reachable
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RoomtoneError(f"the language-model endpoint {cfg.url} is unreachable: {reason}",
                            "start the server or fix lm.base_url (an OpenAI-compatible server answering "
                            "/v1/chat/completions), or leave lm unset for template answers only") from None


def facts_prompt(f: Facts) -> str:
    """LTU's 'Sound Events: ...; Description: ...' message with the spatial and room facts added."""
    events = []
    for e in f.events:
        where = ""
        if e.azimuth is not None:
            words = ", ".join(octant(e.azimuth, e.elevation)) or "straight ahead"
            where = f", {words}, {e.distance:.1f} m" + (
                f", moving {'counter-clockwise' if e.speed > 0 else 'clockwise'}" if e.moving else ", static")
        events.append(f"{e.name}: [{e.onset:.1f}s-{e.offset:.1f}s{where}]")
    parts = [f"Sound Events: {'; '.join(events) if events else ', '.join(f.classes)}"]
    if f.events:
        parts.append(f"Counts: {len(f.events)} events, {len(f.classes)} kinds, at most {f.max_polyphony} at once")
    if f.rt60 is not None:
        parts.append(f"Room: RT60 {f.rt60:.2f} s" + (f", volume {f.volume:.0f} m^3" if f.volume else ""))
    if f.caption:
        parts.append(f"Description: {f.caption}")
    return "; ".join(parts)


def parse(text: str) -> list[tuple[str, str]]:
    """The {"q": ..., "a": ...} objects of a reply (LTU's parsing); malformed ones are skipped."""
    pairs = []
    for blob in re.findall(r"\{[^{}]*\}", text.replace("\n", " ")):
        try:
            obj = json.loads(blob)
        except ValueError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("q"), str) and isinstance(obj.get("a"), str):
            pairs.append((obj["q"].strip(), obj["a"].strip()))
    return pairs


def _mentions(name: str, text: str) -> bool:
    return re.search(r"\b" + re.escape(name) + r"s?\b", text, re.I) is not None


def _allowed_words(f: Facts, name: str) -> set[str]:
    """Every direction word true of some moment of the class's events (sector boundaries
    widened by the margin, so a word is refused only when it is clearly wrong)."""
    words: set[str] = set()
    for e in f.by_class(name):
        if e.azimuth is None:
            continue
        span = e.speed * (e.offset - e.onset)
        for az in e.azimuth + np.linspace(min(0.0, span), max(0.0, span), 16)[:, None] + np.array([-6.0, 6.0]):
            for a in az:
                words |= set(octant(a, e.elevation + 6.0)) | set(octant(a, e.elevation - 6.0))
                words |= {w for w in ("left", "right", "front", "behind") if w in (side(a) or "")}
    return words


def contradiction(text: str, f: Facts, vocabulary: list[str]) -> tuple[str, str] | None:
    """(kind, detail) of the first fact the text contradicts, or None. Kinds: class, count,
    direction, order."""
    masked = text
    for name in sorted(f.classes, key=len, reverse=True):
        masked = re.sub(r"\b" + re.escape(name) + r"s?\b", " ", masked, flags=re.I)
    for name in vocabulary:
        if name.lower() not in {c.lower() for c in f.classes} and _mentions(name, masked):
            return "class", f"mentions {name!r}, which is not in the clip"
    if f.events:
        allowed = {len(f.events), len(f.classes), f.max_polyphony, sum(e.moving for e in f.events)}
        for m in COUNT_RE.finditer(text):
            n = int(m[1]) if m[1].isdigit() else NUMBERS[m[1].lower()]
            if n not in allowed:
                return "count", f"says {m[0]!r}; the clip has {len(f.events)} events of {len(f.classes)} kinds"
    for clause in re.split(r"[.;!?\n]", text):
        named = [c for c in f.classes if _mentions(c, clause)]
        if len(named) == 1 and f.spatial:
            allowed_words = _allowed_words(f, named[0])
            for w in DIRECTION_RE.findall(clause):
                if allowed_words and w.lower() not in allowed_words:
                    return "direction", f"puts {named[0]} {w.lower()}; it is {', '.join(sorted(allowed_words))}"
        if len(named) == 2:
            a, b = sorted(named, key=lambda c: re.search(re.escape(c), clause, re.I).start())
            m = re.search(re.escape(a) + r".*?\b(before|after)\b.*?" + re.escape(b), clause, re.I)
            if m:
                on_a = [e.onset for e in f.by_class(a)]
                on_b = [e.onset for e in f.by_class(b)]
                ok = min(on_a) < max(on_b) if m[1].lower() == "before" else max(on_a) > min(on_b)
                if not ok:
                    return "order", f"says {a} {m[1].lower()} {b}; onsets {min(on_a):.1f} s and {min(on_b):.1f} s"
    return None


def chat(cfg: LmConfig, f: Facts) -> str:
    body = {"model": cfg.model, "temperature": 0, "max_tokens": 1024,
            "messages": [{"role": "system", "content": SYSTEM.format(n=cfg.questions)},
                         {"role": "user", "content": facts_prompt(f)}]}
    request = urllib.request.Request(cfg.url, data=json.dumps(body).encode(), headers=_headers(cfg), method="POST")
    with urllib.request.urlopen(request, timeout=cfg.timeout_s) as reply:
        return json.loads(reply.read())["choices"][0]["message"]["content"]


def ask_all(cfg: LmConfig, facts: list[Facts], vocabulary: list[str]) -> tuple[dict[str, list[QA]], dict]:
    """Kept tuples per audio id, and the summary (asked, kept, rejected by kind, examples)."""
    chosen = sorted(facts, key=lambda f: f.audio_id)[:cfg.max_clips]
    with ThreadPoolExecutor(cfg.concurrency) as pool:
        replies = list(pool.map(lambda f: _reply(cfg, f), chosen))
    kept: dict[str, list[QA]] = {}
    reasons: Counter = Counter()
    examples, failed, unparsed, asked = [], 0, 0, 0
    for f, reply in zip(chosen, replies):
        if reply is None:
            failed += 1
            continue
        pairs = parse(reply)
        unparsed += not pairs
        for q, a in pairs:
            asked += 1
            bad = contradiction(a, f, vocabulary)
            if bad:
                reasons[bad[0]] += 1
                if len(examples) < 5:
                    examples.append({"audio_id": f.audio_id, "question": q, "answer": a, "reason": bad[1]})
                continue
            kept.setdefault(f.audio_id, []).append(
                QA("open", "open-ended question", "open", q, a, answer("text", a), "OPEN", generator="lm"))
    summary = {"endpoint": cfg.url, "model": cfg.model, "clips": len(chosen), "failed_requests": failed,
               "unparsed_replies": unparsed, "answers": asked, "kept": sum(map(len, kept.values())),
               "rejected": sum(reasons.values()), "rejected_by_kind": dict(sorted(reasons.items())),
               "rejected_examples": examples}
    return kept, summary


def _reply(cfg: LmConfig, f: Facts) -> str | None:
    """One clip's reply; a failed request is counted, not fatal (the pre-flight caught a dead endpoint)."""
    try:
        return chat(cfg, f)
    except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TypeError):
        return None
