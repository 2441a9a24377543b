-- Replay protection: the device time of the last LOGIN accepted for each terminal. A LOGIN whose device
-- time is not later is refused (a captured LOGIN is worth nothing once used); NULL lets the next LOGIN
-- in whatever its time (a new terminal, or one unblocked by `wuhai-iot terminals allow-login`).
ALTER TABLE terminal_sessions ADD COLUMN login_device_time INTEGER;
