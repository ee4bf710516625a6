"""Every metric name operations use (dashboard, alert rules), as Prometheus scrapes it.

The alerter declares its names as constants (services/alerter/metrics.py); they are re-exported here. Ingest
and the calculator declare theirs inline in their registries, so they are spelled here once, and
tests/ops/test_metric_names.py fails when a name here is not what a service really exports.
"""

from __future__ import annotations

from typing import Final

from services.alerter import day_metrics as alerter_day
from services.alerter import holdings as alerter_holdings
from services.alerter import metrics as alerter
from services.ingest.api import SOURCE_LAST_SEEN

# The alerter: per segment figures, alert states, latency, as-of freshness.
REQUIREMENT: Final = alerter.REQUIREMENT
FUNDS: Final = alerter.FUNDS
EXCESS: Final = alerter.EXCESS
TARGET: Final = alerter.TARGET
EXCESS_OVER_TARGET: Final = alerter.EXCESS_OVER_TARGET
STATEMENT_LINE: Final = alerter.STATEMENT_LINE
MISSING_FX: Final = alerter.MISSING_FX
STALE_FX: Final = alerter.STALE_FX
INCOMPLETE: Final = alerter.INCOMPLETE
EXCESS_BY_CURRENCY: Final = alerter.EXCESS_BY_CURRENCY
FIGURES_TOTAL: Final = alerter.FIGURES_TOTAL
ALERTS_TOTAL: Final = alerter.ALERTS_TOTAL
ALERT_FIRING: Final = alerter.ALERT_FIRING
EVENT_TO_FIGURES: Final = alerter.EVENT_TO_FIGURES
EVENT_TO_ALERT: Final = alerter.EVENT_TO_ALERT
SOURCE_LAST_UPDATE: Final = alerter.SOURCE_LAST_UPDATE
# The alerter's controls (issue #13): decisions by outcome, the 25% window per segment.
DISBURSEMENTS_TOTAL: Final = alerter.DISBURSEMENTS_TOTAL
WINDOW_BASELINE_EXCESS: Final = alerter.WINDOW_BASELINE_EXCESS
WINDOW_AGGREGATE: Final = alerter.WINDOW_AGGREGATE
WINDOW_LIMIT: Final = alerter.WINDOW_LIMIT
WINDOW_HEADROOM: Final = alerter.WINDOW_HEADROOM

# Where and in what the money is held (issue #14; services/alerter/holdings.py).
OFFSHORE_FUNDS: Final = alerter_holdings.OFFSHORE_FUNDS  # label: segment (30.7)
FOREIGN_MARGIN_REQUIREMENT: Final = alerter_holdings.FOREIGN_MARGIN_REQUIREMENT
OFFSHORE_LIMIT: Final = alerter_holdings.OFFSHORE_LIMIT
OFFSHORE_HEADROOM: Final = alerter_holdings.OFFSHORE_HEADROOM
HOLDINGS: Final = alerter_holdings.HOLDINGS  # labels: segment, instrument
UNACKNOWLEDGED: Final = alerter_holdings.UNACKNOWLEDGED
UNCLASSIFIED: Final = alerter_holdings.UNCLASSIFIED
AVERAGE_MATURITY: Final = alerter_holdings.AVERAGE_MATURITY

# The business day's record (issue #12) and the report of investments (issue #14): services/alerter/day_metrics.py.
STATEMENT_STATUS: Final = alerter_day.STATEMENT_STATUS  # labels: business_day, status (computed/approved/filed)
STATEMENT_VERSION: Final = alerter_day.STATEMENT_VERSION  # labels: business_day, segment
STATEMENT_FILED_VERSION: Final = alerter_day.STATEMENT_FILED_VERSION  # label: business_day
STATEMENT_AMENDMENT_NEEDED: Final = alerter_day.STATEMENT_AMENDMENT_NEEDED
STATEMENT_FILED_LATE: Final = alerter_day.STATEMENT_FILED_LATE
STATEMENT_WARNING_AT: Final = alerter_day.STATEMENT_WARNING_AT
STATEMENT_DEADLINE_AT: Final = alerter_day.STATEMENT_DEADLINE_AT
LAST_CLOSE: Final = alerter_day.LAST_CLOSE
CLOSE_REQUIREMENT: Final = alerter_day.CLOSE_REQUIREMENT  # label: segment
CLOSE_FUNDS: Final = alerter_day.CLOSE_FUNDS
CLOSE_EXCESS: Final = alerter_day.CLOSE_EXCESS
CLOSE_VERSION: Final = alerter_day.CLOSE_VERSION
INVESTMENT_REPORT_SUBMITTED: Final = alerter_day.REPORT_SUBMITTED  # labels: report_date, segment
INVESTMENT_REPORT_DEADLINE_AT: Final = alerter_day.REPORT_DEADLINE_AT

# Ingest (services/ingest/api.py, IngestMetrics).
INGEST_EVENTS_TOTAL: Final = "segwatch_ingest_events_total"  # label: outcome
INGEST_REQUEST_SECONDS: Final = "segwatch_ingest_request_seconds"
INGEST_PUBLISH_SECONDS: Final = "segwatch_ingest_publish_seconds"
INGEST_SOURCE_LAST_SEEN: Final = SOURCE_LAST_SEEN  # label: source; wall-clock time of the last accepted event

# The calculator (services/calculator/app.py, Metrics).
CALCULATOR_BALANCES_TOTAL: Final = "segwatch_calculator_balances_total"  # label: outcome
CALCULATOR_SETTINGS_TOTAL: Final = "segwatch_calculator_settings_total"  # label: outcome
CALCULATOR_FIGURES_TOTAL: Final = "segwatch_calculator_figures_total"  # label: segment
CALCULATOR_BATCH_SECONDS: Final = "segwatch_calculator_batch_seconds"
CALCULATOR_CONSUMER_LAG: Final = "segwatch_calculator_consumer_lag"  # labels: topic, partition

# Prometheus itself.
UP: Final = "up"
ALERTS: Final = "ALERTS"

# Scrape jobs (deploy/prometheus/prometheus*.yml): the rules and the dashboard select on them.
JOBS: Final[dict[str, str]] = {
    "ingest": "segwatch-ingest",
    "calculator": "segwatch-calculator",
    "alerter": "segwatch-alerter",
}
