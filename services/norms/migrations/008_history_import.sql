-- When an intake event older than the history horizon (an import of past cases, a channel
-- system delivering a backlog) was last applied from a partition, by wall time. While that is
-- less than the settle time ago, an import is in progress: warnings and breaches dated before
-- the horizon are held, so a clock whose stop arrives within the import raises no alert
-- (docs/norms.md, "Importing history"). NULL: never.
ALTER TABLE partition_progress ADD COLUMN historical_at timestamptz;
