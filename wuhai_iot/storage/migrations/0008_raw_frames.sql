-- A stored message keeps the frame exactly as it was received (`wuhai-iot decode` reads it) instead of
-- a JSON copy of its events: the true record of what the terminal sent, and a fifth of the size.
-- Everything derived from the events (latest state, alarms and their status records, visits, fills)
-- has its own tables.
ALTER TABLE messages ADD COLUMN frame BLOB NOT NULL DEFAULT x'';
ALTER TABLE messages DROP COLUMN payload;
