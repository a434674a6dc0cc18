-- Issue 18: erasure on request and the retention job find their rows by index.

-- Erasure and resident retention look surveys and kept case residents up by pseudonym (the
-- older index only covers surveys that still hold contact details).
CREATE INDEX surveys_by_resident ON surveys (resident_ref) WHERE resident_ref IS NOT NULL;
CREATE INDEX case_residents_by_resident ON case_residents (resident_ref);

-- Retention: survey rows by closing time, remarks by answering time, per municipality.
CREATE INDEX surveys_age ON surveys (municipality, closed_at);
CREATE INDEX surveys_remarks_age ON surveys (municipality, answered_at) WHERE comment IS NOT NULL;
