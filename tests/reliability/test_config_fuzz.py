"""Fuzzing the door: wrong types, huge/negative/NaN/inf numbers, odd and path-like strings and
unknown keys in every stage kind's config and in the spec file itself, through the YAML a user
writes (read_spec -> plan_spec, the path of `roomtone run`). Every outcome must be a valid plan
whose values a stage can use, or a RoomtoneError naming the field: never another exception,
which would surface as a traceback from deep inside a stage.

Tally (each run): 8 stage kinds x 150 + 150 spec-level = 1350 generated configs; every one is
either refused with a RoomtoneError or valid and within the checked bounds. Fixed at the door
for these checks: NaN/inf and unbounded numbers accepted (no allow_inf_nan=False, seeds and
sizes without an upper bound, scene and grid ranges without physical limits), path-like dataset
names and references ("../x", "a/b") accepted until publish, huge integers in augment steps
raising OverflowError, an unhashable `kind` raising TypeError, and a non-mapping `stages` or an
unparsable `--set` value raising AttributeError / TypeError / YAMLError.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog import RoomtoneError
from catalog.names import DatasetRef, validate_name
from pipelines.spec import STAGE_KINDS, Plan, plan_spec, read_spec

ODD_STRINGS = ["", " ", "../x", "a/b", "/etc/passwd", "x" * 300, "Scenes", "ünï", "a\x00b", "name@v1", "x@../y",
               "s3://bucket/k", "~", ".", "-1", "null", "1e999", "a b", "😀"]
NUMBERS = st.one_of(st.integers(-10**30, 10**30), st.sampled_from([0, -1, 2**63, -2**63, 10**400]),
                    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1e308, -1e308, 5e-324]))
SCALARS = st.one_of(NUMBERS, st.booleans(), st.none(), st.sampled_from(ODD_STRINGS), st.text(max_size=20))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                      max_leaves=6)
# fields a stage reads as a dataset (checked as references) and the ones it writes (checked as names)
REF_FIELDS = {"events", "rirs", "source", "dataset", "catalog_dataset"}
FREE_FORM = {"model_overrides", "steps"}  # checked by their consumers (create_model, Spec.from_dict) at the door
# bodies that are valid before fuzzing: events needs a source, eval a checkpoint
BASE = {"events": {"catalog_dataset": "lib"}, "eval": {"checkpoint": "runs/x"}}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TMP = Path(tempfile.mkdtemp(prefix="roomtone-fuzz-"))


def through_the_door(spec, overrides=()) -> Plan | None:
    """The YAML text a user writes, read and planned as `roomtone run` does; None when refused."""
    path = TMP / "spec.yaml"
    try:
        path.write_text(yaml.safe_dump(spec, allow_unicode=True) if not isinstance(spec, str) else spec)
    except (yaml.YAMLError, UnicodeEncodeError):
        return None  # not writable as YAML text, so no user can hand it over
    try:
        return plan_spec(read_spec(path), where=str(path), overrides=list(overrides))
    except RoomtoneError as exc:
        assert exc.problem and exc.fix, exc
        return None


def usable(value, field: str) -> None:
    """What a valid config must hold: finite numbers that fit the catalog's int64 and JSON columns."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        assert abs(value) <= 2**53, (field, value)
    elif isinstance(value, float):
        assert math.isfinite(value), (field, value)
    elif isinstance(value, (list, tuple)):
        for v in value:
            usable(v, field)
    elif isinstance(value, dict):
        for v in value.values():
            usable(v, field)


def check_plan(plan: Plan) -> None:
    for stage in plan.stages:
        dumped = stage.config.model_dump(mode="python")
        for field, value in dumped.items():
            if field in FREE_FORM:
                continue
            usable(value, field)
            if field == "name" and value is not None:
                validate_name(value)
            if field in REF_FIELDS and value is not None:
                DatasetRef.parse(value)


@pytest.mark.parametrize("kind", sorted(STAGE_KINDS))
def test_stage_fields(kind):
    fields = sorted(STAGE_KINDS[kind].config().model_fields)

    @FUZZ
    @given(body=st.dictionaries(st.sampled_from(fields + ["unknown_key", "Name", "kind "]), VALUES,
                                min_size=1, max_size=3))
    def fuzz(body):
        spec = {"name": "fuzz", "stages": {"s": {"kind": kind, **BASE.get(kind, {}), **body}}}
        plan = through_the_door(spec)
        if plan is not None:
            check_plan(plan)

    fuzz()


STAGE_BODY = st.fixed_dictionaries({"kind": st.one_of(st.sampled_from(sorted(STAGE_KINDS)), SCALARS)},
                                   optional={"name": SCALARS, "seed": NUMBERS})


@FUZZ
@given(name=st.one_of(st.just("ok"), SCALARS), seed=st.one_of(st.none(), NUMBERS),
       stages=st.one_of(VALUES, st.dictionaries(st.one_of(st.sampled_from(ODD_STRINGS), st.just("rooms")),
                                                STAGE_BODY, max_size=3)),
       extra=st.dictionaries(st.sampled_from(["description", "unknown", "stage"]), VALUES, max_size=2),
       overrides=st.lists(st.one_of(st.sampled_from(["rooms.num_rooms=[", "seed=-1", "rooms.x=1", "nodot",
                                                     "rooms.name=../x", "=1", "rooms.seed=1e999", ".=", "a.b.c=d"]),
                                    st.text(max_size=12)), max_size=2))
def test_spec_file(name, seed, stages, extra, overrides):
    plan = through_the_door({"name": name, "seed": seed, "stages": stages, **extra}, overrides)
    if plan is not None:
        check_plan(plan)


@pytest.mark.parametrize("text", ["stages: [unclosed", "- a\n- b\n", "", "name: x\nstages:\n", "\x00", ": :",
                                  "name: !!python/object:os.system x\n", "name: &a [*a]\n"])
def test_spec_text_that_is_no_spec(text):
    assert through_the_door(text) is None
