"""Adapters of the norms service: PostgreSQL, Kafka, outbox relay."""
