-- The outbox keeps a record's CloudEvents headers as one JSON document of [name, value] pairs
-- (values are UTF-8 text) instead of two arrays: writing and reading a row costs a fraction of
-- the array form, and the consumer writes a row for every decision it takes.
ALTER TABLE outbox ADD COLUMN headers bytea;
UPDATE outbox SET headers = convert_to(
    COALESCE(
        (SELECT json_agg(json_build_array(h.name, convert_from(h.value, 'UTF8')) ORDER BY h.i)
         FROM unnest(header_names, header_values) WITH ORDINALITY AS h(name, value, i))::text,
        '[]'),
    'UTF8');
ALTER TABLE outbox DROP COLUMN header_names, DROP COLUMN header_values;
ALTER TABLE outbox ALTER COLUMN headers SET NOT NULL;
