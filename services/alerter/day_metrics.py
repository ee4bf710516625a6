"""The business day's gauges (issue #12) and the report of investments' (issue #14), on the alerter's registry.

Per business day held (label `business_day`, YYYY-MM-DD; the last `DAYS_SHOWN` days, so the series stay few):

    segwatch_statement_status{business_day,status}                  1 for the day's status (computed, approved,
                                                                    filed), 0 for the two others
    segwatch_statement_version{business_day,segment}                the latest version computed of each statement
    segwatch_statement_filed_version{business_day}                  the version filed (absent until filed)
    segwatch_statement_amendment_needed{business_day}               1 while a later version than the one filed
                                                                    (or signed off) exists
    segwatch_statement_filed_late{business_day}                     1 when first filed after the noon deadline
    segwatch_statement_warning_timestamp_seconds{business_day}      10:00 Chicago the next business day
    segwatch_statement_deadline_timestamp_seconds{business_day}     noon Chicago the next business day

The last close, beside the live figures (label `segment`; dollars as floats here only):

    segwatch_last_close_timestamp_seconds                           the cut-off of the newest closed day
    segwatch_close_requirement_dollars / _funds_ / _excess_         the newest close's lines of each segment
    segwatch_close_version{segment}                                 its version (1 INITIAL, 2… AMENDMENT)

The report of investments (labels `report_date`, `segment`):

    segwatch_investment_report_submitted                            1 once marked submitted, else 0
    segwatch_investment_report_deadline_timestamp_seconds           the close of business of the next business day
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from datetime import date
from decimal import Decimal
from typing import Final, get_args

from prometheus_client import CollectorRegistry, Gauge

from schemas.statements import DayState, DayStatus, StatementRecord
from segwatch.core.catalogue import SEGMENTS

STATEMENT_STATUS: Final = "segwatch_statement_status"
STATEMENT_VERSION: Final = "segwatch_statement_version"
STATEMENT_FILED_VERSION: Final = "segwatch_statement_filed_version"
STATEMENT_AMENDMENT_NEEDED: Final = "segwatch_statement_amendment_needed"
STATEMENT_FILED_LATE: Final = "segwatch_statement_filed_late"
STATEMENT_WARNING_AT: Final = "segwatch_statement_warning_timestamp_seconds"
STATEMENT_DEADLINE_AT: Final = "segwatch_statement_deadline_timestamp_seconds"
LAST_CLOSE: Final = "segwatch_last_close_timestamp_seconds"
CLOSE_REQUIREMENT: Final = "segwatch_close_requirement_dollars"
CLOSE_FUNDS: Final = "segwatch_close_funds_dollars"
CLOSE_EXCESS: Final = "segwatch_close_excess_dollars"
CLOSE_VERSION: Final = "segwatch_close_version"
REPORT_SUBMITTED: Final = "segwatch_investment_report_submitted"
REPORT_DEADLINE_AT: Final = "segwatch_investment_report_deadline_timestamp_seconds"
DAY_METRIC_NAMES: Final = (
    STATEMENT_STATUS,
    STATEMENT_VERSION,
    STATEMENT_FILED_VERSION,
    STATEMENT_AMENDMENT_NEEDED,
    STATEMENT_FILED_LATE,
    STATEMENT_WARNING_AT,
    STATEMENT_DEADLINE_AT,
    LAST_CLOSE,
    CLOSE_REQUIREMENT,
    CLOSE_FUNDS,
    CLOSE_EXCESS,
    CLOSE_VERSION,
    REPORT_SUBMITTED,
    REPORT_DEADLINE_AT,
)
DAY_STATES: Final[tuple[str, ...]] = get_args(DayState)
DAYS_SHOWN: Final = 10
REPORTS_SHOWN: Final = 6


def _remove(gauge: Gauge, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        gauge.remove(*labels)


class DayGauges:
    def __init__(self, registry: CollectorRegistry, dollars: Callable[[Decimal], float]) -> None:
        r = registry
        self.dollars = dollars  # the one conversion to a float (services/alerter/metrics.py)
        day = ["business_day"]
        self.status = Gauge(
            STATEMENT_STATUS,
            "1 for the day's statement status (computed, approved, filed)",
            ["business_day", "status"],
            registry=r,
        )
        self.version = Gauge(
            STATEMENT_VERSION,
            "Latest version computed of the day's statement of a segment",
            ["business_day", "segment"],
            registry=r,
        )
        self.filed_version = Gauge(STATEMENT_FILED_VERSION, "The version of the day's statement filed", day, registry=r)
        self.amendment_needed = Gauge(
            STATEMENT_AMENDMENT_NEEDED, "1 while an amended version awaits filing", day, registry=r
        )
        self.filed_late = Gauge(STATEMENT_FILED_LATE, "1 when first filed after the noon deadline", day, registry=r)
        self.warning_at = Gauge(STATEMENT_WARNING_AT, "When the unfiled statement warns (Unix time)", day, registry=r)
        self.deadline_at = Gauge(
            STATEMENT_DEADLINE_AT, "The noon filing deadline (Unix time; CBOT Rule 971.B)", day, registry=r
        )
        self.last_close = Gauge(LAST_CLOSE, "Cut-off of the newest closed business day (Unix time)", registry=r)
        self.close_requirement = Gauge(CLOSE_REQUIREMENT, "The last close's requirement (USD)", ["segment"], registry=r)
        self.close_funds = Gauge(CLOSE_FUNDS, "The last close's funds held (USD)", ["segment"], registry=r)
        self.close_excess = Gauge(CLOSE_EXCESS, "The last close's excess (USD)", ["segment"], registry=r)
        self.close_version = Gauge(CLOSE_VERSION, "The last close's statement version", ["segment"], registry=r)
        self.report_submitted = Gauge(
            REPORT_SUBMITTED,
            "1 once the report of investments is marked submitted",
            ["report_date", "segment"],
            registry=r,
        )
        self.report_deadline = Gauge(
            REPORT_DEADLINE_AT,
            "When the report of investments is due (Unix time)",
            ["report_date", "segment"],
            registry=r,
        )
        self._days: set[str] = set()
        self._day_segments: dict[str, set[str]] = {}
        self._reports: set[tuple[str, str]] = set()
        self._close: dict[str, tuple[date, int]] = {}

    def show_days(self, statuses: Iterable[tuple[DayStatus, float]]) -> None:
        """The newest DAYS_SHOWN days' status (with the Unix time of the 10:00 warning); older days' series
        are removed."""
        shown = sorted(statuses, key=lambda s: s[0].business_day)[-DAYS_SHOWN:]
        keep = {s.business_day.isoformat() for s, _ in shown}
        for gone in self._days - keep:
            for st in DAY_STATES:
                _remove(self.status, gone, st)
            for seg in self._day_segments.pop(gone, set()):
                _remove(self.version, gone, seg)
            for gauge in (
                self.filed_version,
                self.amendment_needed,
                self.filed_late,
                self.warning_at,
                self.deadline_at,
            ):
                _remove(gauge, gone)
        self._days = keep
        for s, warning_at in shown:
            day = s.business_day.isoformat()
            self.warning_at.labels(business_day=day).set(warning_at)
            for st in DAY_STATES:
                self.status.labels(business_day=day, status=st).set(1 if s.status == st else 0)
            if s.filed_version is not None:
                self.filed_version.labels(business_day=day).set(s.filed_version)
            else:
                _remove(self.filed_version, day)
            self.amendment_needed.labels(business_day=day).set(1 if s.amendment_needed else 0)
            self.filed_late.labels(business_day=day).set(1 if s.filed_late else 0)
            self.deadline_at.labels(business_day=day).set(s.due_at.timestamp())

    def show_statement(self, rec: StatementRecord) -> None:
        day = rec.business_day.isoformat()
        segments = self._day_segments.setdefault(day, set())
        segments.add(rec.segment)
        self.version.labels(business_day=day, segment=rec.segment).set(rec.version)
        held = self._close.get(rec.segment)
        if held is not None and (rec.business_day, rec.version) < held:
            return
        self._close[rec.segment] = (rec.business_day, rec.version)
        seg = SEGMENTS[rec.segment]
        zero = Decimal(0)
        self.close_requirement.labels(segment=rec.segment).set(self.dollars(rec.lines.get(seg.requirement, zero)))
        self.close_funds.labels(segment=rec.segment).set(self.dollars(rec.lines.get(seg.funds, zero)))
        self.close_excess.labels(segment=rec.segment).set(self.dollars(rec.lines.get(seg.excess, zero)))
        self.close_version.labels(segment=rec.segment).set(rec.version)
        newest = max(self._close.values())[0]
        if rec.business_day == newest:
            self.last_close.set(rec.cutoff.timestamp())

    def show_reports(self, reports: Iterable[tuple[date, str, float, bool]]) -> None:
        """(report date, segment, deadline, submitted) of the newest REPORTS_SHOWN report dates."""
        rows = list(reports)
        dates = sorted({d for d, *_ in rows})[-REPORTS_SHOWN:]
        keep = {(d.isoformat(), seg) for d, seg, *_ in rows if d in dates}
        for gone in self._reports - keep:
            _remove(self.report_submitted, *gone)
            _remove(self.report_deadline, *gone)
        self._reports = keep
        for d, seg, deadline, submitted in rows:
            if (d.isoformat(), seg) in keep:
                self.report_submitted.labels(report_date=d.isoformat(), segment=seg).set(1 if submitted else 0)
                self.report_deadline.labels(report_date=d.isoformat(), segment=seg).set(deadline)
