"""The alerter service: figures → alert state changes (segwatch.core.rules) on Kafka, and Prometheus metrics."""
