-- assets are users' files. A row is PENDING from its declaration until its bytes are
-- stored whole, READY while they can be read, and DELETED from the moment its owner
-- deletes it until the sweeper erases its bytes and the row.
CREATE TABLE assets (
    id              uuid        PRIMARY KEY,
    owner_user_id   uuid        NOT NULL,
    filename        text        NOT NULL,
    content_type    text        NOT NULL,
    -- The declared length; 0 while unknown (a form upload), the real length once READY.
    size_bytes      bigint      NOT NULL CHECK (size_bytes >= 0),
    -- What the storage quota holds for the asset: the declared length, or the most the
    -- owner may upload while the length is unknown.
    reserved_bytes  bigint      NOT NULL CHECK (reserved_bytes >= 0),
    -- The SHA-256 the uploader declared, checked at the end of the upload; NULL for none.
    declared_sha256 text,
    -- The SHA-256 of the stored bytes; NULL until READY.
    sha256          text,
    state           text        NOT NULL CHECK (state IN ('PENDING', 'READY', 'DELETED')),
    metadata        jsonb       NOT NULL DEFAULT '{}',
    -- The blob holding the bytes, written by one upload attempt; NULL until READY. Keys
    -- of other attempts are orphans, which the sweeper erases.
    object_key      text,
    create_time     timestamptz NOT NULL,
    update_time     timestamptz NOT NULL,
    delete_time     timestamptz,
    CHECK ((state = 'READY') = (object_key IS NOT NULL AND sha256 IS NOT NULL) OR state = 'DELETED')
);

-- ListAssets: an owner's live assets, newest first (ids are UUIDv7, in time order); the
-- admin's listing of everyone's walks the primary key.
CREATE INDEX assets_owner_id ON assets (owner_user_id, id DESC) WHERE state <> 'DELETED';
-- The sweeper: pending assets by age, and deleted ones.
CREATE INDEX assets_pending ON assets (create_time) WHERE state = 'PENDING';
CREATE INDEX assets_deleted ON assets (delete_time) WHERE state = 'DELETED';
CREATE UNIQUE INDEX assets_object_key ON assets (object_key) WHERE object_key IS NOT NULL;

-- storage_levels is each owner's storage level: the bytes of their live assets, reserved
-- or stored. Its row is locked while a declaration is weighed against the quota, so that
-- concurrent declarations of one owner cannot together pass it.
CREATE TABLE storage_levels (
    owner_user_id uuid        PRIMARY KEY,
    level_bytes   bigint      NOT NULL CHECK (level_bytes >= 0),
    update_time   timestamptz NOT NULL
);
