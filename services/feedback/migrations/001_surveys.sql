-- Feedback's own tables (schema "feedback"; the runner sets the search_path).

-- Input events already applied (CloudEvents source + id): a redelivery has no second effect.
CREATE TABLE processed_events (
    dedupe_key   text PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX processed_events_age ON processed_events (processed_at);

-- The resident of an open case, kept (sealed, as intake sent it) to survey them at closing
-- when case.closed does not repeat it. Deleted at closing, or after the retention period.
CREATE TABLE case_residents (
    municipality   text NOT NULL,
    case_id        text NOT NULL,
    resident_ref   text NOT NULL,
    sealed_contact text,
    reachable_by   text[] NOT NULL DEFAULT '{}',
    survey_consent boolean,
    language       text NOT NULL DEFAULT 'nl',
    channel        text,
    party_role     text,
    opened_at      timestamptz NOT NULL,
    PRIMARY KEY (municipality, case_id)
);
CREATE INDEX case_residents_age ON case_residents (opened_at);

-- What is known of a resident, by pseudonym only: throttling and opt-out.
CREATE TABLE residents (
    resident_ref     text PRIMARY KEY,
    last_surveyed_at timestamptz,
    opted_out_at     timestamptz
);

-- One row per surveyed subject (case or contact), also when the decision was not to survey:
-- "one survey per case" is this table's unique key.
CREATE TABLE surveys (
    survey_id        uuid PRIMARY KEY,
    municipality     text NOT NULL,
    subject_kind     text NOT NULL,
    subject_id       text NOT NULL,
    case_type        text,
    channel          text,
    party_role       text,
    resident_ref     text,
    language         text NOT NULL DEFAULT 'nl',
    -- suppressed | scheduled | sending | sent | answered | expired | failed | cancelled
    status           text NOT NULL,
    suppression      text,
    delivery_channel text,
    sealed_contact   text,          -- erased when answered, expired, failed or cancelled
    decided_at       timestamptz NOT NULL,
    closed_at        timestamptz NOT NULL,
    send_at          timestamptz,
    next_attempt_at  timestamptz,
    attempts         integer NOT NULL DEFAULT 0,
    lease_until      timestamptz,
    last_error       text,
    sent_at          timestamptz,
    expires_at       timestamptz,
    list_date        date,          -- letter/phone list surveys: the day's list they are on
    answered_at      timestamptz,
    answered_via     text,
    score            smallint CHECK (score BETWEEN 1 AND 10),
    comment          text CHECK (length(comment) <= 2000),
    may_contact      boolean,
    supplemented_at  timestamptz,
    low_score        smallint NOT NULL DEFAULT 5,
    UNIQUE (municipality, subject_kind, subject_id)
);
CREATE INDEX surveys_due ON surveys (next_attempt_at) WHERE status = 'scheduled';
CREATE INDEX surveys_sending ON surveys (lease_until) WHERE status = 'sending';
CREATE INDEX surveys_open ON surveys (expires_at) WHERE status = 'sent';
CREATE INDEX surveys_list ON surveys (municipality, list_date) WHERE list_date IS NOT NULL;
CREATE INDEX surveys_resident ON surveys (resident_ref) WHERE sealed_contact IS NOT NULL;

-- Events to publish, written in the same transaction as the state change (outbox).
CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    event      jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

-- The service clock in event-time mode: the latest event time seen on the intake topic.
CREATE TABLE event_clock (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    watermark timestamptz NOT NULL
);
