-- Names created on first use take slot numbers never used before, above the 64 slots that
-- Coalition's clients manage, so clearing a slot never hands its number (still held by
-- the jobs that had it) to an unrelated new name.
CREATE SEQUENCE affinity_auto_ids;
SELECT setval('affinity_auto_ids', greatest((SELECT max(id) FROM affinities), 64));
