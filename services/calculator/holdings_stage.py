"""The calculator's part of issue #14 (where and in what the money is held), kept out of the hot path.

Each balances partition keeps a `segwatch.core.holdings.Holdings` beside its aggregate (`PartitionState.holdings`),
fed the same depository balances: `note_depository` when a fetch changed one, and when a partition's state is
loaded from the `depositories` changelog (`HeldStore`), so a restarted or moved partition rebuilds its holdings
from the same records as its sums, and the partial republished after assignment carries them. Depository
balances are few (one per depository account, line and currency), so each changed one is read once more
through the event model (instrument, issuer, maturity, location); customer account balances never come here.

The partial carries the holdings sums (`Partial.holdings`, integer cents, additive); the combiner adds them up
and takes the reference data and the foreign margin requirements from the settings topic
(`HOLDINGS_SETTING_TYPES`), persisted in its table like the other settings.
"""

from __future__ import annotations

from pydantic import ValidationError

from schemas.events import DepositoryBalance, DepositoryReference, ForeignMarginRequirement, parse_event_json
from segwatch.core.holdings import Holdings, Position

HOLDINGS_SETTING_TYPES = (DepositoryReference, ForeignMarginRequirement)


def note_depository(holdings: Holdings, key: str, raw: bytes) -> bool:
    """Apply the depository balance `raw` (already accepted by the aggregate under `key`) to the partition's
    holdings; True when they changed. A record that is not a depository balance changes nothing (the aggregate
    dead-letters or logs it)."""
    try:
        ev = parse_event_json(raw)
    except ValidationError:
        return False
    if not isinstance(ev, DepositoryBalance):
        return False
    return holdings.put(key, Position.of(ev))
