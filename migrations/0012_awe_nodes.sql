-- The AWE face's node store (docs/awe.md, "The node store"): Shock's nodes as AWE's worker
-- speaks to them, the outputs it uploads and the inputs it downloads by URL. The bytes
-- live here in chunks, so an upload is written as it arrives and a download read as it
-- leaves: no request ever holds a whole file in memory.

CREATE TABLE awe_nodes (
    id uuid PRIMARY KEY,
    -- the job whose output this is: deleting the job takes its nodes (NULL: a node made
    -- by a client through POST /node, owned by no job)
    job_id bigint REFERENCES jobs (id) ON DELETE CASCADE,
    type text NOT NULL DEFAULT 'basic' CHECK (type IN ('basic', 'parts')),
    -- the parts a parts node waits for; its file is parts 1..count in order
    parts_count integer CHECK (parts_count >= 1),
    -- the file, once uploaded whole or once every part is in (file_created not NULL)
    file_name text NOT NULL DEFAULT '',
    size bigint NOT NULL DEFAULT 0,
    md5 text NOT NULL DEFAULT '',
    file_created timestamptz,
    attributes jsonb,
    created_on timestamptz NOT NULL DEFAULT now(),
    last_modified timestamptz NOT NULL DEFAULT now(),
    CHECK ((type = 'parts') = (parts_count IS NOT NULL))
);
CREATE INDEX awe_nodes_job ON awe_nodes (job_id) WHERE job_id IS NOT NULL;

-- the parts of a parts node uploaded so far, each with its own size and md5
CREATE TABLE awe_node_parts (
    node uuid NOT NULL REFERENCES awe_nodes (id) ON DELETE CASCADE,
    part integer NOT NULL CHECK (part >= 1),
    size bigint NOT NULL,
    md5 text NOT NULL,
    PRIMARY KEY (node, part)
);

-- the bytes: part 0 is a basic node's file, part n >= 1 part n of a parts node, each cut
-- in chunks of 1 MiB numbered from 0; the file reads back in (part, seq) order
CREATE TABLE awe_node_chunks (
    node uuid NOT NULL REFERENCES awe_nodes (id) ON DELETE CASCADE,
    part integer NOT NULL CHECK (part >= 0),
    seq integer NOT NULL CHECK (seq >= 0),
    data bytea NOT NULL,
    PRIMARY KEY (node, part, seq)
);
-- the chunks are already compressed or incompressible more often than not (outputs are
-- often gzip), and are read whole: keep them out of line, uncompressed
ALTER TABLE awe_node_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
