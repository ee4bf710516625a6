"""Balance events off the wire, fast, with exactly the pydantic models' answers.

`read_balance(raw)` gives what `held_of(EVENT_ADAPTER.validate_json(raw))` gives for a balance event (its Kafka
key, the key of the balance held and the `Held`), the model for any other valid event, and raises the very
`ValidationError` pydantic raises for an invalid one, so dead letters keep their exact field and reason.

Three tiers, each only for what it recognises with certainty; everything else goes down to the next:
1. the canonical form ingest publishes (pydantic's `model_dump_json`: its field order, no blanks, amounts as
   decimal strings, an RFC 3339 as-of with seconds) is matched by one regular expression on the bytes, which
   checks every field's syntax at once; the rest of the rules (ISO 4217, signs, the depository line of the
   segment) are checked on the values, and the `Held` is built without any model;
2. any other JSON object of a balance is read with orjson and each field checked against the schema's rules
   (plain ASCII identifiers, amounts of at most two places with no exponent), then the model is built from the
   checked values with `model_construct` (no second validation);
3. pydantic: anything else, and every invalid record.
The fast tiers only ever accept what pydantic accepts, and build the same values: Decimal(text) of the same
text, the same instant and UTC offset. tests/integration/test_bench_smoke.py checks that against pydantic.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import orjson

from schemas.currencies import ISO_4217
from schemas.events import EVENT_ADAPTER, INSTRUMENTS, AccountBalance, DepositoryBalance, Event
from segwatch.core.catalogue import LINES, SEGMENTS, Sign, Source
from segwatch.core.ledger import ACCOUNT_CODES, Held, account_amounts, held_of, line_codes

# A balance event as the calculator keeps it: (its key, which must be its Kafka record's key, e.g.
# "acct|4d2|C-1"; the key of the balance held, per segment, account or depository account and currency; the
# Held). A plain tuple: there is one per balance read.
Balance = tuple[str, str, Held]


# -- tier 1: the canonical form, one regular expression ---------------------------------------------------

_ID = r'([!#-\[\]-{}~]{1,128})'  # printable ASCII but blank, '"', '\' and '|': Identifier, nothing to escape
_NAME = r'((?! )[ !#-\[\]-~]{1,64}+(?<! ))'  # Name: 1-64, no blank to strip, nothing to escape
_TS = (r'([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?'  # RFC 3339, seconds, ≤ 6 digits
       r'(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]))')  # and a UTC offset of less than 24 hours
# Money: at most 17 digits, at most 2 after the point. (Possessive: what follows cannot match a digit or a
# point, so giving back is never needed, and not keeping the positions to give back is faster.)
_AMT = r'"(-?+(?:0|[1-9][0-9]{0,14}+)(?:\.[0-9]{1,2}+)?+)"'
_HEAD = r'\{(?:"schema_version":1,)?"event_id":"' + _ID + '","source":"' + _NAME + '","as_of":"' + _TS + '",'
_ACCOUNT_FORM: Final = re.compile(
    _HEAD + r'"type":"account_balance","segment":"(4d2|30\.7|4df)","account":"' + _ID
    + r'","currency":"([A-Z]{3})","cash":' + _AMT + ',"securities":' + _AMT + ',"unrealized":' + _AMT
    + ',"long_options":' + _AMT + ',"short_options":' + _AMT + '(?:,"offset_securities":' + _AMT + r')?\}'
)
_DEPOSITORY_FORM: Final = re.compile(
    _HEAD + r'"type":"depository_balance","segment":"(4d2|30\.7|4df)","depository":"' + _ID
    + r'","line":"([0-9]{4})","currency":"([A-Z]{3})","location":"(us|non_us)"(?:,"instrument":"('
    + "|".join(INSTRUMENTS) + ')")?,"amount":' + _AMT + r'\}'
)

# Zeros are most amounts: one shared object each (immutable), which saves parsing and memory.
_ZEROS: Final = {text: Decimal(text) for text in ("0", "0.0", "0.00", "-0", "-0.0", "-0.00")}
_ZERO: Final = _ZEROS["0"]  # AccountBalance.offset_securities' default, Decimal(0)
_ZERO_CENTS: Final = dict.fromkeys(_ZEROS, 0)
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
    event = parse_event(raw)
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
        return int(text[:point] + text[point + 1:])
    return int(text[:point] + text[point + 1:]) * 10


def _canonical(text: str) -> Balance | None:
    cents, zeros = _cents, _ZERO_CENTS
    m = _ACCOUNT_FORM.fullmatch(text)
    if m is not None:
        event_id, source, as_of_text, segment, account, currency, c, s, u, lo, sh, off = m.groups()
        shared = _CURRENCIES.get(currency)
        as_of = _times.get(as_of_text) or _timestamp(as_of_text)
        if shared is None or as_of is None:
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
        if long_options < 0 or short_options > 0 or offset < 0:
            return None
        key = f"acct|{segment}|{account}"
        return key, f"{key}|{shared}", Held(
            as_of, event_id, segment, shared, ACCOUNT_CODES[segment],
            account_amounts(cash, securities, unrealized, long_options, short_options, offset),
            _sources.get(source) or _source(source),
        )
    m = _DEPOSITORY_FORM.fullmatch(text)
    if m is not None:
        event_id, source, as_of_text, segment, depository, code, currency, _, _, amount_text = m.groups()
        shared = _CURRENCIES.get(currency)
        as_of = _timestamp(as_of_text)
        amount = _cents(amount_text)
        line = LINES.get(code)  # the model's own check (_line_of_segment): a depository line of this segment
        if (shared is None or as_of is None or line is None or line.segment != segment
                or line.source is not Source.DEPOSITORY or (line.sign is Sign.NONPOSITIVE and amount > 0)
                or (line.sign is Sign.NONNEGATIVE and amount < 0)):
            return None
        key = f"depo|{segment}|{depository}"
        return key, f"{key}|{shared}", Held(
            as_of, event_id, segment, shared, line_codes(code), (amount,), _source(source),
        )
    return None


# -- tier 2: any JSON object of a balance, field by field ----------------------------------------------

_AMOUNT: Final = re.compile(_AMT[2:-2])
_TIMESTAMP: Final = re.compile(_TS[1:-1])
_SEGMENTS: Final = frozenset(SEGMENTS)
_INSTRUMENTS: Final = frozenset(INSTRUMENTS)
_LOCATIONS: Final = frozenset(("us", "non_us"))
_ACCOUNT_REQUIRED: Final = frozenset((
    "event_id", "source", "as_of", "type", "segment", "account", "currency", "cash", "securities", "unrealized",
    "long_options", "short_options",
))
_ACCOUNT_ALLOWED: Final = _ACCOUNT_REQUIRED | {"schema_version", "offset_securities"}
_DEPOSITORY_REQUIRED: Final = frozenset((
    "event_id", "source", "as_of", "type", "segment", "depository", "line", "currency", "location", "amount",
))
_DEPOSITORY_ALLOWED: Final = _DEPOSITORY_REQUIRED | {"schema_version", "instrument"}


def parse_event(raw: bytes) -> Event:
    """The event in `raw`, exactly as `EVENT_ADAPTER.validate_json(raw)` has it (raises its ValidationError)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return EVENT_ADAPTER.validate_json(raw)
    if data.__class__ is dict:
        kind = data.get("type")
        event: Event | None = None
        if kind == "account_balance":
            event = _account(data)
        elif kind == "depository_balance":
            event = _depository(data)
        if event is not None:
            return event
    return EVENT_ADAPTER.validate_json(raw)


def _identifier(value: Any, limit: int = 128) -> bool:
    """pydantic's Identifier (1-128 characters, no blank, no '|'), for printable ASCII."""
    return (
        value.__class__ is str and 0 < len(value) <= limit and value.isascii() and value.isprintable()
        and " " not in value and "|" not in value
    )


def _name(value: Any) -> bool:
    """pydantic's Name (1-64 characters after stripping blanks), for printable ASCII with nothing to strip."""
    return (
        value.__class__ is str and 0 < len(value) <= 64 and value.isascii() and value.isprintable()
        and value[0] != " " and value[-1] != " "
    )


def _money(value: Any) -> Decimal | None:
    if value.__class__ is str:
        zero = _ZEROS.get(value)
        if zero is not None:
            return zero
        if _AMOUNT.fullmatch(value) is not None:
            return Decimal(value)
    return None


def _common(data: dict[str, Any]) -> tuple[str, str, datetime, str, str] | None:
    """event_id, source, as_of, segment, currency (and schema_version); None unless certainly valid."""
    version = data.get("schema_version", 1)
    if version.__class__ is not int or version != 1:
        return None
    event_id, source, segment, currency = data["event_id"], data["source"], data["segment"], data["currency"]
    as_of = data["as_of"]
    if not (_identifier(event_id) and _name(source) and segment.__class__ is str and segment in _SEGMENTS
            and currency.__class__ is str and currency in ISO_4217 and as_of.__class__ is str
            and _TIMESTAMP.fullmatch(as_of) is not None):
        return None
    at = _timestamp(as_of)
    if at is None:
        return None
    return event_id, source, at, segment, currency


def _account(data: dict[str, Any]) -> AccountBalance | None:
    keys = data.keys()
    if not (keys >= _ACCOUNT_REQUIRED and keys <= _ACCOUNT_ALLOWED):
        return None
    common = _common(data)
    if common is None:
        return None
    event_id, source, as_of, segment, currency = common
    account = data["account"]
    if not _identifier(account):
        return None
    cash, securities, unrealized = _money(data["cash"]), _money(data["securities"]), _money(data["unrealized"])
    long_options, short_options = _money(data["long_options"]), _money(data["short_options"])
    offset = _money(data["offset_securities"]) if "offset_securities" in data else _ZERO
    if (cash is None or securities is None or unrealized is None or long_options is None or short_options is None
            or offset is None or long_options < 0 or short_options > 0 or offset < 0):
        return None
    return AccountBalance.model_construct(set(keys), **{
        "schema_version": 1, "event_id": event_id, "source": source, "as_of": as_of, "type": "account_balance",
        "segment": segment, "account": account, "currency": currency, "cash": cash, "securities": securities,
        "unrealized": unrealized, "long_options": long_options, "short_options": short_options,
        "offset_securities": offset,
    })


def _depository(data: dict[str, Any]) -> DepositoryBalance | None:
    keys = data.keys()
    if not (keys >= _DEPOSITORY_REQUIRED and keys <= _DEPOSITORY_ALLOWED):
        return None
    common = _common(data)
    if common is None:
        return None
    event_id, source, as_of, segment, currency = common
    depository, code, location = data["depository"], data["line"], data["location"]
    instrument = data.get("instrument", "cash")
    amount = _money(data["amount"])
    if not (_identifier(depository) and code.__class__ is str and location.__class__ is str
            and location in _LOCATIONS and instrument.__class__ is str and instrument in _INSTRUMENTS
            and amount is not None):
        return None
    line = LINES.get(code)  # the model's own check (_line_of_segment): a depository line of this segment
    if (line is None or line.segment != segment or line.source is not Source.DEPOSITORY
            or (line.sign is Sign.NONPOSITIVE and amount > 0) or (line.sign is Sign.NONNEGATIVE and amount < 0)):
        return None
    return DepositoryBalance.model_construct(set(keys), **{
        "schema_version": 1, "event_id": event_id, "source": source, "as_of": as_of, "type": "depository_balance",
        "segment": segment, "depository": depository, "line": code, "currency": currency, "location": location,
        "instrument": instrument, "amount": amount,
    })
