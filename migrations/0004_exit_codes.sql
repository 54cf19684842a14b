-- Exit codes as reported: Windows crash codes such as 0xC0000005 do not fit 32 bits.
ALTER TABLE events ALTER COLUMN exit_code TYPE bigint;
