"""Servicepuls event contracts: CloudEvents 1.0 on Kafka, pydantic v2 models, generated schemas."""
