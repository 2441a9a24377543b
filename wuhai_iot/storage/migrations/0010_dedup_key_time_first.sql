-- The index that finds resends was ordered by terminal: each stored message landed beside its own
-- terminal's previous one, so a batch of N messages from N terminals rewrote N index pages (4 KB each, to
-- the WAL and again at the checkpoint): about 30 us of writer CPU a message instead of 8 (measured with
-- 1,000 terminals). ELink and LMT keys now lead with the device time ('code:seq:time' becomes
-- 'time:code:seq') and the index leads with the key, so a batch lands on the index's last few pages.
DROP INDEX messages_dedup;
UPDATE messages
SET dedup_key = substr(dedup_key, instr(dedup_key, ':') + instr(substr(dedup_key, instr(dedup_key, ':') + 1), ':') + 1)
    || ':' || substr(dedup_key, 1, instr(dedup_key, ':') + instr(substr(dedup_key, instr(dedup_key, ':') + 1), ':') - 1)
WHERE protocol IN ('elink', 'lmt') AND dedup_key LIKE '%:%:%';
CREATE UNIQUE INDEX messages_dedup ON messages (dedup_key, terminal_id, protocol);
