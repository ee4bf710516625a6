"""The twin's plug-in point: a later rule is one more Stage, seeing each event and each figures record."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from schemas.events import EVENT_ADAPTER, EventBase
from schemas.records import Figures
from segwatch.core.twin import FIGURES_TOPIC, Record, Twin, default_stages
from tests.support.replay_events import DAY


class Spy:
    """A stage that republishes what it sees, so the test can check the order and the arguments."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_figures(self, twin: Twin, figures: Figures, now: datetime) -> Iterable[Record]:
        assert twin.figures[figures.segment] is figures
        self.seen.append(f"figures v{figures.version}")
        return [Record("spy", figures)]

    def on_event(self, twin: Twin, event: EventBase, now: datetime) -> Iterable[Record]:
        self.seen.append(f"event {event.event_id} at {now:%H:%M}")
        return ()


def test_a_stage_sees_figures_then_its_event_and_adds_records() -> None:
    spy = Spy()
    twin = Twin(stages=[*default_stages(), spy])
    records = twin.feed_all(EVENT_ADAPTER.validate_python(e) for e in DAY)
    assert spy.seen == [
        "event t1 at 15:00",  # a target alone: the segment holds no balance, so no figures yet
        "figures v1",
        "event b1 at 15:01",
        "figures v2",
        "event a1 at 15:02",
        "figures v3",
        "event b2 at 15:03",
        "figures v4",
        "event b3 at 15:04",
    ]
    topics = [r.topic for r in records]
    assert topics.count(FIGURES_TOPIC) == 4 and topics.count("spy") == 4
    # Each figures record is followed by what the stages made of it, in stage order (alerts, then the spy).
    assert topics[:2] == [FIGURES_TOPIC, "spy"]
    assert topics[-4:] == [FIGURES_TOPIC, "segwatch.alerts", "segwatch.alerts", "spy"]


def test_without_stages_it_is_the_calculator_alone() -> None:
    twin = Twin(stages=[])
    records = twin.feed_all(EVENT_ADAPTER.validate_python(e) for e in DAY)
    assert {r.topic for r in records} == {FIGURES_TOPIC}
