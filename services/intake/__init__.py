"""Intake: the door through which channel systems post contact and case events onto Kafka."""
