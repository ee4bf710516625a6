"""Export a JSON Schema file per model into schemas/, for downstream consumers. `python -m schemas.export`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from schemas.events import EVENT_MODELS
from schemas.records import DeadLetter, Figures

HERE = Path(__file__).resolve().parent


def models() -> tuple[type[BaseModel], ...]:
    from schemas.alerts import Alert
    from schemas.controls import Baseline, DisbursementDecision, DisbursementNotice, WhatIfRequest, WhatIfResponse
    from schemas.statements import DayStatus, InvestmentReportRecord, StatementRecord

    return (
        *EVENT_MODELS,
        Figures,
        DeadLetter,
        Alert,
        StatementRecord,
        DayStatus,
        InvestmentReportRecord,
        Baseline,
        DisbursementDecision,
        DisbursementNotice,
        WhatIfRequest,
        WhatIfResponse,
    )


def file_name(model: type[BaseModel]) -> str:
    kind = model.model_fields["type"].default
    version = model.model_fields["schema_version"].default
    return f"{kind}.v{version}.schema.json"


def render(model: type[BaseModel]) -> str:
    schema = model.model_json_schema(mode="serialization")
    schema["$id"] = f"https://segwatch.dev/schemas/{file_name(model)}"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main() -> int:
    for model in models():
        (HERE / file_name(model)).write_text(render(model))
        print(f"wrote schemas/{file_name(model)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
