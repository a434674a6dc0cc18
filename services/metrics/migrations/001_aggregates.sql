-- Durable aggregates of the metrics service. Every consumed batch changes these tables in ONE
-- transaction, together with the dedupe keys of its events: an event counts once, whatever
-- restarts, rebalances or replays happen. /metrics is rendered from this state.

-- Events already applied, keyed by CloudEvents source + id (Envelope.dedupe_key).
CREATE TABLE processed_event (
    dedupe_key   text PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);

-- Counter and histogram samples, keyed by metric and label values (in definition order).
-- sample: '' for a counter; 'sum', 'count' or a bucket's upper bound ('30', '+Inf') for a
-- histogram, where buckets hold per-bucket (not cumulative) counts.
CREATE TABLE series (
    metric text NOT NULL,
    labels text[] NOT NULL,
    sample text NOT NULL,
    value  double precision NOT NULL,
    PRIMARY KEY (metric, labels, sample)
);

-- Per local day facts for the period report (computed from here, not from Prometheus).
CREATE TABLE daily_fact (
    municipality text NOT NULL,
    day          date NOT NULL,
    fact         text NOT NULL,
    dims         text[] NOT NULL,
    value        double precision NOT NULL,
    PRIMARY KEY (municipality, day, fact, dims)
);

-- Cases open now: the "open now" gauge is a count over this table, so it is right after a restart.
CREATE TABLE open_case (
    municipality text NOT NULL,
    case_id      text NOT NULL,
    case_type    text NOT NULL,
    opened_at    timestamptz NOT NULL,
    PRIMARY KEY (municipality, case_id)
);
CREATE INDEX open_case_by_type ON open_case (municipality, case_type);

-- Norm clocks running now (started, not yet met, missed or cancelled).
CREATE TABLE running_clock (
    municipality text NOT NULL,
    clock_id     text NOT NULL,
    norm         text NOT NULL,
    case_type    text NOT NULL,
    started_at   timestamptz NOT NULL,
    due_at       timestamptz NOT NULL,
    warned       boolean NOT NULL DEFAULT false,
    breached     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (municipality, clock_id)
);
CREATE INDEX running_clock_by_norm ON running_clock (municipality, norm);

-- The compliance goal per norm, as the latest norm event (by event time) carried it.
CREATE TABLE norm_goal (
    municipality text NOT NULL,
    norm         text NOT NULL,
    goal         double precision NOT NULL,
    as_of        timestamptz NOT NULL,
    PRIMARY KEY (municipality, norm)
);
