"""A data directory: the seed and counts the records come from, and a journal of changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

IDENTITY_FILE = "sandbox.json"
JOURNAL_FILE = "updates.jsonl"
Record = dict[str, Any]


class DataDirMismatchError(ValueError):
    """The data directory holds records generated from another seed or other counts."""


class DataDir:
    """Records are regenerated from the seed; updates and additions replayed from the journal."""

    def __init__(self, path: Path | str, seed: int, counts: dict[str, int]) -> None:
        """Open (or create) the directory for data generated from `seed` and `counts`."""
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        identity = {"seed": seed, "counts": counts}
        identity_file = self.path / IDENTITY_FILE
        if identity_file.exists():
            kept = json.loads(identity_file.read_text(encoding="utf-8"))
            differences = [
                f"{key} {json.dumps(kept.get(key))} (not {json.dumps(value)})"
                for key, value in identity.items()
                if kept.get(key) != value
            ]
            if differences:
                msg = (
                    f"{self.path} holds data made with {' and '.join(differences)}: "
                    "start with those settings or use another data directory"
                )
                raise DataDirMismatchError(msg)
        else:
            identity_file.write_text(json.dumps(identity) + "\n", encoding="utf-8")
        self.journal = self.path / JOURNAL_FILE
        self.updates = self.read_journal()

    def read_journal(self) -> dict[str, list[Record]]:
        """Return the updated and added records by resource, in the order they changed."""
        updates: dict[str, list[Record]] = {}
        if not self.journal.exists():
            return updates
        text = self.journal.read_text(encoding="utf-8")
        complete = text[: text.rfind("\n") + 1]
        if complete != text:  # the sandbox was killed while writing the last line
            self.journal.write_text(complete, encoding="utf-8")
        for line in complete.splitlines():
            entry = json.loads(line)
            updates.setdefault(entry["resource"], []).extend(entry["records"])
        return updates

    def updates_of(self, resource: str) -> list[Record]:
        """Return the journalled updates and additions of a resource, oldest first."""
        return self.updates.get(resource, [])

    def record_update(self, resource: str, records: list[Record]) -> None:
        """Append one update or addition (the records as they are after it) to the journal."""
        line = json.dumps({"resource": resource, "records": records}, ensure_ascii=False)
        with self.journal.open("a", encoding="utf-8") as journal:
            journal.write(line + "\n")
