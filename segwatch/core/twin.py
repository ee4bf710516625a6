"""The pipeline's offline twin: events in, in order, through the same pure core the services use, and out
every record the pipeline would publish. `segwatch replay` is its command line.

    event ─▶ Book.apply ─▶ figures (calculator) ─▶ stages (alerter: alert rules, CBOT Rule 971.E) ─▶ records

The calculator part mirrors `services/calculator/combiner.py`: a segment gets a new figures record only when
its figures changed (a segment with nothing in it yet gets none), with a version that grows by one each time.
The alerter part is a list of **stages**, each the pure counterpart of what the alerter does: `AlertRules`
folds each figures record into the alert states with `rules.evaluate` (so any rule `evaluate` knows appears
here without a change), `DisbursementControls` runs the 25% control (segwatch.core.controls) over the
disbursement events: one `DisbursementDecision` per disbursement (on the alerter's state topic), its notices,
and the residual interest rule (segwatch.core.residual). A later rule plugs in as one more `Stage`: it sees
each event once the book has applied it, and each figures record, and returns its records. A stage with an
`on_record` method also sees every record the stages before it returned (so the 25% control takes its
baselines from the `StatementRecord`s a close stage emits); `DisbursementControls.on_baseline` takes one
directly (`segwatch replay --baselines`).

One difference from the live pipeline, by design: the twin evaluates after **every** event. The calculator
coalesces figures for up to 50 ms (`SEGWATCH_COALESCE_MS`) and takes balances a whole fetch at a time, so
it may never publish a transient state that lasts only within a burst; the twin shows it. Figures versions
(and the alert ids made from them) therefore match the live ones only when the live pipeline published
every intermediate state. `feed_batch` takes several events as one fetch (figures once, at its end), as the
calculator does with a burst it coalesces. Clock fields (`computed_at`, `at`) come from the `clock`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel

from schemas.controls import Baseline
from schemas.events import Disbursement, DisbursementApproval, EventBase, UndermarginedAmounts
from schemas.records import Figures
from schemas.statements import StatementRecord
from segwatch.core.book import Book
from segwatch.core.calendar import BusinessCalendar
from segwatch.core.catalogue import SEGMENT_IDS, SEGMENTS
from segwatch.core.controls import Controls
from segwatch.core.figures import Consolidated
from segwatch.core.holding_alerts import evaluate_holdings
from segwatch.core.residual import RULE as RESIDUAL_RULE
from segwatch.core.residual import ResidualInterest
from segwatch.core.rules import AlertStates, evaluate

# Where the live pipeline publishes each kind of record (the topic names without namespace).
FIGURES_TOPIC = "segwatch.figures"
ALERTS_TOPIC = "segwatch.alerts"
STATE_TOPIC = "segwatch-alerter-alerts-changelog"  # the alerter's compacted state: decisions and notices


@dataclass(frozen=True, slots=True)
class Record:
    """One record the pipeline would publish: the topic it goes to and the record itself."""

    topic: str
    value: BaseModel

    def json(self) -> str:
        return self.value.model_dump_json()


class Stage(Protocol):
    """A step after the calculator: what it publishes when an event is applied and when figures change.

    `on_event` runs once per event, after the book applied it and after `on_figures` ran for the figures it
    changed; `on_figures` once per new figures record. Both get the twin (its book, clock and the latest
    figures) and return the records to publish, in order.
    """

    def on_figures(self, twin: Twin, figures: Figures, now: datetime) -> Iterable[Record]: ...

    def on_event(self, twin: Twin, event: EventBase, now: datetime) -> Iterable[Record]: ...


@dataclass
class AlertRules:
    """The alerter's state rules: each figures record through `rules.evaluate`, one record per change."""

    states: AlertStates = field(default_factory=AlertStates)

    def on_figures(self, twin: Twin, figures: Figures, now: datetime) -> Iterable[Record]:
        result = evaluate(self.states, figures, now=now)
        self.states = result.states
        return [Record(ALERTS_TOPIC, alert) for alert in result.changes]

    def on_event(self, twin: Twin, event: EventBase, now: datetime) -> Iterable[Record]:
        return ()


@dataclass
class DisbursementControls:
    """Controls before the money moves, as the alerter runs them: each figures record is the live excess; each
    baseline (a `StatementRecord` of an earlier stage, or `on_baseline`) the last daily computation; each
    disbursement decided once (its `DisbursementDecision` and `DisbursementNotice`s on the state topic, its
    notice on the alert topic); approvals and undermargined amounts taken; residual interest checked on each
    figures record and each event (the twin's clock)."""

    controls: Controls = field(default_factory=Controls)
    residual: ResidualInterest = field(default_factory=ResidualInterest)
    calendar: BusinessCalendar | None = None  # built on first use (only the residual rule needs it)
    states: AlertStates = field(default_factory=AlertStates)  # the residual rule's alert state
    figures: dict[str, Figures] = field(default_factory=dict)

    def on_baseline(self, baseline: Baseline) -> bool:
        return self.controls.on_baseline(baseline)

    def on_record(self, twin: Twin, record: Record, now: datetime) -> Iterable[Record]:
        value = record.value
        if isinstance(value, StatementRecord):
            excess = value.lines.get(SEGMENTS[value.segment].excess)
            if excess is not None:
                self.on_baseline(
                    Baseline(
                        segment=value.segment,
                        business_day=value.business_day,
                        cutoff=value.cutoff,
                        excess=excess,
                        version=value.version,
                    )
                )
        elif isinstance(value, Baseline):
            self.on_baseline(value)
        return ()

    def on_figures(self, twin: Twin, figures: Figures, now: datetime) -> Iterable[Record]:
        self.controls.on_figures(figures)
        self.figures[figures.segment] = figures
        return self._residual([figures.segment], now)

    def on_event(self, twin: Twin, event: EventBase, now: datetime) -> Iterable[Record]:
        out: list[Record] = []
        if isinstance(event, DisbursementApproval):
            self.controls.on_approval(event)
        elif isinstance(event, UndermarginedAmounts):
            self.residual.on_amounts(event)
        elif isinstance(event, Disbursement):
            result = self.controls.process(event, now=now)
            if result is not None:
                out.append(Record(STATE_TOPIC, result.decision))
                out.extend(Record(STATE_TOPIC, notice) for notice in result.notices)
                if result.alert is not None:
                    out.append(Record(ALERTS_TOPIC, result.alert))
        out.extend(self._residual(sorted(self.figures), now))
        return out

    def _residual(self, segments: Iterable[str], now: datetime) -> list[Record]:
        if not self.residual.amounts:
            return []
        if self.calendar is None:
            self.calendar = BusinessCalendar()
        out = []
        for segment in segments:
            change = self.residual.evaluate(
                self.figures[segment],
                self.states.firing(segment, RESIDUAL_RULE),
                now=now,
                next_business_day=self.calendar.next_business_day,
            )
            if change is not None:
                self.states = self.states.with_alert(change)
                out.append(Record(ALERTS_TOPIC, change))
        return out


@dataclass
class HoldingRules:
    """Where and in what the money is held (issue #14) as the alerter runs it: each new figures record's
    holdings through segwatch.core.holding_alerts (offshore_funds, depository_not_acknowledged, ...), one
    record per change."""

    states: AlertStates = field(default_factory=AlertStates)
    versions: dict[str, int] = field(default_factory=dict)

    def on_figures(self, twin: Twin, figures: Figures, now: datetime) -> Iterable[Record]:
        if figures.version <= self.versions.get(figures.segment, -1):
            return ()
        self.versions[figures.segment] = figures.version
        self.states, changes = evaluate_holdings(self.states, figures, now=now)
        return [Record(ALERTS_TOPIC, alert) for alert in changes]

    def on_event(self, twin: Twin, event: EventBase, now: datetime) -> Iterable[Record]:
        return ()


def default_stages() -> list[Stage]:
    """What the alerter runs today, in its order."""
    from segwatch.core.twin_day import BusinessDay  # the close, amendments, the filing deadline (issue #12)
    from segwatch.core.twin_reports import InvestmentReports  # the report of investments' deadline (issue #14)

    # The close before the controls: its statements are the controls' baselines (Stage.on_record); and the
    # report deadlines' closes (last).
    return [AlertRules(), HoldingRules(), BusinessDay(), DisbursementControls(), InvestmentReports()]


Clock = Callable[[EventBase], datetime]


class EventClock:
    """The default clock: event time, the latest `as_of` seen so far (never going back), so a replay of the
    same file prints the same records and time-based rules judge the day as it happened."""

    def __init__(self) -> None:
        self.latest: datetime | None = None

    def __call__(self, event: EventBase) -> datetime:
        if self.latest is None or event.as_of > self.latest:
            self.latest = event.as_of
        return self.latest


class Twin:
    """The pipeline without Kafka: `feed` one event, get the records the pipeline would publish for it."""

    def __init__(self, *, clock: Clock | None = None, stages: Sequence[Stage] | None = None) -> None:
        self.book = Book()
        self.clock: Clock = clock if clock is not None else EventClock()
        self.stages: list[Stage] = list(default_stages() if stages is None else stages)
        self.figures: dict[str, Figures] = {}  # the latest figures record of each segment
        self._emitted: dict[str, Consolidated] = {}

    def feed(self, event: EventBase) -> list[Record]:
        """Apply one event and return every record it causes, in publication order. An event the core
        refuses raises `InputError` (the calculator would dead-letter it) and changes nothing."""
        changed = self.book.apply(event)
        now = self.clock(event)  # after the book took it: a refused event never moves the clock
        out: list[Record] = []
        for sid in SEGMENT_IDS:
            if sid not in changed:
                continue
            figures = self._figures(sid, event, now)
            if figures is None:
                continue
            out.append(Record(FIGURES_TOPIC, figures))
            for i, stage in enumerate(self.stages):
                out.extend(self._forward(i, stage.on_figures(self, figures, now), now))
        for i, stage in enumerate(self.stages):
            out.extend(self._forward(i, stage.on_event(self, event, now), now))
        return out

    def _forward(self, index: int, records: Iterable[Record], now: datetime) -> list[Record]:
        """The records of stage `index`, after every later stage with an `on_record` has seen them."""
        out = list(records)
        for record in list(out):
            for later in self.stages[index + 1 :]:
                on_record = getattr(later, "on_record", None)
                if on_record is not None:
                    out.extend(on_record(self, record, now))
        return out

    def feed_all(self, events: Iterable[EventBase]) -> list[Record]:
        return [record for event in events for record in self.feed(event)]

    def feed_batch(self, events: Sequence[EventBase]) -> list[Record]:
        """Apply several events as the calculator takes one fetch within its coalescing window: the book takes
        them all, then each segment they changed gets at most one figures record (its trigger the last event
        that changed it), then the stages see each event in order. What `segwatch run` and the e2e tests post
        as one phase and wait for is one batch. An event the core refuses raises `InputError`, as in `feed`."""
        changed: dict[str, EventBase] = {}
        now: datetime | None = None
        for event in events:
            for sid in self.book.apply(event):
                changed[sid] = event
            now = self.clock(event)
        if now is None:
            return []
        out: list[Record] = []
        for sid in SEGMENT_IDS:
            trigger = changed.get(sid)
            figures = self._figures(sid, trigger, now) if trigger is not None else None
            if figures is None:
                continue
            out.append(Record(FIGURES_TOPIC, figures))
            for i, stage in enumerate(self.stages):
                out.extend(self._forward(i, stage.on_figures(self, figures, now), now))
        for event in events:
            for i, stage in enumerate(self.stages):
                out.extend(self._forward(i, stage.on_event(self, event, now), now))
        return out

    def _figures(self, sid: str, event: EventBase, now: datetime) -> Figures | None:
        """A new figures record when the segment's figures changed (as the calculator's combiner decides)."""
        consolidated = self.book.consolidated(sid)
        last = self._emitted.get(sid)
        if consolidated == last:
            return None
        if not self.book.holds(sid):
            return None  # a segment without a balance has no figures to publish, as in the calculator
        self._emitted[sid] = consolidated
        held = self.figures.get(sid)
        version = held.version + 1 if held is not None else 1
        # The book's own record (as_of, counts, sources), with the calculator's version and trigger.
        figures = self.book.figures(sid, computed_at=now).model_copy(
            update={"version": version, "last_event_id": event.event_id}
        )
        self.figures[sid] = figures
        return figures
