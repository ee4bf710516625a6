"""Kafka plumbing: the local development broker, the topic declaration and the admin client."""
