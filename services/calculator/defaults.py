"""The calculator's tuning defaults, importable without Faust (the benchmark's bare consumer reads the same)."""

from __future__ import annotations

COALESCE_MS = 50  # no change waits longer for its figures: half for partials, half for figures
BATCH_MAX = 10_000  # balance records per fetch
# Bytes per balances partition per fetch. A fetch response is held about four times over while it is read and
# decoded, so this is most of the worker's memory beyond its state; 1 MiB keeps up with the worker.
FETCH_BYTES = 1024 * 1024
