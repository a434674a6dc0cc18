-- Cycles cancelled because their clock was stopped before it started (a closure dated before the
-- opening, docs/norms.md "Events dated before the start"): counted apart from other
-- cancellations, and like them neither met nor missed. IF NOT EXISTS: safe if renumbered.
ALTER TABLE compliance_daily ADD COLUMN IF NOT EXISTS data_quality bigint NOT NULL DEFAULT 0;

-- Clocks left running for ever by an input event dated before their start (before this rule
-- the clock ignored such an event: a closure before the opening left the case overdue): wake
-- each once, at its start, so the scheduler applies the rule to it (cancelled,
-- stopped_before_start, with its data-quality report). Clocks without such an event are not
-- touched; finished clocks keep their outcome.
UPDATE clock SET next_decision_at = started_at
WHERE outcome IS NULL
  AND started_at IS NOT NULL
  AND EXISTS (
    SELECT 1 FROM jsonb_array_elements(transitions) AS t(e)
    WHERE (t.e->>0)::bigint < (extract(epoch FROM started_at) * 1000000)::bigint
  );
