"""The Dagster code location of the windowed backfill and the schedule (docs/orchestration.md)."""
