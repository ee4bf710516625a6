"""The pipeline's offline twin: events in, in order, through the same pure core the services use, and out
every record the pipeline would publish. `segwatch replay` is its command line.

    event ─▶ Book.apply ─▶ figures (calculator) ─▶ stages (alerter: alert rules, CBOT Rule 971.E) ─▶ records

The calculator part mirrors `services/calculator/combiner.py`: a segment gets a new figures record only when
its figures changed (a segment with nothing in it yet gets none), with a version that grows by one each time.
The alerter part is a list of **stages**, each the pure counterpart of what the alerter does: `AlertRules`
folds each figures record into the alert states with `rules.evaluate` (so any rule `evaluate` knows appears
here without a change), `Disbursements` runs the `DisbursementMonitor` over the disbursement events. A later
rule (the business-day close, amendments, disbursement decisions, funds held offshore) plugs in as one more
`Stage`: it sees each event once the book has applied it, and each figures record, and returns its records.

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

from schemas.events import Disbursement, EventBase
from schemas.records import Figures
from segwatch.core.book import Book
from segwatch.core.catalogue import SEGMENT_IDS
from segwatch.core.figures import Consolidated
from segwatch.core.holding_alerts import evaluate_holdings
from segwatch.core.rules import AlertStates, DisbursementMonitor, evaluate

# Where the live pipeline publishes each kind of record (the topic names without namespace).
FIGURES_TOPIC = "segwatch.figures"
ALERTS_TOPIC = "segwatch.alerts"


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
class Disbursements:
    """CBOT Rule 971.E as the alerter runs it: each figures record is the segment's latest excess calculation;
    each disbursement is assessed against it and recorded; a notice when one is owed."""

    monitor: DisbursementMonitor = field(default_factory=DisbursementMonitor)

    def on_figures(self, twin: Twin, figures: Figures, now: datetime) -> Iterable[Record]:
        self.monitor.on_figures(figures)
        return ()

    def on_event(self, twin: Twin, event: EventBase, now: datetime) -> Iterable[Record]:
        if not isinstance(event, Disbursement):
            return ()
        assessment = self.monitor.assess(event, now=now)
        self.monitor.record(assessment)
        return [Record(ALERTS_TOPIC, assessment.notice)] if assessment.notice is not None else []


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
    return [AlertRules(), HoldingRules(), Disbursements()]


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
            for stage in self.stages:
                out.extend(stage.on_figures(self, figures, now))
        for stage in self.stages:
            out.extend(stage.on_event(self, event, now))
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
            for stage in self.stages:
                out.extend(stage.on_figures(self, figures, now))
        for event in events:
            for stage in self.stages:
                out.extend(stage.on_event(self, event, now))
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
