-- No query reads clocks by outcome (compliance is counted in compliance_daily), and every clock
-- that reaches its final outcome paid for an entry in this index.
DROP INDEX IF EXISTS clock_outcome;
