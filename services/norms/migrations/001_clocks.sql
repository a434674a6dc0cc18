-- State of the norms service. Every consumed batch changes these tables in ONE transaction,
-- together with the dedupe keys of its events and the outcome events it emits (outbox).

-- Input events already applied, keyed by CloudEvents source + id (Envelope.dedupe_key).
CREATE TABLE processed_event (
    dedupe_key   text PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);

-- One clock per municipality, norm and subject (case or contact). `transitions` holds every
-- input event that touched it (event time, kind, cause, extension, reason, context): the clock
-- is recomputed from them, so out-of-order arrival does not matter. `taken` lists the
-- decisions already emitted (started, warning:75%, breached, final).
CREATE TABLE clock (
    clock_id         text PRIMARY KEY,
    municipality     text NOT NULL,
    norm_id          text NOT NULL,
    subject_id       text NOT NULL,
    transitions      jsonb NOT NULL DEFAULT '[]',
    taken            text NOT NULL DEFAULT '',
    next_decision_at timestamptz,
    norm_version     text,
    outcome          text,
    started_at       timestamptz,
    due_at           timestamptz,
    stopped_at       timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- The scheduler's work list: clocks with a warning, breach or final outcome still to take.
CREATE INDEX clock_next_decision ON clock (next_decision_at) WHERE next_decision_at IS NOT NULL;
CREATE INDEX clock_outcome ON clock (municipality, norm_id, stopped_at) WHERE outcome IS NOT NULL;

-- Events to publish on the norms topic, written in the same transaction as the state change
-- and relayed to Kafka afterwards (deleted once Kafka acknowledged them).
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    topic         text NOT NULL,
    key           bytea NOT NULL,
    value         bytea NOT NULL,
    header_names  text[] NOT NULL,
    header_values bytea[] NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Final outcomes per norm and local day of the stop: compliance = met / (met + missed).
CREATE TABLE compliance_daily (
    municipality text NOT NULL,
    norm_id      text NOT NULL,
    day          date NOT NULL,
    met          bigint NOT NULL DEFAULT 0,
    missed       bigint NOT NULL DEFAULT 0,
    cancelled    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (municipality, norm_id, day)
);

-- Event-time progress per intake partition: the watermark in "event" clock mode.
CREATE TABLE partition_progress (
    topic          text NOT NULL,
    partition      integer NOT NULL,
    max_event_time timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);
