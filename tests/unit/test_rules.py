"""The alert rules (segwatch.core.rules): transitions, ordering, replays, stable ids, state round trip.

The 25% disbursement control has its own tests (test_controls.py, test_alerter_controls.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.alerts import Alert
from schemas.records import Figures
from segwatch.core.catalogue import SEGMENTS
from segwatch.core.rules import (
    RULES,
    AlertStates,
    alert_id,
    evaluate,
    evaluate_all,
    usd,
)
from segwatch.errors import InputError
from tests.support.figures import T0, real_figures, scripted


def clock() -> Iterator[datetime]:
    now = T0 + timedelta(hours=1)
    while True:
        now += timedelta(seconds=1)
        yield now


def run(records: Sequence[Figures], states: AlertStates | None = None) -> tuple[AlertStates, list[Alert]]:
    ticks = clock()
    return evaluate_all(states or AlertStates(), records, now=lambda: next(ticks))


def changes(alerts: Sequence[Alert]) -> list[tuple[str, str, str]]:
    return [(a.segment, a.rule, a.state) for a in alerts]


# --- transitions -------------------------------------------------------------------------------------------


def test_the_real_figures_raise_no_alert() -> None:
    for segment in SEGMENTS:
        figures = real_figures(segment)
        assert figures.target is not None and figures.excess > figures.target > 0
        result = evaluate(AlertStates(), figures, now=T0)
        assert result.changes == ()
        assert result.states.version(segment) == 1


def test_the_scripted_day_gives_exactly_the_four_state_changes_in_order() -> None:
    states, alerts = run(scripted())
    assert changes(alerts) == [
        ("4d2", "under_target", "firing"),
        ("4d2", "deficiency", "firing"),
        ("4d2", "deficiency", "resolved"),
        ("4d2", "under_target", "resolved"),
    ]
    under, deficient, cured, back = alerts
    assert under.alert_id == back.alert_id == alert_id("4d2", "under_target", 2) == "4d2:under_target:v2"
    assert deficient.alert_id == cured.alert_id == "4d2:deficiency:v3"
    assert [a.figures.version if a.figures else None for a in alerts] == [2, 3, 5, 6]
    assert under.started_at == back.started_at == T0 + timedelta(seconds=2)
    assert deficient.started_at == cured.started_at == T0 + timedelta(seconds=3)
    assert not any(states.is_firing("4d2", rule) for rule in RULES)


def test_a_deficiency_is_critical_pages_and_names_the_regulation_and_the_dollars() -> None:
    real = real_figures()
    figures = real_figures(version=2, funds_delta=-(real.excess + Decimal("1234.56")), event="evt-42")
    now = T0 + timedelta(minutes=5)
    under, deficiency = evaluate(AlertStates(), figures, now=now).changes
    assert deficiency.rule == "deficiency" and deficiency.state == "firing"
    assert deficiency.severity == "critical" and deficiency.page is True
    assert figures.excess == Decimal("-1234.56")
    assert "DEFICIENCY of $1,234.56" in deficiency.summary
    assert f"funds {usd(figures.funds)}, requirement {usd(figures.requirement)}" in deficiency.summary
    assert "1.12(h)" in deficiency.regulation and "1.20" in deficiency.regulation
    assert "CFTC and the DSRO" in deficiency.regulation
    assert deficiency.runbook == "docs/RUNBOOK.md#deficiency"
    assert deficiency.correlation_id == "evt-42"
    assert deficiency.at == now
    assert deficiency.started_at == figures.computed_at
    f = deficiency.figures
    assert f is not None
    assert (f.version, f.as_of, f.requirement, f.funds, f.excess, f.target, f.excess_over_target) == (
        2,
        figures.as_of,
        figures.requirement,
        figures.funds,
        figures.excess,
        figures.target,
        figures.excess_over_target,
    )
    assert under.rule == "under_target" and under.severity == "warning" and under.page is False
    assert under.runbook == "docs/RUNBOOK.md#under-target"
    assert "1.11" in under.regulation and "1.12(j)" in under.regulation
    assert figures.target is not None and f"target {usd(figures.target)}" in under.summary


@pytest.mark.parametrize(
    ("segment", "regulation"),
    [("4d2", "Reg. 1.20 and 1.12(h)"), ("30.7", "Reg. 30.7 and 1.12(h)"), ("4df", "Reg. 22.2 and 1.12(h)")],
)
def test_the_deficiency_regulation_is_worded_per_segment(segment: str, regulation: str) -> None:
    real = real_figures(segment)
    alerts = evaluate(AlertStates(), real_figures(segment, 2, funds_delta=-real.excess - 1), now=T0).changes
    deficiency = next(a for a in alerts if a.rule == "deficiency")
    assert regulation in deficiency.regulation
    assert deficiency.segment == segment


def test_a_deficiency_page_is_not_repeated_on_its_resolution() -> None:
    _, alerts = run(scripted())
    assert [a.page for a in alerts] == [False, True, False, False]


def test_both_fire_in_one_update_under_target_first() -> None:
    real = real_figures()
    _, alerts = run([real, real_figures(version=2, funds_delta=-real.excess - 1)])
    assert changes(alerts) == [("4d2", "under_target", "firing"), ("4d2", "deficiency", "firing")]


def test_both_resolve_in_one_update_deficiency_first() -> None:
    real = real_figures()
    _, alerts = run([real_figures(version=1, funds_delta=-real.excess - 1), real_figures(version=2)])
    assert changes(alerts) == [
        ("4d2", "under_target", "firing"),
        ("4d2", "deficiency", "firing"),
        ("4d2", "deficiency", "resolved"),
        ("4d2", "under_target", "resolved"),
    ]


def test_the_boundaries_are_strict() -> None:
    real = real_figures()
    assert real.excess_over_target is not None
    at_target = real_figures(version=1, funds_delta=-real.excess_over_target)
    assert at_target.excess == at_target.target
    assert evaluate(AlertStates(), at_target, now=T0).changes == ()

    zero_excess = real_figures(version=1, funds_delta=-real.excess)
    assert zero_excess.excess == 0
    assert changes(evaluate(AlertStates(), zero_excess, now=T0).changes) == [("4d2", "under_target", "firing")]

    one_cent_short = real_figures(version=1, funds_delta=-real.excess - Decimal("0.01"))
    assert [a.rule for a in evaluate(AlertStates(), one_cent_short, now=T0).changes] == ["under_target", "deficiency"]


def test_with_a_zero_target_under_target_coincides_with_deficiency() -> None:
    real = real_figures(target=0)
    assert evaluate(AlertStates(), real_figures(version=1, target=0, funds_delta=-real.excess), now=T0).changes == ()
    deficient = real_figures(version=1, target=0, funds_delta=-real.excess - 1)
    assert [a.rule for a in evaluate(AlertStates(), deficient, now=T0).changes] == ["under_target", "deficiency"]


def test_missing_fx_fires_once_and_resolves() -> None:
    records = [
        real_figures(version=1, missing_fx=["EUR"]),
        real_figures(version=2, missing_fx=["EUR", "JPY"]),  # still firing: no new record
        real_figures(version=3, missing_fx=["JPY"]),
        real_figures(version=4),
    ]
    _, alerts = run(records)
    assert changes(alerts) == [("4d2", "missing_fx", "firing"), ("4d2", "missing_fx", "resolved")]
    firing, resolved = alerts
    assert firing.severity == "critical" and firing.page  # incomplete figures cannot show compliance
    assert firing.figures is not None and firing.figures.incomplete
    assert "EUR" in firing.summary and firing.figures.missing_fx == ["EUR"]
    assert firing.runbook == "docs/RUNBOOK.md#missing-fx"
    assert resolved.alert_id == firing.alert_id == "4d2:missing_fx:v1"


def test_segments_never_net() -> None:
    real_307 = real_figures("30.7")
    deficient_307 = real_figures("30.7", 1, funds_delta=-real_307.excess - 1)
    records = [real_figures("4d2", 1), deficient_307, real_figures("4d2", 2)]
    states, alerts = run(records)
    assert {a.segment for a in alerts} == {"30.7"}
    assert states.is_firing("30.7", "deficiency") and not states.is_firing("4d2", "deficiency")
    assert dict(states.versions) == {"4d2": 2, "30.7": 1}


# --- one record per state change -----------------------------------------------------------------------------


def test_a_long_deficiency_fires_once() -> None:
    real = real_figures()
    records = [real_figures(version=v, funds_delta=-real.excess - 1000 * v) for v in range(1, 301)]
    _, alerts = run([*records, real_figures(version=301)])
    assert changes(alerts) == [
        ("4d2", "under_target", "firing"),
        ("4d2", "deficiency", "firing"),
        ("4d2", "deficiency", "resolved"),
        ("4d2", "under_target", "resolved"),
    ]


@given(st.lists(st.integers(min_value=-3, max_value=3), min_size=1, max_size=60))
def test_records_alternate_and_follow_the_conditions(steps: list[int]) -> None:
    target = Decimal(100)
    excesses = [Decimal(s) * 60 for s in steps]  # -180 .. 180 around 0 and the target
    records = [_bare(v + 1, excess, target) for v, excess in enumerate(excesses)]
    states, alerts = run(records)
    conditions: list[tuple[str, Callable[[Decimal], bool]]] = [
        ("deficiency", lambda e: e < 0),
        ("under_target", lambda e: e < target),
    ]
    for rule, holds in conditions:
        mine = [a for a in alerts if a.rule == rule]
        expected: list[str] = []
        before = False
        for e in excesses:
            if holds(e) != before:
                expected.append("firing" if holds(e) else "resolved")
                before = holds(e)
        assert [a.state for a in mine] == expected
        assert states.is_firing("4d2", rule) == holds(excesses[-1])
        # The firing and its resolution share one id; every incident has its own.
        ids = [a.alert_id for a in mine]
        assert all(ids[i] == ids[i + 1] for i in range(0, len(ids) - 1, 2))
        assert len(set(ids)) == (len(ids) + 1) // 2


def _bare(version: int, excess: Decimal, target: Decimal) -> Figures:
    return Figures(
        segment="4d2",
        version=version,
        as_of=None,
        computed_at=T0 + timedelta(seconds=version),
        lines={"7190": excess, "7194": target, "7198": excess - target},
        requirement=Decimal(1000),
        funds=1000 + excess,
        excess=excess,
        target=target,
        excess_over_target=excess - target,
        accounts=1,
        depositories=1,
        last_event_id=f"e{version}",
    )


# --- replays and duplicates ----------------------------------------------------------------------------------


def test_a_version_not_above_the_last_seen_changes_nothing() -> None:
    real = real_figures()
    states, _ = run([real_figures(version=5)])
    for version in (5, 4, 0):
        stale = real_figures(version=version, funds_delta=-real.excess - 1)  # deficient, but a replay
        result = evaluate(states, stale, now=T0)
        assert result.stale and result.changes == () and result.states == states


def test_replaying_the_whole_day_changes_nothing() -> None:
    records = scripted()
    states, first = run(records)
    again, second = run(records, states)
    assert len(first) == 4 and second == [] and again == states


def test_a_duplicate_in_the_middle_changes_nothing() -> None:
    records = scripted()
    with_duplicates = [r for record in records for r in (record, record)]
    _, alerts = run(with_duplicates)
    assert changes(alerts) == changes(run(records)[1])


# --- stable ids and the state on the alert topic -------------------------------------------------------------


def test_ids_are_deterministic() -> None:
    _, first = run(scripted())
    _, second = run(scripted())
    assert [a.alert_id for a in first] == [a.alert_id for a in second]
    _, later = run(scripted(start=11))
    assert [a.alert_id for a in later] == [
        "4d2:under_target:v12",
        "4d2:deficiency:v13",
        "4d2:deficiency:v13",
        "4d2:under_target:v12",
    ]


def test_state_round_trips_through_json() -> None:
    records = scripted()
    states, _ = run(records[:3])  # both firing
    text = states.to_json()
    back = AlertStates.from_json(text)
    assert back == states
    assert back.firing("4d2", "deficiency") == states.firing("4d2", "deficiency")
    # The rebuilt state carries on exactly as the original would.
    ticks = clock()
    _, from_original = evaluate_all(states, records[3:], now=lambda: next(ticks))
    ticks = clock()
    _, from_rebuilt = evaluate_all(back, records[3:], now=lambda: next(ticks))
    assert from_original == from_rebuilt
    assert AlertStates.from_json(AlertStates().to_json()) == AlertStates()


def test_state_rebuilt_from_the_alert_records_fires_nothing_twice() -> None:
    records = scripted()
    _, published = run(records[:4])  # under_target and deficiency firing, as on the alert topic
    rebuilt = AlertStates.from_alerts(published)
    assert rebuilt.is_firing("4d2", "deficiency") and rebuilt.is_firing("4d2", "under_target")
    assert rebuilt.version("4d2") == 3  # the newest version on the topic
    # A restarted alerter re-reads the figures from its last commit: replays change nothing ...
    state, replayed = run(records[:4], rebuilt)
    assert replayed == []
    # ... and the recovery resolves the original incidents, under their original ids.
    _, rest = run(records[4:], state)
    assert [(a.rule, a.state, a.alert_id) for a in rest] == [
        ("deficiency", "resolved", "4d2:deficiency:v3"),
        ("under_target", "resolved", "4d2:under_target:v2"),
    ]
    assert rest[0].started_at == published[1].started_at


def test_the_newest_record_per_key_wins_whatever_the_order_read() -> None:
    _, published = run(scripted())
    forwards = AlertStates.from_alerts(published)
    backwards = AlertStates.from_alerts(reversed(published))
    assert forwards == backwards
    assert not forwards.is_firing("4d2", "deficiency")
    assert forwards.latest("4d2", "deficiency") == published[2]
    folded = AlertStates()
    for alert in published:
        folded = folded.with_alert(alert)
    assert folded == forwards


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"versions": {"4d9": 1}}, "versions.4d9"),
        ({"versions": {"4d2": -1}}, "versions.4d2"),
        ({"versions": {"4d2": "3"}}, "versions.4d2"),
    ],
)
def test_a_bad_serialized_state_is_rejected(data: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as exc:
        AlertStates.from_dict(data)
    assert exc.value.field == field


def test_a_serialized_alert_under_the_wrong_key_is_rejected() -> None:
    _, published = run(scripted()[:2])
    data = AlertStates.from_alerts(published).to_dict()
    data["alerts"] = {"4df|deficiency": data["alerts"]["4d2|under_target"]}
    with pytest.raises(InputError, match=r"4d2\|under_target"):
        AlertStates.from_dict(data)
