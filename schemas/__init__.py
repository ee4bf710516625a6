"""segwatch's wire schemas (pydantic v2), versioned; JSON Schema exports sit beside this file."""

from schemas.alerts import Alert, AlertFigures
from schemas.errors import first_error, input_errors
from schemas.events import (
    EVENT_ADAPTER,
    EVENT_MODELS,
    AccountBalance,
    Balance,
    DepositoryBalance,
    Event,
    EventBase,
    ForeignRequirement,
    FxRate,
    ManagementTarget,
    Setting,
)
from schemas.records import DeadLetter, Figures

__all__ = [
    "EVENT_ADAPTER",
    "EVENT_MODELS",
    "AccountBalance",
    "Alert",
    "AlertFigures",
    "Balance",
    "DeadLetter",
    "DepositoryBalance",
    "Event",
    "EventBase",
    "Figures",
    "ForeignRequirement",
    "FxRate",
    "ManagementTarget",
    "Setting",
    "first_error",
    "input_errors",
]
