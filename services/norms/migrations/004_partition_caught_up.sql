-- Whether the consumer has read a partition to its end (its position reached the partition's
-- high watermark) and since when, as last reported by the replica that consumes it. Only a
-- partition that is caught up, and has been without records for the idle time, stops holding
-- the watermark back: one that is merely absent from the recent batches (a replay, a backlog, a
-- slow consumer) still has unread events. NULL: lagging, or not reported yet.
ALTER TABLE partition_progress ADD COLUMN caught_up_since timestamptz;
