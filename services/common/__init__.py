"""What every Servicepuls service shares: settings, logging, migrations, Kafka, privacy."""
