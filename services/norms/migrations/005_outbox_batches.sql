-- One outbox row per transaction instead of one per outcome event: `records` holds all the
-- transaction's records, packed by the service (services/norms/adapters/outbox.py, `format`
-- is the packing's version), `count` says how many. A replay inserted and deleted two rows
-- per intake event, and their index entries and dead rows cost PostgreSQL more than the rest
-- of the outcome's work. Rows already waiting keep their one record in key, value, headers.
ALTER TABLE outbox
    ADD COLUMN records bytea,
    ADD COLUMN format smallint,
    ADD COLUMN count integer NOT NULL DEFAULT 1,
    ALTER COLUMN key DROP NOT NULL,
    ALTER COLUMN value DROP NOT NULL,
    ALTER COLUMN headers DROP NOT NULL,
    ADD CONSTRAINT outbox_one_form CHECK (
        (records IS NOT NULL AND format IS NOT NULL)
        OR (key IS NOT NULL AND value IS NOT NULL AND headers IS NOT NULL));
