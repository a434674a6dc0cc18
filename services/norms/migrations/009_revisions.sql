-- A catalog revision (docs/norms.md, "Recompute after a catalog change"): the active catalog
-- version decided the clocks of a period afresh, in one transaction with the clock rows, the
-- compliance counts and the `norm.revised` events it published (outbox). Kept for the audit
-- trail: which version replaced which, when, and which clocks changed outcome.
CREATE TABLE IF NOT EXISTS revision (
    revision_id     uuid PRIMARY KEY,
    municipality    text NOT NULL,
    catalog_version text NOT NULL,
    period_from     date NOT NULL,
    period_to       date NOT NULL,      -- inclusive
    decided_as_of   timestamptz NOT NULL, -- the service's now (wall clock or watermark)
    clocks_examined integer NOT NULL,
    clocks_changed  integer NOT NULL,   -- clocks with a `norm.revised` event
    outcomes_changed integer NOT NULL,  -- cycles whose final outcome changed
    alerts_published integer NOT NULL,  -- warnings and breaches of the new version sent now
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS revision_by_municipality ON revision (municipality, created_at);

-- Each changed cycle of each clock (previous_outcome/outcome NULL: no final outcome), and each
-- running cycle whose due instant or alert state changed (cycle of the running one, outcomes
-- NULL). No personal data: clock and subject ids are case and contact references.
CREATE TABLE IF NOT EXISTS revision_clock (
    revision_id      uuid NOT NULL REFERENCES revision ON DELETE CASCADE,
    clock_id         text NOT NULL,
    cycle            integer NOT NULL,
    norm_id          text NOT NULL,
    previous_version text,
    norm_version     text NOT NULL,
    previous_outcome text,
    outcome          text,
    started_at       timestamptz NOT NULL,
    stopped_at       timestamptz,
    previous_due_at  timestamptz,
    due_at           timestamptz,
    PRIMARY KEY (revision_id, clock_id, cycle)
);
