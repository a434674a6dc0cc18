-- Whether an open case is open again after a closure (its opened_at is then the reopening's
-- time): only a closure dated before the case's first opening is a data-quality problem
-- (closed_before_opened, docs/metrics.md). Cases open now count as opened, not reopened.
ALTER TABLE open_case ADD COLUMN IF NOT EXISTS reopened boolean NOT NULL DEFAULT false;
