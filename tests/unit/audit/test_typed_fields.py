"""An entry's typed columns (migration 0058) are a function of what its hash covers:
the body's `action`, `to_state` and `at`, and the uuid its subject names. Hostile bodies
and subjects give NULLs, never an error (the chain's writers derive them for every entry
they chain)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from tongban.audit.domain import TYPED_TEXT_MAX, canonical_json, subject_uuid, typed_fields

U = uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e")


def test_fields_of_a_canonical_body() -> None:
    at = datetime(2026, 3, 1, 17, 30, tzinfo=UTC)
    body = canonical_json({"action": "approve", "to_state": "approved", "at": at, "x": 1})
    assert typed_fields(f"case:{U}", body) == {
        "action": "approve",
        "to_state": "approved",
        "occurred_at": at,
        "subject_id": U,
    }


def test_an_offset_instant_is_kept_as_utc_and_a_naive_one_read_as_utc() -> None:
    got = typed_fields("x", '{"at":"2026-03-02T01:30:00+08:00"}')["occurred_at"]
    assert got == datetime(2026, 3, 1, 17, 30, tzinfo=UTC) and got.tzinfo == UTC
    got = typed_fields("x", '{"at":"2026-03-01T17:30:00"}')["occurred_at"]
    assert got == datetime(2026, 3, 1, 17, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "body",
    [
        "",
        "not json",
        "[1, 2]",
        '"approve"',
        "null",
        '{"action": 5, "to_state": ["closed"], "at": 20260301}',
        '{"action": null, "to_state": {"a": 1}, "at": "2026-13-45T00:00:00Z"}',
        '{"at": "yesterday"}',
        '{"at": "0001-01-01T00:00:00+14:00"}',  # before datetime's range once in UTC
        '{"at": "9999-12-31T23:00:00-05:00"}',  # after it
        '{"action": "' + "a" * (TYPED_TEXT_MAX + 1) + '"}',
    ],
)
def test_hostile_bodies_give_nulls(body: str) -> None:
    got = typed_fields("case:" + str(U), body)
    assert (got["action"], got["to_state"], got["occurred_at"]) == (None, None, None)
    assert got["subject_id"] == U  # the subject is read apart from the body


def test_the_longest_kept_text() -> None:
    action = "a" * TYPED_TEXT_MAX
    assert typed_fields("x", canonical_json({"action": action}))["action"] == action


@pytest.mark.parametrize(
    "subject",
    [
        "case",
        "case:",
        ":",
        "case:" + "-" * 36,
        "case:" + "0" * 36,
        "case:0123456-89abc-def0-1234-56789abcdef0",
        "case:0f8fad5b-d9cb-469f-a165-70867728950-",
        "case:0f8fad5b-d9cb-469f-a165-7086772895 e",
        "case:0f8fad5b-d9cb-469f-a165-70867728950é",
        "case:0f8fad5b_d9cb_469f_a165_70867728950e",
        "case:{0f8fad5b-d9cb-469f-a165-70867728950e}",
        "case:0f8fad5bd9cb469fa16570867728950e",
        "case: 0f8fad5b-d9cb-469f-a165-70867728950e",
    ],
)
def test_subjects_naming_no_canonical_uuid(subject: str) -> None:
    assert subject_uuid(subject) is None


def test_the_uuid_after_the_first_colon_in_any_case() -> None:
    assert subject_uuid(f"settlement:{str(U).upper()}") == U
    assert subject_uuid(f"case:{U}") == U
    assert subject_uuid(f"a:b:{U}") is None  # after the first colon: "b:…" is no uuid
