-- Issue 14 finding: of a resident's closures inside the survey interval the earliest (by event
-- time) is surveyed, whatever the read order. A survey chosen for a later closure gives way to
-- an earlier one read after it, while unsent; its events then look as if the earlier closure
-- had been read first. For that the row keeps the closing event's key (CloudEvents source +
-- id), from which its decision events take their ids. NULL in rows decided before this
-- migration (their survey.scheduled was published at the decision already).
ALTER TABLE surveys ADD COLUMN decided_by text;
