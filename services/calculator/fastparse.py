"""Balance events off the wire, fast, with exactly the pydantic models' answers.

`read_balance(raw)` gives what `held_of(parse_event_json(raw))` gives for a balance event (its Kafka
key, the key of the balance held and the `Held`), the model for any other valid event, and raises the very
`ValidationError` pydantic raises for an invalid one, so dead letters keep their exact field and reason.

The canonical form ingest publishes (pydantic's `model_dump_json`: its field order, no blanks, amounts as
decimal strings, an RFC 3339 as-of with seconds) is matched by one regular expression, which checks every
field's syntax at once; the rest of the rules (ISO 4217, signs, the depository line of the segment) are
checked on the values, and the `Held` is built without any model. Anything else, and every invalid record,
goes to pydantic. The fast path only ever accepts what pydantic accepts, and builds the same values (the same
cents, the same instant and UTC offset); tests/integration/test_bench_smoke.py checks that against pydantic.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any, Final

from schemas.currencies import ISO_4217
from schemas.events import INSTRUMENTS, LINE_LOCATIONS, AccountBalance, DepositoryBalance, Event, parse_event_json
from schemas.types import EARLIEST_AS_OF, max_clock_skew
from segwatch.core.catalogue import LINES, Sign, Source
from segwatch.core.ledger import ACCOUNT_CODES, Held, account_amounts, held_of, line_codes

# A balance event as the calculator keeps it: (its key, which must be its Kafka record's key, e.g.
# "acct|4d2|C-1"; the key of the balance held, per segment, account or depository account and currency; the
# Held). A plain tuple: there is one per balance read.
Balance = tuple[str, str, Held]


# -- the canonical form, one regular expression ------------------------------------------------------------

_ID = r"([!#-\[\]-{}~]{1,128})"  # printable ASCII but blank, '"', '\' and '|': Identifier, nothing to escape
_NAME = r"((?! )[ !#-\[\]-~]{1,64}+(?<! ))"  # Name: 1-64, no blank to strip, nothing to escape
_TS = (
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"  # RFC 3339, seconds, ≤ 6 digits
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]))"
)  # and a UTC offset of less than 24 hours
# Money: at most 17 digits, at most 2 after the point. (Possessive: what follows cannot match a digit or a
# point, so giving back is never needed, and not keeping the positions to give back is faster.)
_AMT = r'"(-?+(?:0|[1-9][0-9]{0,14}+)(?:\.[0-9]{1,2}+)?+)"'
_HEAD = r'\{(?:"schema_version":1,)?"event_id":"' + _ID + '","source":"' + _NAME + '","as_of":"' + _TS + '",'
_ACCOUNT_FORM: Final = re.compile(
    _HEAD
    + r'"type":"account_balance","segment":"(4d2|30\.7|4df)","account":"'
    + _ID
    + r'","currency":"([A-Z]{3})","cash":'
    + _AMT
    + ',"securities":'
    + _AMT
    + ',"unrealized":'
    + _AMT
    + ',"long_options":'
    + _AMT
    + ',"short_options":'
    + _AMT
    + '(?:,"offset_securities":'
    + _AMT
    + r")?\}"
)
_DEPOSITORY_FORM: Final = re.compile(
    _HEAD
    + r'"type":"depository_balance","segment":"(4d2|30\.7|4df)","depository":"'
    + _ID
    + r'","line":"([0-9]{4})","currency":"([A-Z]{3})","location":"(us|non_us)"(?:,"instrument":"('
    + "|".join(INSTRUMENTS)
    + ')")?,"amount":'
    + _AMT
    + r'(?:,"issuer":null,"cusip":null,"maturity":null)?\}'
)  # (an investment's issuer, CUSIP or maturity, when given, goes to pydantic: its rules are the model's)

# Zeros are most amounts: a dict lookup instead of parsing.
_ZERO_CENTS: Final = dict.fromkeys(("0", "0.0", "0.00", "-0", "-0.0", "-0.00"), 0)
_CURRENCIES: Final = {code: code for code in ISO_4217}  # membership and one shared string per currency
# As-of times repeat (one per ledger extract), and sources are few: shared too. Bounded; emptied when full.
_CACHE_LIMIT: Final = 4096
_times: dict[str, datetime] = {}
_sources: dict[str, str] = {}


def _timestamp(text: str) -> datetime | None:
    """For the strict RFC 3339 form above, fromisoformat gives pydantic's instant and UTC offset."""
    at = _times.get(text)
    if at is None:
        try:
            at = datetime.fromisoformat(text)
        except ValueError:
            return None  # e.g. 2026-02-30: pydantic names the error
        if len(_times) >= _CACHE_LIMIT:
            _times.clear()
        _times[text] = at
    return at


# The latest as-of accepted (now + the allowed skew), re-read at most every _HORIZON_TTL seconds of the
# monotonic clock: reading the wall clock and the setting for every record costs a fifth of the fast path.
# A horizon up to that old only errs towards sending a record to pydantic, which then decides at its own now.
_HORIZON_TTL: Final = 0.25
_horizon: list[Any] = [EARLIEST_AS_OF, float("-inf")]  # [the horizon, monotonic time it was computed]


def _implausible(as_of: datetime) -> bool:
    """The model's as-of check (schemas.types.as_of_error): before 2000 or too far in the future."""
    horizon, at = _horizon
    if time.monotonic() - at > _HORIZON_TTL:
        horizon = _horizon[0] = datetime.now(UTC) + max_clock_skew()
        _horizon[1] = time.monotonic()
    return as_of < EARLIEST_AS_OF or as_of > horizon


def _source(text: str) -> str:
    shared = _sources.get(text)
    if shared is None:
        if len(_sources) >= _CACHE_LIMIT:
            _sources.clear()
        shared = _sources[text] = text
    return shared


def read_balance(raw: bytes) -> Balance | Event:
    """A balance event as a `Balance`; any other valid event as its model; raises pydantic's ValidationError."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        text = ""
    if text.startswith('{"'):
        balance = _canonical(text)
        if balance is not None:
            return balance
    event = parse_event_json(raw)
    if isinstance(event, AccountBalance | DepositoryBalance):
        held_key, held = held_of(event)
        return event.key, held_key, held
    return event


def _cents(text: str) -> int:
    """Integer cents of an amount matched by _AMT (at most two places)."""
    point = text.find(".")
    if point < 0:
        return int(text) * 100
    if len(text) - point == 3:
        return int(text[:point] + text[point + 1 :])
    return int(text[:point] + text[point + 1 :]) * 10


def _canonical(text: str) -> Balance | None:
    cents, zeros = _cents, _ZERO_CENTS
    m = _ACCOUNT_FORM.fullmatch(text)
    if m is not None:
        event_id, source, as_of_text, segment, account, currency, c, s, u, lo, sh, off = m.groups()
        shared = _CURRENCIES.get(currency)
        as_of = _times.get(as_of_text) or _timestamp(as_of_text)
        if shared is None or as_of is None or _implausible(as_of):
            return None
        # Most amounts are zeros (a dict lookup) or have two places (ingest's form); _cents does the rest.
        cash = zeros.get(c)
        if cash is None:
            cash = int(c.replace(".", "")) if c[-3:-2] == "." else cents(c)
        securities = zeros.get(s)
        if securities is None:
            securities = int(s.replace(".", "")) if s[-3:-2] == "." else cents(s)
        unrealized = zeros.get(u)
        if unrealized is None:
            unrealized = int(u.replace(".", "")) if u[-3:-2] == "." else cents(u)
        long_options = zeros.get(lo)
        if long_options is None:
            long_options = int(lo.replace(".", "")) if lo[-3:-2] == "." else cents(lo)
        short_options = zeros.get(sh)
        if short_options is None:
            short_options = int(sh.replace(".", "")) if sh[-3:-2] == "." else cents(sh)
        offset = 0 if off is None else zeros.get(off)
        if offset is None:
            offset = int(off.replace(".", "")) if off[-3:-2] == "." else cents(off)
        if long_options < 0 or short_options > 0 or offset < 0 or offset > max(securities, 0):
            return None  # pydantic names the field
        key = f"acct|{segment}|{account}"
        return (
            key,
            f"{key}|{shared}",
            Held(
                as_of,
                event_id,
                segment,
                shared,
                ACCOUNT_CODES[segment],
                account_amounts(cash, securities, unrealized, long_options, short_options, offset),
                _sources.get(source) or _source(source),
            ),
        )
    m = _DEPOSITORY_FORM.fullmatch(text)
    if m is not None:
        event_id, source, as_of_text, segment, depository, code, currency, location, _, amount_text = m.groups()
        shared = _CURRENCIES.get(currency)
        as_of = _timestamp(as_of_text)
        amount = _cents(amount_text)
        line = LINES.get(code)  # the model's own check (_line_of_segment): a depository line of this segment
        if (
            shared is None
            or as_of is None
            or _implausible(as_of)
            or line is None
            or line.segment != segment
            or line.source is not Source.DEPOSITORY
            or (line.sign is Sign.NONPOSITIVE and amount > 0)
            or (line.sign is Sign.NONNEGATIVE and amount < 0)
            or LINE_LOCATIONS.get(code, location) != location
        ):  # a bank line's location (the model's)
            return None
        key = f"depo|{segment}|{depository}"
        return (
            key,
            f"{key}|{code}|{shared}",
            Held(
                as_of,
                event_id,
                segment,
                shared,
                line_codes(code),
                (amount,),
                _source(source),
            ),
        )
    return None
