"""BAI2 files for the tests: the shipped examples and a builder of small files whose totals add up."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "services" / "ingest" / "examples"
BANK = EXAMPLES / "bank.bai2"
REFERENCE = EXAMPLES / "depositories.csv"
GROUP = "FCMCORP01,021000021,1,261120,2400,USD,2"

Accounts = list[tuple[str, str, list[str]]]


def build(groups: list[tuple[str, Accounts]], *, header_extra: str = "", per_record: int | None = None) -> str:
    """A BAI2 file with correct totals and counts: groups of (02 fields after the code, accounts). Each account
    is (number, currency, parts): parts are the 03 type-code groups ("015,123,,") and, starting with '16,',
    transaction details. `per_record` puts at most that many type-code groups on the 03 record and the rest on
    88 continuations, as many as it takes."""
    lines = ["01,021000021,FCMCORP01,261121,0530,77,,,2/" + header_extra]
    file_total = 0
    for group_header, accounts in groups:
        group_lines = [f"02,{group_header}/"]
        group_total = 0
        for number, currency, parts in accounts:
            type_fields = [p for p in parts if not p.startswith("16,")]
            details = [p for p in parts if p.startswith("16,")]
            step = per_record or max(len(type_fields), 1)
            chunks = [type_fields[i : i + step] for i in range(0, len(type_fields), step)] or [[]]
            acct_lines = [f"03,{number},{currency}," + ",".join(chunks[0]) + "/"]
            acct_lines += ["88," + ",".join(chunk) + "/" for chunk in chunks[1:]]
            total = sum(int(group.split(",")[1]) for group in type_fields if group.split(",")[1])
            for d in details:
                acct_lines.append(d)
                total += int(d.split(",")[2].split("/")[0])
            acct_lines.append(f"49,{total},{len(acct_lines) + 1}/")
            group_lines += acct_lines
            group_total += total
        group_lines.append(f"98,{group_total},{len(accounts)},{len(group_lines) + 1}/")
        lines += group_lines
        file_total += group_total
    lines.append(f"99,{file_total},{len(groups)},{len(lines) + 1}/")
    return "\n".join(lines) + "\n"


# Built files both the parser's tests and the oracle test read.
FUNDS_TYPES = build(
    [
        (
            GROUP,
            [
                (
                    "1001",
                    "USD",
                    [
                        "100,500000,3,S,100000,200000,200000",  # distributed availability: 3 extra amounts
                        "015,-123456,,",  # overdrawn: negative closing ledger
                        "110,7500,1,V,261121,0900",  # value dated: date and time
                        "400,25000,2,D,2,0,15000,1,10000",  # 2 distributions: (days, amount) pairs
                        "045,+99,,",
                        "16,195,500000,0,REF1,,WIRE IN",
                    ],
                ),
            ],
        )
    ]
)
MINOR_UNITS = build(
    [
        ("FCMCORP01,021000021,1,261120,1600,JPY,2", [("J-1", "", ["015,250000000,,"])]),
        ("FCMCORP01,021000021,1,261120,1600,KWD,2", [("K-1", "", ["015,1234567,,"])]),
    ]
)
CONTINUED = build(
    [
        (
            GROUP,
            [
                ("2001", "USD", ["010,100,,", "015,200,,", "040,300,,", "045,400,,", "072,-5,,", "100,600,2,"]),
                ("2002", "", ["015,700,,", "16,195,50,0,REF2,,WIRE IN"]),
            ],
        )
    ],
    per_record=2,
)
