"""The line catalogue: every line of the three Daily Seg FOCUS II statements, declared once.

The calculator, the statement renderer and parser, the metrics and the dashboard all read it, as
`segwatch.core.catalogue`. It is declared here, beside the wire models, because they validate line codes
against it and the wire models are the bottom layer (README, "How it is built"). Plain Python, stdlib only.
Line codes are the form's own and are the canonical identifiers everywhere in segwatch.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "EVALUATION_ORDER",
    "LEDGER_FIELDS",
    "LINES",
    "SEGMENTS",
    "SEGMENT_IDS",
    "SEG_4D2",
    "SEG_4DF",
    "SEG_307",
    "ZERO",
    "Formula",
    "Line",
    "Segment",
    "Side",
    "Sign",
    "Source",
    "add",
    "evaluation_order",
    "greatest",
    "iter_lines",
    "ln",
    "segment",
    "sub",
]

ZERO = Decimal(0)


class Side(StrEnum):
    REQUIREMENT = "requirement"  # what the FCM owes its customers
    FUNDS = "funds"  # what it holds for them
    RESULT = "result"  # excess, target and excess over target


class Source(StrEnum):
    """Where a leaf line's figure comes from."""

    LEDGER = "ledger"  # summed from customer-account balances
    DEPOSITORY = "depository"  # summed from depository-account balances
    SETTING = "setting"  # set by the FCM: management target, 30.7 foreign requirement
    DERIVED = "derived"  # computed from other lines


class Sign(StrEnum):
    ANY = "any"
    NONNEGATIVE = "nonnegative"
    NONPOSITIVE = "nonpositive"


@dataclass(frozen=True, slots=True)
class Formula:
    """A derived line: a signed sum of lines, or the greatest of lines (30.7 line 7)."""

    op: str  # "sum" or "max"
    terms: tuple[tuple[int, str], ...]  # (sign, code)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(code for _, code in self.terms)

    def evaluate(self, values: Mapping[str, Decimal]) -> Decimal:
        if self.op == "max":
            return max(values[code] for _, code in self.terms)
        total = ZERO
        for sign, code in self.terms:
            total = total + values[code] if sign > 0 else total - values[code]
        return total

    def text(self) -> str:
        if self.op == "max":
            return "greater of " + " and ".join(self.codes)
        out = ""
        for i, (sign, code) in enumerate(self.terms):
            out += (code if sign > 0 else f"-{code}") if i == 0 else (f" + {code}" if sign > 0 else f" - {code}")
        return out


def add(*codes: str) -> Formula:
    return Formula("sum", tuple((1, c) for c in codes))


def sub(a: str, b: str) -> Formula:
    return Formula("sum", ((1, a), (-1, b)))


def greatest(*codes: str) -> Formula:
    return Formula("max", tuple((1, c) for c in codes))


@dataclass(frozen=True, slots=True)
class Line:
    segment: str
    code: str
    number: str  # the line's number on the form: "1A", "5", "11C"
    label: str  # the label as printed on the form
    side: Side
    source: Source
    formula: Formula | None = None
    sign: Sign = Sign.ANY
    summary_only: bool = False  # 30.7 summary form's 7370 (older filings)

    @property
    def is_leaf(self) -> bool:
        return self.formula is None


@dataclass(frozen=True, slots=True)
class Segment:
    id: str
    title: str
    law: str
    requirement: str  # line code of the amount required
    funds: str  # line code of the funds held
    excess: str
    target: str
    over_target: str
    # Customer-account balance fields → the leaf line each one sums into.
    ledger: Mapping[str, str]
    lines: tuple[Line, ...] = field(repr=False)

    def line(self, code: str) -> Line:
        return LINES[code] if LINES[code].segment == self.id else _wrong_segment(code, self.id)

    @property
    def leaves(self) -> tuple[Line, ...]:
        return tuple(line for line in self.lines if line.is_leaf)

    @property
    def depository_codes(self) -> frozenset[str]:
        return frozenset(ln.code for ln in self.lines if ln.source is Source.DEPOSITORY)

    @property
    def setting_codes(self) -> frozenset[str]:
        return frozenset(ln.code for ln in self.lines if ln.source is Source.SETTING)


def _wrong_segment(code: str, segment: str) -> Line:
    raise KeyError(f"line {code} is not a line of segment {segment}")


# Each ledger field of a customer account sums into one requirement line; `deficit` is the account's
# max(0, -NLE) and `offset` is minus min(deficit, haircut value of that customer's eligible securities).
LEDGER_FIELDS = ("cash", "securities", "unrealized", "long_options", "short_options", "deficit", "offset")

R, F, X = Side.REQUIREMENT, Side.FUNDS, Side.RESULT
L, D, S, C = Source.LEDGER, Source.DEPOSITORY, Source.SETTING, Source.DERIVED
NONNEG, NONPOS = Sign.NONNEGATIVE, Sign.NONPOSITIVE


def ln(
    code: str,
    number: str,
    label: str,
    side: Side,
    source: Source,
    formula: Formula | None = None,
    sign: Sign = Sign.ANY,
    summary_only: bool = False,
) -> Line:
    return Line("", code, number, label, side, source, formula, sign, summary_only)


def _lines(segment: str, rows: list[Line]) -> tuple[Line, ...]:
    return tuple(replace(row, segment=segment) for row in rows)


SEG_4D2 = Segment(
    id="4d2",
    title="Segregation Statement (Section 4d(2) of the CEAct)",
    law="CEA 4d(2); CFTC Reg. 1.20-1.32",
    requirement="7060",
    funds="7180",
    excess="7190",
    target="7194",
    over_target="7198",
    ledger=MappingProxyType(
        {
            "cash": "7010",
            "securities": "7020",
            "unrealized": "7030",
            "long_options": "7032",
            "short_options": "7033",
            "deficit": "7045",
            "offset": "7047",
        }
    ),
    lines=_lines(
        "4d2",
        [
            ln("7010", "1A", "Net ledger balance - Cash", R, L),
            ln("7020", "1B", "Net ledger balance - Securities (at market)", R, L),
            ln("7030", "2", "Net unrealized profit (loss) in open futures contracts traded on a contract market", R, L),
            ln(
                "7032",
                "3A",
                "Add market value of open option contracts purchased on a contract market",
                R,
                L,
                None,
                NONNEG,
            ),
            ln(
                "7033",
                "3B",
                "Deduct market value of open option contracts granted (sold) on a contract market",
                R,
                L,
                None,
                NONPOS,
            ),
            ln(
                "7040",
                "4",
                "Net equity (deficit) (add lines 1, 2 and 3)",
                R,
                C,
                add("7010", "7020", "7030", "7032", "7033"),
            ),
            ln(
                "7045",
                "5",
                "Accounts liquidating to a deficit and accounts with debit balances - gross amount",
                R,
                L,
                None,
                NONNEG,
            ),
            ln("7047", "5", "Less: amount offset by customer securities", R, L, None, NONPOS),
            ln("7050", "5", "Accounts liquidating to a deficit - net", R, C, add("7045", "7047")),
            ln("7060", "6", "Amount required to be segregated (add lines 4 and 5)", R, C, add("7040", "7050")),
            ln("7070", "7A", "Deposited in segregated funds bank accounts - Cash", F, D),
            ln(
                "7080",
                "7B",
                "Deposited in segregated funds bank accounts - Securities representing investments of "
                "customers' funds (at market)",
                F,
                D,
            ),
            ln(
                "7090",
                "7C",
                "Deposited in segregated funds bank accounts - Securities held for particular customers "
                "or option customers in lieu of cash (at market)",
                F,
                D,
            ),
            ln(
                "7100",
                "8A",
                "Margins on deposit with derivatives clearing organizations of contract markets - Cash",
                F,
                D,
            ),
            ln(
                "7110",
                "8B",
                "Margins on deposit with DCOs - Securities representing investments of customers' funds (at market)",
                F,
                D,
            ),
            ln(
                "7120",
                "8C",
                "Margins on deposit with DCOs - Securities held for particular customers or option "
                "customers in lieu of cash (at market)",
                F,
                D,
            ),
            ln("7130", "9", "Net settlement from (to) derivatives clearing organizations of contract markets", F, D),
            ln("7132", "10A", "Exchange traded options - Value of open long option contracts", F, D, None, NONNEG),
            ln("7133", "10B", "Exchange traded options - Value of open short option contracts", F, D, None, NONPOS),
            ln("7140", "11A", "Net equities with other FCMs - Net liquidating equity", F, D),
            ln(
                "7160",
                "11B",
                "Net equities with other FCMs - Securities representing investments of customers' funds (at market)",
                F,
                D,
            ),
            ln(
                "7170",
                "11C",
                "Net equities with other FCMs - Securities held for particular customers or option "
                "customers in lieu of cash (at market)",
                F,
                D,
            ),
            ln("7150", "12", "Segregated funds on hand", F, D),
            ln(
                "7180",
                "13",
                "Total amount in segregation (add lines 7 through 12)",
                F,
                C,
                add(
                    "7070",
                    "7080",
                    "7090",
                    "7100",
                    "7110",
                    "7120",
                    "7130",
                    "7132",
                    "7133",
                    "7140",
                    "7160",
                    "7170",
                    "7150",
                ),
            ),
            ln(
                "7190",
                "14",
                "Excess (deficiency) funds in segregation (subtract line 6 from line 13)",
                X,
                C,
                sub("7180", "7060"),
            ),
            ln("7194", "15", "Management Target Amount for Excess funds in segregation", X, S, None, NONNEG),
            ln(
                "7198",
                "16",
                "Excess (deficiency) funds in segregation over (under) Management Target Amount Excess",
                X,
                C,
                sub("7190", "7194"),
            ),
        ],
    ),
)

SEG_307 = Segment(
    id="30.7",
    title="Secured Amounts (Foreign Futures and Foreign Options, Regulation 30.7)",
    law="CFTC Reg. 30.7",
    requirement="7360",
    funds="7770",
    excess="7380",
    target="7780",
    over_target="7785",
    ledger=MappingProxyType(
        {
            "cash": "7315",
            "securities": "7317",
            "unrealized": "7325",
            "long_options": "7335",
            "short_options": "7337",
            "deficit": "7351",
            "offset": "7352",
        }
    ),
    lines=_lines(
        "30.7",
        [
            ln(
                "7305",
                "0",
                "Amount required to be set aside pursuant to law, rule or regulation of a foreign "
                "government or a rule of a self-regulatory organization authorized thereunder",
                R,
                S,
                None,
                NONNEG,
            ),
            ln("7315", "1A", "Net ledger balance - Cash", R, L),
            ln("7317", "1B", "Net ledger balance - Securities (at market)", R, L),
            ln(
                "7325",
                "2",
                "Net unrealized profit (loss) in open futures contracts traded on a foreign board of trade",
                R,
                L,
            ),
            ln(
                "7335",
                "3a",
                "Market value of open option contracts purchased on a foreign board of trade",
                R,
                L,
                None,
                NONNEG,
            ),
            ln(
                "7337",
                "3b",
                "Market value of open contracts granted (sold) on a foreign board of trade",
                R,
                L,
                None,
                NONPOS,
            ),
            ln(
                "7345",
                "4",
                "Net equity (deficit) (add lines 1, 2 and 3)",
                R,
                C,
                add("7315", "7317", "7325", "7335", "7337"),
            ),
            ln(
                "7351",
                "5",
                "Account liquidating to a deficit and account with a debit balances - gross amount",
                R,
                L,
                None,
                NONNEG,
            ),
            ln("7352", "5", "Less: amount offset by customer owned securities", R, L, None, NONPOS),
            ln("7354", "5", "Account liquidating to a deficit - net", R, C, add("7351", "7352")),
            ln(
                "7355",
                "6",
                "Amount required to be set aside as the secured amount - Net Liquidating Equity Method "
                "(add lines 4 and 5)",
                R,
                C,
                add("7345", "7354"),
            ),
            ln(
                "7360",
                "7",
                "Greater of amount required to be set aside pursuant to foreign jurisdiction (above) or line 6",
                R,
                C,
                greatest("7305", "7355"),
            ),
            ln("7500", "1A", "Cash in banks - Banks located in the United States", F, D),
            ln("7520", "1B", "Cash in banks - Other banks qualified under Regulation 30.7", F, D),
            ln("7530", "1", "Cash in banks - total", F, C, add("7500", "7520")),
            ln("7540", "2A", "Securities - In safekeeping with banks located in the United States", F, D),
            ln("7560", "2B", "Securities - In safekeeping with other banks qualified under Regulation 30.7", F, D),
            ln("7570", "2", "Securities - total", F, C, add("7540", "7560")),
            ln("7580", "3A", "Equities with registered futures commission merchants - Cash", F, D),
            ln("7590", "3B", "Equities with registered FCMs - Securities", F, D),
            ln("7600", "3C", "Equities with registered FCMs - Unrealized gain (loss) on open futures contracts", F, D),
            ln("7610", "3D", "Equities with registered FCMs - Value of long option contracts", F, D, None, NONNEG),
            ln("7615", "3E", "Equities with registered FCMs - Value of short option contracts", F, D, None, NONPOS),
            ln("7620", "3", "Equities with registered FCMs - total", F, C, add("7580", "7590", "7600", "7610", "7615")),
            ln("7640", "4A", "Amounts held by clearing organizations of foreign boards of trade - Cash", F, D),
            ln("7650", "4B", "Clearing organizations of foreign boards of trade - Securities", F, D),
            ln(
                "7660",
                "4C",
                "Clearing organizations of foreign boards of trade - Amount due to (from) clearing "
                "organization - daily variation",
                F,
                D,
            ),
            ln(
                "7670",
                "4D",
                "Clearing organizations of foreign boards of trade - Value of long option contracts",
                F,
                D,
                None,
                NONNEG,
            ),
            ln(
                "7675",
                "4E",
                "Clearing organizations of foreign boards of trade - Value of short option contracts",
                F,
                D,
                None,
                NONPOS,
            ),
            ln(
                "7680",
                "4",
                "Amounts held by clearing organizations of foreign boards of trade - total",
                F,
                C,
                add("7640", "7650", "7660", "7670", "7675"),
            ),
            ln("7700", "5A", "Amounts held by members of foreign boards of trade - Cash", F, D),
            ln("7710", "5B", "Members of foreign boards of trade - Securities", F, D),
            ln(
                "7720",
                "5C",
                "Members of foreign boards of trade - Unrealized gain (loss) on open futures contracts",
                F,
                D,
            ),
            ln("7730", "5D", "Members of foreign boards of trade - Value of long option contracts", F, D, None, NONNEG),
            ln(
                "7735", "5E", "Members of foreign boards of trade - Value of short option contracts", F, D, None, NONPOS
            ),
            ln(
                "7740",
                "5",
                "Amounts held by members of foreign boards of trade - total",
                F,
                C,
                add("7700", "7710", "7720", "7730", "7735"),
            ),
            ln("7760", "6", "Amounts with other depositories designated by a foreign board of trade", F, D),
            ln("7765", "7", "Segregated funds on hand", F, D),
            ln(
                "7770",
                "8",
                "Total funds in separate section 30.7 accounts",
                F,
                C,
                add("7530", "7570", "7620", "7680", "7740", "7760", "7765"),
            ),
            ln(
                "7370",
                "2",
                "Total funds in separate section 30.7 accounts (summary form)",
                F,
                C,
                add("7770"),
                Sign.ANY,
                True,
            ),
            ln(
                "7380",
                "9",
                "Excess (deficiency) Set Aside for Secured Amount (subtract line 7 Secured Statement Page 1 "
                "from Line 8)",
                X,
                C,
                sub("7770", "7360"),
            ),
            ln(
                "7780",
                "10",
                "Management Target Amount for Excess funds in separate section 30.7 accounts",
                X,
                S,
                None,
                NONNEG,
            ),
            ln(
                "7785",
                "11",
                "Excess (deficiency) funds in separate 30.7 accounts over (under) Management Target",
                X,
                C,
                sub("7380", "7780"),
            ),
        ],
    ),
)

SEG_4DF = Segment(
    id="4df",
    title="Cleared Swaps Customer Segregation (Section 4d(f) of the CEA)",
    law="CEA 4d(f); CFTC Part 22 (LSOC)",
    requirement="8590",
    funds="8720",
    excess="8730",
    target="8760",
    over_target="8770",
    ledger=MappingProxyType(
        {
            "cash": "8500",
            "securities": "8510",
            "unrealized": "8520",
            "long_options": "8530",
            "short_options": "8540",
            "deficit": "8560",
            "offset": "8570",
        }
    ),
    lines=_lines(
        "4df",
        [
            ln("8500", "1A", "Net ledger balance - Cash", R, L),
            ln("8510", "1B", "Net ledger balance - Securities (at market)", R, L),
            ln("8520", "2", "Net unrealized profit (loss) in open cleared swaps", R, L),
            ln("8530", "3A", "Market value of open cleared swaps option contracts purchased", R, L, None, NONNEG),
            ln("8540", "3B", "Market value of open cleared swaps option contracts granted (sold)", R, L, None, NONPOS),
            ln(
                "8550",
                "4",
                "Net Equity (deficit) (add lines 1, 2, and 3)",
                R,
                C,
                add("8500", "8510", "8520", "8530", "8540"),
            ),
            ln(
                "8560",
                "5",
                "Accounts liquidating to a deficit and accounts with debit balances - gross amount",
                R,
                L,
                None,
                NONNEG,
            ),
            ln("8570", "5", "Less: amount offset by customer owned securities", R, L, None, NONPOS),
            ln("8580", "5", "Accounts liquidating to a deficit - net", R, C, add("8560", "8570")),
            ln(
                "8590",
                "6",
                "Amount required to be segregated for cleared swaps customers (add lines 4 and 5)",
                R,
                C,
                add("8550", "8580"),
            ),
            ln("8600", "7A", "Deposited in cleared swaps customer segregated accounts at banks - Cash", F, D),
            ln(
                "8610",
                "7B",
                "Banks - Securities representing investments of cleared swaps customers' funds (at market)",
                F,
                D,
            ),
            ln(
                "8620",
                "7C",
                "Banks - Securities held for particular cleared swaps customers in lieu of cash (at market)",
                F,
                D,
            ),
            ln(
                "8630",
                "8A",
                "Margins on deposit with derivatives clearing organizations in cleared swaps customer "
                "segregated accounts - Cash",
                F,
                D,
            ),
            ln(
                "8640",
                "8B",
                "DCOs - Securities representing investments of cleared swaps customers' funds (at market)",
                F,
                D,
            ),
            ln(
                "8650",
                "8C",
                "DCOs - Securities held for particular cleared swaps customers in lieu of cash (at market)",
                F,
                D,
            ),
            ln("8660", "9", "Net settlement from (to) derivatives clearing organizations", F, D),
            ln(
                "8670",
                "10A",
                "Cleared swaps options - Value of open cleared swaps long option contracts",
                F,
                D,
                None,
                NONNEG,
            ),
            ln(
                "8680",
                "10B",
                "Cleared swaps options - Value of open cleared swaps short option contracts",
                F,
                D,
                None,
                NONPOS,
            ),
            ln("8690", "11A", "Net equities with other FCMs - Net liquidating equity", F, D),
            ln(
                "8700",
                "11B",
                "Net equities with other FCMs - Securities representing investments of cleared swaps "
                "customers' funds (at market)",
                F,
                D,
            ),
            ln(
                "8710",
                "11C",
                "Net equities with other FCMs - Securities held for particular cleared swaps customers "
                "in lieu of cash (at market)",
                F,
                D,
            ),
            ln("8715", "12", "Cleared swaps customer funds on hand", F, D),
            ln(
                "8720",
                "13",
                "Total amount in cleared swaps customer segregation (add lines 7 through 12)",
                F,
                C,
                add(
                    "8600",
                    "8610",
                    "8620",
                    "8630",
                    "8640",
                    "8650",
                    "8660",
                    "8670",
                    "8680",
                    "8690",
                    "8700",
                    "8710",
                    "8715",
                ),
            ),
            ln(
                "8730",
                "14",
                "Excess (deficiency) funds in cleared swaps customer segregation (subtract line 6 from line 13)",
                X,
                C,
                sub("8720", "8590"),
            ),
            ln(
                "8760",
                "15",
                "Management Target Amount for Excess funds in cleared swaps segregated accounts",
                X,
                S,
                None,
                NONNEG,
            ),
            ln(
                "8770",
                "16",
                "Excess (deficiency) funds in cleared swaps customer segregated accounts over (under) "
                "Management Target",
                X,
                C,
                sub("8730", "8760"),
            ),
        ],
    ),
)

SEGMENTS: Mapping[str, Segment] = MappingProxyType({s.id: s for s in (SEG_4D2, SEG_307, SEG_4DF)})
SEGMENT_IDS: tuple[str, ...] = tuple(SEGMENTS)
LINES: Mapping[str, Line] = MappingProxyType({ln.code: ln for s in SEGMENTS.values() for ln in s.lines})


def segment(segment_id: str) -> Segment:
    try:
        return SEGMENTS[segment_id]
    except KeyError:
        raise KeyError(f"unknown segment {segment_id!r}; expected one of {', '.join(SEGMENT_IDS)}") from None


def evaluation_order(seg: Segment) -> tuple[Line, ...]:
    """The segment's derived lines, each after every line it depends on."""
    done: set[str] = {ln.code for ln in seg.leaves}
    pending = [ln for ln in seg.lines if not ln.is_leaf]
    order: list[Line] = []
    while pending:
        ready = [ln for ln in pending if ln.formula and all(c in done for c in ln.formula.codes)]
        if not ready:  # pragma: no cover - a catalogue error, caught by the unit tests
            raise ValueError(f"circular or dangling formula in {[ln.code for ln in pending]}")
        for ln in ready:
            order.append(ln)
            done.add(ln.code)
            pending.remove(ln)
    return tuple(order)


EVALUATION_ORDER: Mapping[str, tuple[Line, ...]] = MappingProxyType(
    {sid: evaluation_order(s) for sid, s in SEGMENTS.items()}
)


def iter_lines() -> Iterator[Line]:
    for seg in SEGMENTS.values():
        yield from seg.lines
