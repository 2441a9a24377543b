-- The database's size and its disk's free space, sampled while serving (storage/disk.py): the 7-day
-- growth and the days left at that rate come from here. Samples older than 35 days are deleted.
CREATE TABLE disk_samples (
    at REAL PRIMARY KEY,              -- UTC seconds
    database_bytes INTEGER NOT NULL,  -- the database file with its WAL
    free_bytes INTEGER NOT NULL,      -- free for this user on the database's file system
    total_bytes INTEGER NOT NULL
);
