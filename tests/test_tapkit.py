"""The test kit's own promises: a Singer output line is dropped only when a kill cut it short."""

from __future__ import annotations

import pytest

from tapkit import parse_lines

STATE = b'{"type":"STATE","value":{}}'
RECORD = b'{"type":"RECORD","stream":"customers","record":{"id":"cus_1"}}'


def test_a_partial_last_line_is_dropped():
    assert parse_lines(STATE + b"\n" + RECORD[:20]) == [{"type": "STATE", "value": {}}]


def test_an_unterminated_complete_last_line_is_kept():
    assert [m["type"] for m in parse_lines(STATE + b"\n" + RECORD)] == ["STATE", "RECORD"]


@pytest.mark.parametrize(
    "data",
    [
        STATE + b"\nnot json\n" + RECORD + b"\n",
        STATE + b"\n" + RECORD[:20] + b"\n" + RECORD + b"\n",
        STATE + b"\n\n" + RECORD + b"\n",
        STATE + b"\n" + RECORD[:20] + b"\n",
    ],
    ids=["garbage-inside", "cut-inside", "blank-inside", "cut-but-terminated-last"],
)
def test_any_other_bad_line_fails(data):
    with pytest.raises(AssertionError, match="is not a JSON message"):
        parse_lines(data)
