"""Suite-wide settings. Hypothesis runs at least 500 examples per property (the CI profile)."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, settings

# The Kafka fixtures (kafka_bootstrap, kafka_settings, kafka_topics, new_topic) for every test directory.
pytest_plugins = ["tests.support.kafka"]

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT.parent / "shared" / "reference"

settings.register_profile(
    "ci", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=False
)
settings.register_profile("dev", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
