-- The connector's queue: each notification the Notificaties API delivered, stored before the
-- callback answers 2xx. The dedupe key makes a repeated delivery (at least once, retried for
-- about a day) a no-op. Only references are kept (urls, kanaal, actie), never the kenmerken.
CREATE TABLE notifications (
    id              bigserial PRIMARY KEY,
    municipality    text        NOT NULL,
    dedupe_key      text        NOT NULL,
    kanaal          text        NOT NULL,
    resource        text        NOT NULL,
    actie           text        NOT NULL,
    hoofd_object    text        NOT NULL,
    resource_url    text        NOT NULL,
    aanmaakdatum    timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    state           text        NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'done', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    finished_at     timestamptz,
    UNIQUE (municipality, dedupe_key)
);

-- What the worker looks for: pending notifications that are due, oldest change first.
CREATE INDEX notifications_due ON notifications (next_attempt_at, aanmaakdatum)
    WHERE state = 'pending';
CREATE INDEX notifications_finished ON notifications (finished_at) WHERE state <> 'pending';

-- What the connector knew of each zaak after its last reconciliation (previous status,
-- opschorting, verlenging...): a change shows only by comparing with it.
CREATE TABLE zaak_states (
    municipality text        NOT NULL,
    zaak_url     text        NOT NULL,
    state        jsonb       NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (municipality, zaak_url)
);
