-- Dedupe keys are purged by age (AggregateStore.purge_dedupe_keys, hourly): find them by it.
CREATE INDEX processed_event_age ON processed_event (processed_at);
