-- Cycles cancelled because their clock was stopped before it started (a closure dated before the
-- opening, docs/norms.md "Events dated before the start"): counted apart from other
-- cancellations, and like them neither met nor missed. IF NOT EXISTS: safe if renumbered.
ALTER TABLE compliance_daily ADD COLUMN IF NOT EXISTS data_quality bigint NOT NULL DEFAULT 0;
