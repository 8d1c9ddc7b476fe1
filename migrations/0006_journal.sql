-- The write journal's checkpoints (engine/journal.py): for each engine run, the highest journal
-- entry applied, written in the same transaction as the entries. A restarted engine replays its
-- journal and skips what is at or below its run's checkpoint, so nothing lands twice.
CREATE TABLE write_journal_checkpoints (
    run text PRIMARY KEY,              -- the engine run that journalled the entries
    seq bigint NOT NULL,               -- its highest entry applied (or set aside as refused)
    at  timestamptz NOT NULL
);
