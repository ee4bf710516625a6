"""A deliberately plain statement oracle, written from ../shared/DOMAIN.md and nothing else of segwatch.

It shares no code with the aggregate, the ledger or the statement arithmetic: plain loops over the events,
the latest as-of per key (ties: the greater event id), its own line-5 rule, its own currency conversion and
its own form identities. Slow and obvious on purpose; the property tests hold segwatch's Book against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

Z = Decimal(0)
CENT = Decimal("0.01")

# Per segment, straight from DOMAIN.md's tables.
LEDGER = {  # cash, securities, unrealized, long, short, line-5 gross, line-5 offset
    "4d2": ("7010", "7020", "7030", "7032", "7033", "7045", "7047"),
    "30.7": ("7315", "7317", "7325", "7335", "7337", "7351", "7352"),
    "4df": ("8500", "8510", "8520", "8530", "8540", "8560", "8570"),
}
FUNDS_LEAVES = {
    "4d2": ["7070", "7080", "7090", "7100", "7110", "7120", "7130", "7132", "7133", "7140", "7160", "7170", "7150"],
    "30.7": [
        "7500",
        "7520",
        "7540",
        "7560",
        "7580",
        "7590",
        "7600",
        "7610",
        "7615",
        "7640",
        "7650",
        "7660",
        "7670",
        "7675",
        "7700",
        "7710",
        "7720",
        "7730",
        "7735",
        "7760",
        "7765",
    ],
    "4df": ["8600", "8610", "8620", "8630", "8640", "8650", "8660", "8670", "8680", "8690", "8700", "8710", "8715"],
}
RESULT = {  # requirement, funds, excess, target, over target
    "4d2": ("7060", "7180", "7190", "7194", "7198"),
    "30.7": ("7360", "7770", "7380", "7780", "7785"),
    "4df": ("8590", "8720", "8730", "8760", "8770"),
}


def usd(amount: Decimal, rate: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 60
        return (amount * rate).quantize(CENT, rounding=ROUND_HALF_EVEN)


def latest(events: list[Any], key: Any) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for ev in events:
        k = key(ev)
        held = out.get(k)
        if held is None or ev.as_of > held.as_of or (ev.as_of == held.as_of and ev.event_id > held.event_id):
            out[k] = ev
    return out


def derive(sid: str, v: dict[str, Decimal], with_target: bool) -> dict[str, Decimal]:
    """Every derived line of the form, from the leaves in `v` (missing leaves are zero)."""

    def g(code: str) -> Decimal:
        return v.get(code, Z)

    out = dict(v)
    if sid == "4d2":
        out["7040"] = g("7010") + g("7020") + g("7030") + g("7032") + g("7033")
        out["7050"] = g("7045") + g("7047")
        out["7060"] = out["7040"] + out["7050"]
        out["7180"] = sum((g(c) for c in FUNDS_LEAVES["4d2"]), Z)
    elif sid == "30.7":
        out["7345"] = g("7315") + g("7317") + g("7325") + g("7335") + g("7337")
        out["7354"] = g("7351") + g("7352")
        out["7355"] = out["7345"] + out["7354"]
        out["7360"] = max(g("7305"), out["7355"])
        out["7530"] = g("7500") + g("7520")
        out["7570"] = g("7540") + g("7560")
        out["7620"] = g("7580") + g("7590") + g("7600") + g("7610") + g("7615")
        out["7680"] = g("7640") + g("7650") + g("7660") + g("7670") + g("7675")
        out["7740"] = g("7700") + g("7710") + g("7720") + g("7730") + g("7735")
        out["7770"] = out["7530"] + out["7570"] + out["7620"] + out["7680"] + out["7740"] + g("7760") + g("7765")
    else:
        out["8550"] = g("8500") + g("8510") + g("8520") + g("8530") + g("8540")
        out["8580"] = g("8560") + g("8570")
        out["8590"] = out["8550"] + out["8580"]
        out["8720"] = sum((g(c) for c in FUNDS_LEAVES["4df"]), Z)
    req, funds, excess, target, over = RESULT[sid]
    out[excess] = out[funds] - out[req]
    if with_target:
        out[over] = out[excess] - g(target)
    else:
        out.pop(target, None)
    # Every leaf of the form is shown, zero when nothing is held on it.
    for code in (*LEDGER[sid], *FUNDS_LEAVES[sid], *(("7305",) if sid == "30.7" else ())):
        out.setdefault(code, Z)
    if with_target:
        out.setdefault(target, Z)
    return out


@dataclass
class OracleSegment:
    lines: dict[str, Decimal]
    by_currency: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    missing_fx: list[str] = field(default_factory=list)
    as_of: datetime | None = None  # the oldest of the sources' newest as-of (over every balance each sent)

    @property
    def incomplete(self) -> bool:
        return bool(self.missing_fx)

    def excess_by_currency(self, sid: str) -> dict[str, Decimal]:
        return {ccy: lines[RESULT[sid][2]] for ccy, lines in self.by_currency.items()}


# C901 justified: a plain oracle, read top to bottom beside DOMAIN.md; split up it would hide the arithmetic it checks.
def oracle(events: list[Any]) -> dict[str, OracleSegment]:  # noqa: C901, RUF100
    """Each segment's statement from a list of events (any order, duplicates allowed)."""
    kinds: dict[str, list[Any]] = {}
    for ev in events:
        kinds.setdefault(ev.type, []).append(ev)
    accounts = latest(kinds.get("account_balance", []), lambda e: (e.segment, e.account, e.currency))
    depos = latest(kinds.get("depository_balance", []), lambda e: (e.segment, e.depository, e.line, e.currency))
    targets = latest(kinds.get("management_target", []), lambda e: e.segment)
    foreign = latest(kinds.get("foreign_requirement", []), lambda e: "7305")
    rates = latest(kinds.get("fx_rate", []), lambda e: e.currency)

    # (segment, currency) -> line -> amount, in the currency
    sums: dict[tuple[str, str], dict[str, Decimal]] = {}
    newest_by_source: dict[str, dict[str, datetime]] = {}

    def add(sid: str, ccy: str, code: str, amount: Decimal) -> None:
        per = sums.setdefault((sid, ccy), {})
        per[code] = per.get(code, Z) + amount

    for a in accounts.values():
        cash, sec, unr, lng, sht, gross, offset = LEDGER[a.segment]
        add(a.segment, a.currency, cash, a.cash)
        add(a.segment, a.currency, sec, a.securities)
        add(a.segment, a.currency, unr, a.unrealized)
        add(a.segment, a.currency, lng, a.long_options)
        add(a.segment, a.currency, sht, a.short_options)
        # Line 5: the debit is measured without the securities, then secured by their haircut value, once.
        debit = -(a.cash + a.unrealized + a.long_options + a.short_options)
        if debit < 0:
            debit = Z
        add(a.segment, a.currency, gross, debit)
        add(a.segment, a.currency, offset, -min(debit, a.offset_securities))
    for d in depos.values():
        add(d.segment, d.currency, d.line, d.amount)
    for ev in [*kinds.get("account_balance", []), *kinds.get("depository_balance", [])]:
        seen = newest_by_source.setdefault(ev.segment, {})
        if ev.source not in seen or ev.as_of > seen[ev.source]:
            seen[ev.source] = ev.as_of

    out: dict[str, OracleSegment] = {}
    for sid in ("4d2", "30.7", "4df"):
        leaves: dict[str, Decimal] = {}
        by_currency: dict[str, dict[str, Decimal]] = {}
        missing: list[str] = []
        for (s, ccy), per in sorted(sums.items()):
            if s != sid or all(x == 0 for x in per.values()):
                continue
            by_currency[ccy] = derive(sid, per, with_target=False)
            if ccy == "USD":
                rate: Decimal | None = Decimal(1)
            else:
                rate = rates[ccy].usd_per_unit if ccy in rates else None
            if rate is None:
                missing.append(ccy)
                continue
            for code, amount in per.items():
                leaves[code] = leaves.get(code, Z) + (amount if ccy == "USD" else usd(amount, rate))
        if sid == "30.7":
            leaves["7305"] = foreign["7305"].amount if foreign else Z
        requirement = derive(sid, leaves, with_target=False)[RESULT[sid][0]]
        with_target = sid in targets
        if with_target:
            t = targets[sid]
            if t.amount is not None:
                leaves[RESULT[sid][3]] = t.amount
            else:
                pct = (requirement * t.percentage / 100).quantize(CENT, rounding=ROUND_HALF_EVEN)
                leaves[RESULT[sid][3]] = pct if pct > 0 else Z
        seen = newest_by_source.get(sid, {})
        out[sid] = OracleSegment(
            lines=derive(sid, leaves, with_target),
            by_currency=by_currency,
            missing_fx=missing,
            as_of=min(seen.values()) if seen else None,
        )
    return out
