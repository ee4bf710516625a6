"""End-to-end tests run the real services as processes against the real broker (never skipped)."""

from tests.integration.conftest import kafka_bootstrap

__all__ = ["kafka_bootstrap"]
