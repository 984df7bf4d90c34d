"""scripts/backfill.py's last step: rows, distinct ids and the API's count, per stream."""

from __future__ import annotations

import importlib.util
import typing as t
import uuid

import pytest
from e2ekit import ROOT, STREAMS, Postgres

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def backfill_script() -> ModuleType:
    """scripts/backfill.py as a module."""
    spec = importlib.util.spec_from_file_location("backfill", ROOT / "scripts" / "backfill.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def loaded(postgres: Postgres) -> Iterator[str]:
    """A schema with two rows in every stream's table, dropped afterwards."""
    schema = f"check_{uuid.uuid4().hex[:10]}"
    postgres.query(f'CREATE SCHEMA "{schema}"')
    for table in STREAMS:
        postgres.query(f'CREATE TABLE "{schema}"."{table}" (id text)')
        postgres.query(f"INSERT INTO \"{schema}\".\"{table}\" VALUES ('a'), ('b')")  # noqa: S608
    yield schema
    postgres.query(f'DROP SCHEMA "{schema}" CASCADE')


def test_the_check_passes_when_rows_ids_and_the_api_agree(
    backfill_script: ModuleType, postgres: Postgres, loaded: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert backfill_script.check(postgres, loaded, dict.fromkeys(STREAMS, 2))
    assert capsys.readouterr().out.count(" OK\n") == len(STREAMS)


def test_the_check_fails_on_a_doubled_row_or_a_missing_record(
    backfill_script: ModuleType, postgres: Postgres, loaded: str, capsys: pytest.CaptureFixture[str]
) -> None:
    postgres.query(f"INSERT INTO \"{loaded}\".customers VALUES ('a')")  # noqa: S608
    counts = {**dict.fromkeys(STREAMS, 2), "events": 3}
    assert not backfill_script.check(postgres, loaded, counts)
    out = capsys.readouterr().out
    assert f"{loaded}.customers" in out
    assert out.count("MISMATCH") == 2
    # An API that cannot count: rows are checked against distinct ids alone.
    assert not backfill_script.check(postgres, loaded, {})
    assert capsys.readouterr().out.count("MISMATCH") == 1
