"""The segwatch Grafana dashboard, generated from the line catalogue and the metric-name constants.

    python -m segwatch.ops.dashboard            rewrite deploy/grafana/dashboards/segwatch.json
    python -m segwatch.ops.dashboard --check    exit 1 when the checked-in JSON differs from what this code makes

Every segment, line code, line number and label comes from segwatch/core/catalogue.py and every metric name
from segwatch/ops/metrics.py, so a new line or segment shows up on the dashboard by regenerating it.
Grafana loads the JSON through deploy/grafana/provisioning (datasource uid `segwatch-prometheus`).

Built with Grafana's own grafana-foundation-sdk (its build for Grafana 11.3, the version deploy/ runs). A panel
is one call returning an SDK builder: `timeseries(title, [(expr, legend), ...], GridPos(h=, w=, x=, y=),
unit=..., description=..., zero_line=...)`, `stat(...)`, `state_timeline(...)`, `row(title, y)`, or an SDK
builder chained by hand (the tables); anything else a panel needs is a builder method on it (e.g.
`.override_by_regexp(...)`). A group of panels is a `*_panels(y) -> list[Panel]` function named in `build()`,
which stacks the groups one under the other and numbers the panels.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, statetimeline
from grafana_foundation_sdk.builders import stat as statpanel
from grafana_foundation_sdk.builders import table as tablepanel
from grafana_foundation_sdk.builders import timeseries as timeseriespanel
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models.dashboard import GridPos
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from segwatch.core.catalogue import SEGMENTS, Segment
from segwatch.ops import metrics as m

ROOT: Final = Path(__file__).resolve().parents[2]
OUTPUT: Final = ROOT / "deploy" / "grafana" / "dashboards" / "segwatch.json"
DATASOURCE_UID: Final = "segwatch-prometheus"
DATASOURCE: Final[dict[str, str]] = {"type": "prometheus", "uid": DATASOURCE_UID}
DASHBOARD_UID: Final = "segwatch"
TITLE: Final = "segwatch: customer funds segregation"
RATE: Final = "$__rate_interval"  # Grafana's rate window for the scrape interval
QUANTILES: Final = (0.5, 0.95, 0.99)
WIDTH: Final = 24  # Grafana's grid
JOBS_RE: Final = "|".join(m.JOBS.values())
UNIT_USD: Final = "currencyUSD"

# What a panel function returns: an SDK builder of a panel, or of a row.
Panel = Builder[dm.Panel] | Builder[dm.RowPanel]


@dataclass(frozen=True, slots=True)
class Query:
    """One PromQL query of the dashboard: a panel target or an annotation."""

    panel: str
    ref_id: str
    expr: str
    instant: bool


def sel(metric: str, **labels: str) -> str:
    """A selector: sel("x", segment="4d2") → x{segment="4d2"}."""
    if not labels:
        return metric
    return metric + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def quantile(q: float, histogram: str) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({histogram}_bucket[{RATE}])))"


def datasource() -> dm.DataSourceRef:
    return dm.DataSourceRef(type_val=DATASOURCE["type"], uid=DATASOURCE_UID)


def target(
    expr: str, legend: str = "", ref: str = "A", *, instant: bool = False, table: bool = False
) -> prometheus.Dataquery:
    query = (
        prometheus.Dataquery()
        .expr(expr)
        .legend_format(legend)
        .ref_id(ref)
        .datasource(datasource())
        .format(PromQueryFormat.TABLE if table else PromQueryFormat.TIME_SERIES)
    )
    return query.instant() if instant else query.range()


def refs(n: int) -> Iterator[str]:
    return iter("ABCDEFGHIJKLMNOPQRSTUVWXYZ"[:n])


def thresholds(*steps: tuple[str, float | None]) -> db.ThresholdsConfig:
    return (
        db.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(color=color, value=value) for color, value in steps])
    )


def timeseries(
    title: str,
    targets: Sequence[tuple[str, str]],
    pos: GridPos,
    *,
    unit: str = "",
    description: str = "",
    zero_line: bool = False,
) -> timeseriespanel.Panel:
    refs_ = refs(len(targets))
    panel = (
        timeseriespanel.Panel()
        .title(title)
        .description(description)
        .datasource(datasource())
        .grid_pos(pos)
        .unit(unit)
        .targets([target(expr, legend, next(refs_)) for expr, legend in targets])
        .legend(
            cb.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .calcs(["lastNotNull"])
            .show_legend(True)
        )
        .tooltip(cb.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.NONE))
    )
    if zero_line:  # a deficiency is below the red line
        panel.thresholds(thresholds(("red", None), ("transparent", 0))).thresholds_style(
            cb.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
        )
    return panel


def state_timeline(
    title: str,
    expr: str,
    legend: str,
    pos: GridPos,
    *,
    description: str = "",
    mappings: list[dm.ValueMapping] | None = None,
) -> statetimeline.Panel:
    return (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .datasource(datasource())
        .grid_pos(pos)
        .targets([target(expr, legend)])
        .mappings(mappings or [])
        .thresholds(thresholds(("green", None), ("red", 1)))
        .color_scheme(db.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
    )


def value_map(options: dict[str, tuple[str, str | None]]) -> list[dm.ValueMapping]:
    """Grafana value mappings: raw value → (text, color)."""
    return [
        dm.ValueMap(
            options={
                value: dm.ValueMappingResult(text=text, color=color, index=i)
                for i, (value, (text, color)) in enumerate(options.items())
            }
        )
    ]


def column(display: str, *props: tuple[str, object]) -> list[dm.DynamicConfigValue]:
    """A table column's properties (for `override_by_name`): its display name, then (property id, value)s."""
    return [
        dm.DynamicConfigValue(id_val="displayName", value=display),
        *(dm.DynamicConfigValue(id_val=key, value=value) for key, value in props),
    ]


def transformation(id_: str, options: dict[str, Any]) -> dm.DataTransformerConfig:
    return dm.DataTransformerConfig(id_val=id_, options=options)


# ---------------------------------------------------------------------------------------------------------------
# Panels


def row(title: str, y: int) -> db.Row:
    return db.Row(title).grid_pos(GridPos(h=1, w=WIDTH, x=0, y=y)).collapsed(False)


def segment_name(seg: Segment) -> str:
    return f"{seg.id} ({seg.law})"


def stat(title: str, expr: str, pos: GridPos, steps: db.ThresholdsConfig, description: str) -> statpanel.Panel:
    return (
        statpanel.Panel()
        .title(title)
        .description(description)
        .datasource(datasource())
        .grid_pos(pos)
        .unit(UNIT_USD)
        .targets([target(expr)])
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False).fields(""))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.AREA)
        .thresholds(steps)
        .color_scheme(db.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
    )


def now_panels(y: int) -> list[Panel]:
    panels: list[Panel] = [row("Now: excess and room over the management target, per segment", y)]
    w = WIDTH // (2 * len(SEGMENTS))
    for i, seg in enumerate(SEGMENTS.values()):
        panels.append(
            stat(
                f"{seg.id} excess (line {seg.excess})",
                sel(m.EXCESS, segment=seg.id),
                GridPos(h=4, w=w, x=2 * i * w, y=y + 1),
                thresholds(("red", None), ("green", 0)),
                f"{seg.title}: {seg.line(seg.excess).label}. Red: a deficiency.",
            )
        )
        panels.append(
            stat(
                f"{seg.id} over (under) target (line {seg.over_target})",
                sel(m.EXCESS_OVER_TARGET, segment=seg.id),
                GridPos(h=4, w=w, x=(2 * i + 1) * w, y=y + 1),
                thresholds(("orange", None), ("green", 0)),
                f"{seg.title}: {seg.line(seg.over_target).label}. Orange: under the management target.",
            )
        )
    return panels


def segregation_panels(y: int) -> list[Panel]:
    panels: list[Panel] = [row("Segregation: per segment, over time", y)]
    w = WIDTH // len(SEGMENTS)
    for i, seg in enumerate(SEGMENTS.values()):
        panels.append(
            timeseries(
                f"{segment_name(seg)}: excess against management target",
                [
                    (sel(m.EXCESS, segment=seg.id), f"excess (line {seg.excess})"),
                    (sel(m.TARGET, segment=seg.id), f"management target (line {seg.target})"),
                ],
                GridPos(h=8, w=w, x=i * w, y=y + 1),
                unit=UNIT_USD,
                zero_line=True,
                description=f"{seg.title}. Excess below the target: under target (warning); below zero: deficiency.",
            )
        )
    for i, seg in enumerate(SEGMENTS.values()):
        panels.append(
            timeseries(
                f"{segment_name(seg)}: requirement against funds held",
                [
                    (sel(m.REQUIREMENT, segment=seg.id), f"required (line {seg.requirement})"),
                    (sel(m.FUNDS, segment=seg.id), f"funds held (line {seg.funds})"),
                ],
                GridPos(h=8, w=w, x=i * w, y=y + 9),
                unit=UNIT_USD,
                description=f"{seg.line(seg.requirement).label} against {seg.line(seg.funds).label}.",
            )
        )
    return panels


def currency_panels(y: int) -> list[Panel]:
    """Reg. 1.32(a): the computation currency by currency, and whether the dollar figures are complete."""
    panels: list[Panel] = [row("Currencies: excess in each currency, FX completeness", y)]
    w = WIDTH // (len(SEGMENTS) + 1)
    for i, seg in enumerate(SEGMENTS.values()):
        panels.append(
            timeseries(
                f"{segment_name(seg)}: excess by currency (in that currency)",
                [(f"max by (currency) ({sel(m.EXCESS_BY_CURRENCY, segment=seg.id)})", "{{currency}}")],
                GridPos(h=8, w=w, x=i * w, y=y + 1),
                unit="short",
                zero_line=True,
                description=f"{seg.title}: funds held in each currency less the requirement in it, in that currency's "
                "units (Reg. 1.32(a), 1.49). A currency without an FX rate is left out of the dollar "
                "figures but shown here.",
            )
        )
    panels.append(
        state_timeline(
            "FX completeness per segment",
            f"max by (segment) ({m.INCOMPLETE}) * 2 or max by (segment) ({m.STALE_FX} > bool 0)",
            "{{segment}}",
            GridPos(h=8, w=WIDTH - len(SEGMENTS) * w, x=len(SEGMENTS) * w, y=y + 1),
            mappings=value_map({"0": ("complete", "green"), "1": ("stale rate", "orange"), "2": ("INCOMPLETE", "red")}),
            description="INCOMPLETE: a currency held has no FX rate, so the dollar figures leave it out and cannot "
            "show compliance (SegwatchMissingFx pages). Stale rate: converted at a rate older than "
            "SEGWATCH_FX_MAX_AGE_SECONDS.",
        )
    )
    return panels


def holdings_panels(y: int) -> list[Panel]:
    """Issue #14: where and in what the money is held (the figures' holdings, from the alerter)."""
    panels: list[Panel] = [row("Holdings: funds outside the US, instruments, depositories", y)]
    w = WIDTH // 4
    panels.append(
        timeseries(
            "30.7 funds outside the US against 120% of the foreign margin requirement",
            [
                (sel(m.OFFSHORE_FUNDS, segment="30.7"), "funds outside the US"),
                (sel(m.FOREIGN_MARGIN_REQUIREMENT, segment="30.7"), "foreign margin requirement"),
                (sel(m.OFFSHORE_LIMIT, segment="30.7"), "limit (120%)"),
            ],
            GridPos(h=8, w=w, x=0, y=y + 1),
            unit=UNIT_USD,
            description="Reg. 30.7: 30.7 funds outside the US at most the foreign margin requirement plus 20% "
            "(offshore_funds warns above it, or when no requirement is known).",
        )
    )
    panels.append(
        timeseries(
            "30.7 offshore headroom",
            [(sel(m.OFFSHORE_HEADROOM, segment="30.7"), "headroom")],
            GridPos(h=8, w=w, x=w, y=y + 1),
            unit=UNIT_USD,
            zero_line=True,
            description="The 120% limit less the funds outside the US; below zero: over the limit.",
        )
    )
    panels.append(
        timeseries(
            "Holdings by instrument",
            [(f"max by (segment, instrument) ({m.HOLDINGS})", "{{segment}} {{instrument}}")],
            GridPos(h=8, w=w, x=2 * w, y=y + 1),
            unit=UNIT_USD,
            description="What each pool holds, by instrument type (Reg. 1.25 permitted investments, cash, customer "
            "securities, open trade equity; `other` pages as investment_not_permitted).",
        )
    )
    panels.append(
        timeseries(
            "Funds at depositories without an acknowledgment letter",
            [
                (f"max by (segment) ({m.UNACKNOWLEDGED})", "{{segment}} unacknowledged"),
                (f"max by (segment) ({m.UNCLASSIFIED})", "{{segment}} unclassified depositories"),
            ],
            GridPos(h=8, w=WIDTH - 3 * w, x=3 * w, y=y + 1),
            unit=UNIT_USD,
            description="Shown apart and, by default, left out of the funds lines (Reg. 1.20(d), 30.7(d), 22.5); "
            "unclassified: depositories without reference data (a count).",
        )
    )
    return panels


def business_day_panels(y: int) -> list[Panel]:
    """Issue #12: the last close beside the live figures, and the filing of each day's statement (with #14's
    report of investments)."""
    panels: list[Panel] = [row("Business day: the last close beside the live figures, the filing", y)]
    w = WIDTH // len(SEGMENTS)
    for i, seg in enumerate(SEGMENTS.values()):
        panels.append(
            timeseries(
                f"{segment_name(seg)}: live excess and the last close",
                [
                    (sel(m.EXCESS, segment=seg.id), "live excess"),
                    (sel(m.CLOSE_EXCESS, segment=seg.id), f"last close (line {seg.excess})"),
                    (sel(m.CLOSE_VERSION, segment=seg.id), "close version"),
                ],
                GridPos(h=8, w=w, x=i * w, y=y + 1),
                unit=UNIT_USD,
                zero_line=True,
                description="The statement as of the last business day's cut-off (Reg. 1.32) stays fixed while the "
                "live figures move on; an amendment (version 2, 3, …) moves it.",
            )
        )
    filed = value_map({"0": ("not filed", "red"), "1": ("filed", "green"), "2": ("filed late", "orange")})
    panels.append(
        state_timeline(
            "Statement filed, per business day",
            # filed (1), plus 1 when filed after the noon deadline (statement_filed_late): 2
            f"max by (business_day) ({sel(m.STATEMENT_STATUS, status='filed')})"
            f" + on (business_day) max by (business_day) ({m.STATEMENT_FILED_LATE})",
            "{{business_day}}",
            GridPos(h=8, w=WIDTH // 3, x=0, y=y + 9),
            mappings=filed,
            description="CBOT Rule 971.B: filed by noon Chicago the next business day (statement_not_filed warns at "
            "10:00 and pages at noon; statement_filed_late once filed after it). GET /v1/days on the alerter says "
            "by whom (docs/RECORD.md).",
        )
    )
    panels.append(
        state_timeline(
            "Amendment to file, per business day",
            f"max by (business_day) ({m.STATEMENT_AMENDMENT_NEEDED})",
            "{{business_day}}",
            GridPos(h=8, w=WIDTH // 3, x=WIDTH // 3, y=y + 9),
            mappings=value_map({"0": ("none", "green"), "1": ("AMENDMENT to file", "red")}),
            description="A late balance changed a statement already filed or signed off: file the AMENDMENT.",
        )
    )
    panels.append(
        timeseries(
            "Reports of investments not yet submitted",
            [
                (f"count({m.INVESTMENT_REPORT_SUBMITTED} == 0) or vector(0)", "pools not submitted"),
                (
                    f"count(({m.INVESTMENT_REPORT_DEADLINE_AT} <= time()) unless on (report_date, segment) "
                    f"({m.INVESTMENT_REPORT_SUBMITTED} == 1)) or vector(0)",
                    "overdue",
                ),
            ],
            GridPos(h=8, w=WIDTH - 2 * (WIDTH // 3), x=2 * (WIDTH // 3), y=y + 9),
            description="CBOT Rule 971.D: as of the 15th and the last business day of the month, per pool, due by the "
            "close of business of the next business day (investment_report_overdue warns when overdue).",
        )
    )
    return panels


def statement_table(seg: Segment, pos: GridPos) -> tablepanel.Panel:
    """Every line of the segment: code, the form's line number and label (from the catalogue), amount."""
    expr = (
        f'label_replace(label_replace({sel(m.STATEMENT_LINE, segment=seg.id)}, "number", "$1", "line", "(.*)"),'
        ' "label", "$1", "line", "(.*)")'
    )
    numbers = value_map({ln.code: (ln.number, None) for ln in seg.lines})
    labels = value_map({ln.code: (ln.label, None) for ln in seg.lines})
    return (
        tablepanel.Panel()
        .title(f"{segment_name(seg)}: statement lines")
        .datasource(datasource())
        .grid_pos(pos)
        .unit(UNIT_USD)
        .description(f"{seg.title}: every line of the statement, by its code on the form.")
        .targets([target(expr, ref="A", instant=True, table=True)])
        .transformations(
            [
                transformation(
                    "organize",
                    {
                        "excludeByName": {
                            "Time": True,
                            "__name__": True,
                            "instance": True,
                            "job": True,
                            "segment": True,
                        },
                        "indexByName": {"line": 0, "number": 1, "label": 2, "Value": 3},
                    },
                ),
                transformation("sortBy", {"sort": [{"field": "line", "desc": False}]}),
            ]
        )
        .override_by_name("line", column("Code", ("custom.width", 70), ("unit", "string")))
        .override_by_name("number", column("Line", ("mappings", numbers), ("custom.width", 60), ("unit", "string")))
        .override_by_name("label", column("Label", ("mappings", labels), ("unit", "string")))
        .override_by_name("Value", column("USD", ("custom.width", 190)))
    )


def statement_panels(y: int) -> list[Panel]:
    panels: list[Panel] = [row("Statement lines", y)]
    w = WIDTH // len(SEGMENTS)
    for i, seg in enumerate(SEGMENTS.values()):
        panels.append(statement_table(seg, GridPos(h=18, w=w, x=i * w, y=y + 1)))
    return panels


FIRING_MAP: Final = value_map({"0": ("ok", "green"), "1": ("FIRING", "red")})


def alert_panels(y: int) -> list[Panel]:
    return [
        row("Alerts", y),
        state_timeline(
            "Alerter: alert states per segment",
            f"max by (segment, rule) ({m.ALERT_FIRING})",
            "{{segment}} {{rule}}",
            GridPos(h=8, w=12, x=0, y=y + 1),
            mappings=FIRING_MAP,
            description="The alerter's own rules (segwatch.alerts topic): 1 while firing.",
        ),
        state_timeline(
            "Prometheus: segwatch alerts",
            f'max by (alertname, segment, source, job) ({m.ALERTS}{{alertname=~"Segwatch.*"}})',
            "{{alertname}} {{segment}}{{source}}{{job}}",
            GridPos(h=8, w=12, x=12, y=y + 1),
            description="Pending and firing alerts of deploy/prometheus/rules (sent to Alertmanager).",
        ),
    ]


def controls_panels(y: int) -> list[Panel]:
    """Controls before the money moves (issue #13): each segment's 25% window, and the decisions."""
    panels: list[Panel] = [row("Controls: the 25% disbursement window, per segment", y)]
    w = WIDTH // len(SEGMENTS)
    for i, seg in enumerate(SEGMENTS.values()):
        panels.append(
            timeseries(
                f"{segment_name(seg)}: 25% window",
                [
                    (sel(m.WINDOW_BASELINE_EXCESS, segment=seg.id), f"last daily computation (line {seg.excess})"),
                    (sel(m.WINDOW_AGGREGATE, segment=seg.id), "disbursements not for customers since it"),
                    (sel(m.WINDOW_HEADROOM, segment=seg.id, basis="daily"), "headroom to 25% (daily computation)"),
                    (sel(m.WINDOW_HEADROOM, segment=seg.id, basis="live"), "headroom to 25% (live excess)"),
                ],
                GridPos(h=8, w=w, x=i * w, y=y + 1),
                unit=UNIT_USD,
                zero_line=True,
                description="Reg. 1.23(c) / 30.7(g) / 22.17, NFA 16(b), CBOT Rule 971.E. The window runs from one "
                "daily computation to the next. Headroom below zero: the next disbursement not for customers "
                "needs written CEO/CFO pre-approval.",
            )
        )
    panels.append(
        timeseries(
            "Disbursements decided, by outcome",
            [(f"sum by (segment, outcome) (increase({m.DISBURSEMENTS_TOTAL}[1h]))", "{{segment}} {{outcome}}")],
            GridPos(h=6, w=WIDTH // 2, x=0, y=y + 9),
            description="within_limit, needs_approval (pre-approval named, not on record), approved, "
            "violation (pages).",
        )
    )
    residual = sel(m.ALERT_FIRING, rule="residual_interest_undermargined")
    panels.append(
        state_timeline(
            "Residual interest below the undermargined amounts",
            # 0 per segment until the rule first fires (its gauge appears then)
            f"max by (segment) ({residual}) or (max by (segment) ({m.EXCESS}) * 0)",
            "{{segment}}",
            GridPos(h=6, w=WIDTH - WIDTH // 2, x=WIDTH // 2, y=y + 9),
            mappings=value_map({"0": ("covered", "green"), "1": ("BELOW", "red")}),
            description="Reg. 1.22(c): by 6 pm Eastern the next business day the residual interest must cover the "
            "customers' margin deficiencies as of the close (residual_interest_undermargined).",
        )
    )
    return panels


def input_panels(y: int) -> list[Panel]:
    last_seen = f"max by (source) ({m.INGEST_SOURCE_LAST_SEEN})"
    return [
        row("Inputs", y),
        timeseries(
            "Input freshness: time since ingest last accepted an event, per source",
            [
                (f"time() - {last_seen}", "{{source}}"),
                (
                    "segwatch:input_cadence_seconds and on (source) segwatch:input_last_seen_timestamp_seconds:max",
                    "{{source}} cadence",
                ),
            ],
            GridPos(h=8, w=16, x=0, y=y + 1),
            unit="s",
            description="Wall clock since the newest accepted event of each source; a source above its cadence "
            "(deploy/prometheus/rules) raises SegwatchInputStale.",
        ).override_by_regexp(
            ".* cadence", [dm.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]})]
        ),
        tablepanel.Panel()
        .title("Newest business as-of per source (from the figures)")
        .datasource(datasource())
        .grid_pos(GridPos(h=8, w=8, x=16, y=y + 1))
        .unit("dateTimeAsIso")
        .description("The newest as-of time each source has sent, as the figures carry it.")
        .targets([target(f"max by (source) ({m.SOURCE_LAST_UPDATE}) * 1000", instant=True, table=True)])
        .transformations([transformation("organize", {"excludeByName": {"Time": True}})]),
    ]


def pipeline_panels(y: int) -> list[Panel]:
    def latency(title: str, histogram: str, x: int) -> timeseriespanel.Panel:
        return timeseries(
            title,
            [(quantile(q, histogram), f"p{round(q * 100)}") for q in QUANTILES],
            GridPos(h=8, w=8, x=x, y=y + 9),
            unit="s",
        )

    return [
        row("Pipeline", y),
        timeseries(
            "Throughput: events ingested and applied per second",
            [
                (f"sum(rate({sel(m.INGEST_EVENTS_TOTAL, outcome='accepted')}[{RATE}]))", "ingested (accepted)"),
                (f'sum(rate({m.INGEST_EVENTS_TOTAL}{{outcome!="accepted"}}[{RATE}]))', "not accepted"),
                (f"sum(rate({sel(m.CALCULATOR_BALANCES_TOTAL, outcome='applied')}[{RATE}]))", "balances applied"),
                (f"sum(rate({sel(m.CALCULATOR_SETTINGS_TOTAL, outcome='applied')}[{RATE}]))", "settings applied"),
                (f"sum(rate({m.CALCULATOR_FIGURES_TOTAL}[{RATE}]))", "figures published"),
            ],
            GridPos(h=8, w=12, x=0, y=y + 1),
            unit="ops",
        ),
        timeseries(
            "Consumer lag: balance records not yet applied",
            [(f"sum by (topic, partition) ({m.CALCULATOR_CONSUMER_LAG})", "{{topic}} [{{partition}}]")],
            GridPos(h=8, w=6, x=12, y=y + 1),
            unit="short",
        ),
        state_timeline(
            "Services up",
            f'up{{job=~"{JOBS_RE}"}}',
            "{{job}} {{instance}}",
            GridPos(h=8, w=6, x=18, y=y + 1),
            mappings=value_map({"0": ("DOWN", "red"), "1": ("up", "green")}),
        ),
        latency("Latency: event → figures (p50, p95, p99)", m.EVENT_TO_FIGURES, 0),
        latency("Latency: event → alert (p50, p95, p99)", m.EVENT_TO_ALERT, 8),
        timeseries(
            "Processing time p99: ingest request, Kafka publish, calculator batch",
            [
                (quantile(0.99, m.INGEST_REQUEST_SECONDS), "ingest request"),
                (quantile(0.99, m.INGEST_PUBLISH_SECONDS), "ingest publish"),
                (quantile(0.99, m.CALCULATOR_BATCH_SECONDS), "calculator batch"),
            ],
            GridPos(h=8, w=8, x=16, y=y + 9),
            unit="s",
        ),
    ]


class PrometheusAnnotation(dm.AnnotationQuery):
    """An annotation from a PromQL query, with the Prometheus datasource's own fields (the SDK's generic
    AnnotationQuery has `expr` but not these)."""

    def __init__(self, name: str, expr: str, icon_color: str, *, title: str, text: str, tags: str) -> None:
        super().__init__(name=name, datasource=datasource(), enable=True, icon_color=icon_color, expr=expr)
        self.extra = {"step": "15s", "titleFormat": title, "textFormat": text, "tagKeys": tags}

    def to_json(self) -> dict[str, object]:
        return {**super().to_json(), **self.extra}


class Built(Builder[dm.AnnotationQuery]):
    """An annotation made without a builder, handed to the dashboard builder."""

    def __init__(self, model: dm.AnnotationQuery) -> None:
        self.model = model

    def build(self) -> dm.AnnotationQuery:
        return self.model


def dashboard_annotations() -> list[Builder[dm.AnnotationQuery]]:
    builtin = (
        db.AnnotationQuery()
        .built_in(1)
        .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
        .enable(True)
        .hide(True)
        .icon_color("rgba(0, 211, 255, 1)")
        .name("Annotations & Alerts")
        .type("dashboard")
    )
    return [
        builtin,
        Built(
            PrometheusAnnotation(
                "Prometheus alerts firing",
                f'{m.ALERTS}{{alertname=~"Segwatch.*", alertstate="firing"}}',
                "red",
                title="{{alertname}}",
                text="{{severity}} {{segment}}{{source}}{{job}}",
                tags="severity,segment",
            )
        ),
        Built(
            PrometheusAnnotation(
                "Alerter alerts firing",
                f"{m.ALERT_FIRING} == 1",
                "orange",
                title="{{rule}}",
                text="{{segment}}",
                tags="rule,segment",
            )
        ),
    ]


def bottom(panels: Sequence[Panel]) -> int:
    """The first grid row below every panel."""
    positions = [p.build().grid_pos for p in panels]
    return max((pos.y + pos.h for pos in positions if pos is not None), default=0)


def build() -> dict[str, Any]:
    """The dashboard model, as Grafana stores it."""
    panels: list[Panel] = []
    for make in (
        now_panels,
        segregation_panels,
        currency_panels,
        holdings_panels,
        business_day_panels,
        statement_panels,
        alert_panels,
        controls_panels,
        input_panels,
        pipeline_panels,
    ):
        panels.extend(make(bottom(panels)))
    dashboard = (
        db.Dashboard(TITLE)
        .uid(DASHBOARD_UID)
        .tags(["segwatch"])
        .timezone("browser")
        .refresh("5s")
        .description(
            "Customer funds segregation (Daily Seg FOCUS II lines, live) and the segwatch pipeline. "
            "Generated by `python -m segwatch.ops.dashboard` from the line catalogue: do not edit by hand."
        )
        .time("now-3h", "now")
        .annotations(dashboard_annotations())
        .readonly()
        .build()
    )
    # Every panel placed by its own GridPos (the SDK's with_panel would re-place one at x=0, y=0), numbered 1..n.
    dashboard.panels = [p.build() for p in panels]
    for number, panel in enumerate(dashboard.panels, start=1):
        panel.id_val = number
    model: dict[str, Any] = json.loads(json.dumps(dashboard, cls=JSONEncoder))
    return model


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def queries(model: dict[str, Any]) -> list[Query]:
    """Every PromQL query of the dashboard: each panel target, then each Prometheus annotation."""
    out: list[Query] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            walk(panel.get("panels") or [])
            for t in panel.get("targets") or []:
                out.append(Query(panel["title"], t["refId"], t["expr"], bool(t.get("instant"))))

    walk(model["panels"])
    for ann in model["annotations"]["list"]:
        if ann.get("expr"):
            out.append(Query(f"annotation: {ann['name']}", "", ann["expr"], False))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m segwatch.ops.dashboard",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"the JSON file (default {OUTPUT})")
    parser.add_argument("--check", action="store_true", help="do not write: exit 1 if the file differs")
    args = parser.parse_args(argv)
    text = render()
    path: Path = args.output
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"{path} is out of date: run python -m segwatch.ops.dashboard", file=sys.stderr)
            return 1
        print(f"{path} is up to date")
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path} ({len(queries(build()))} queries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
