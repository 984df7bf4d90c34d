"""The test kit's own promises: a line dropped only when a kill cut it, options reach configs."""

from __future__ import annotations

import pytest

from tapkit import config_for, option_variable, parse_lines

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


def test_a_parallelism_option_reaches_every_config(monkeypatch):
    monkeypatch.setenv(option_variable("max_parallel_streams"), "1")
    assert config_for("http://sandbox")["max_parallel_streams"] == 1


def test_an_option_for_a_setting_the_tap_lacks_is_left_out(monkeypatch):
    monkeypatch.setattr("tapkit.PARALLELISM_SETTINGS", ("max_parallel_streams", "no_such_setting"))
    monkeypatch.setenv(option_variable("no_such_setting"), "1")
    assert "no_such_setting" not in config_for("http://sandbox")
