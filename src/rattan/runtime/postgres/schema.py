"""The PostgreSQL schema, as numbered migrations: the SQLite store's logical schema (the same
tables, columns and keys), in PostgreSQL's types. Migration N brings a store from N-1 to N.

Types: JSON values are ``bytea`` (orjson bytes, as the SQLite store keeps them: no parsing on
either side); flags are ``boolean``; times are ``double precision`` seconds since the epoch.

The event log differs on purpose. Under concurrent writers a sequence's order is not commit order,
so an event row is keyed by the transaction that wrote it (``xact``: ``pg_current_xact_id()``,
64 bits, never reused) and its place in that transaction (``part``); see ``waits.py`` for how the
reader turns that into a cursor that never skips a row that commits late.
"""

from __future__ import annotations

SCHEMA_VERSION = 4


def _binary_ids(table: str, *columns: str) -> str:
    """Make ``columns`` of ``table`` compare as bytes (the "C" collation)."""
    return f"ALTER TABLE {table} " + ", ".join(f'ALTER COLUMN {c} TYPE text COLLATE "C"' for c in columns)


META = "CREATE TABLE IF NOT EXISTS rattan_meta (key text PRIMARY KEY, value text NOT NULL)"

MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE runs (
            root_id text PRIMARY KEY, tree bytea NOT NULL, root_data bytea NOT NULL,
            options bytea NOT NULL, created double precision NOT NULL,
            seq bigserial NOT NULL)""",
        """CREATE TABLE states (
            node_id text PRIMARY KEY, root_id text NOT NULL, parent_id text NOT NULL,
            name text NOT NULL, version text NOT NULL, loop integer NOT NULL,
            inner_loop integer NOT NULL, retry integer NOT NULL, skip boolean NOT NULL,
            error_ignored boolean NOT NULL, created double precision NOT NULL,
            started double precision, archived double precision)""",
        "CREATE INDEX states_root ON states(root_id)",
        "CREATE TABLE exec_data (node_id text PRIMARY KEY, inputs bytea NOT NULL, outputs bytea NOT NULL)",
        "CREATE TABLE data_override (node_id text PRIMARY KEY, inputs bytea NOT NULL)",
        """CREATE TABLE context (
            pipeline_id text NOT NULL, key text NOT NULL, type integer NOT NULL,
            value bytea NOT NULL, code text, PRIMARY KEY (pipeline_id, key))""",
        # tokens; rev is the compare-and-set key, owner the engine that holds the work
        """CREATE TABLE processes (
            id bigserial PRIMARY KEY, root_id text NOT NULL, parent_id bigint,
            current text NOT NULL, destination text, stack bytea NOT NULL, status text NOT NULL,
            pending integer NOT NULL DEFAULT 0, executing text, owner text,
            rev integer NOT NULL DEFAULT 0)""",
        "CREATE INDEX processes_root ON processes(root_id, status)",
        # rows with no owner are few (usually none): a lease finds them through these at once
        "CREATE INDEX processes_unowned ON processes(id) WHERE owner IS NULL",
        """CREATE TABLE schedules (
            id bigserial PRIMARY KEY, node_id text NOT NULL, version text NOT NULL,
            type integer NOT NULL, process_id bigint NOT NULL, times integer NOT NULL DEFAULT 0,
            finished boolean NOT NULL DEFAULT false, expired boolean NOT NULL DEFAULT false,
            due double precision, owner text, UNIQUE (node_id, version))""",
        "CREATE INDEX schedules_due ON schedules(due) WHERE due IS NOT NULL",
        "CREATE INDEX schedules_unowned ON schedules(id) WHERE owner IS NULL",
        """CREATE TABLE callbacks (
            id bigserial PRIMARY KEY, node_id text NOT NULL, version text NOT NULL,
            data bytea NOT NULL, idem_key text, applied integer NOT NULL DEFAULT 0,
            created double precision NOT NULL)""",
        "CREATE UNIQUE INDEX callbacks_idem ON callbacks(node_id, idem_key) WHERE idem_key IS NOT NULL",
        "CREATE INDEX callbacks_pending ON callbacks(applied, id)",
        "CREATE INDEX callbacks_node ON callbacks(node_id)",
        """CREATE TABLE histories (
            id bigserial PRIMARY KEY, node_id text NOT NULL, loop integer NOT NULL,
            retry integer NOT NULL, skip boolean NOT NULL, version text NOT NULL,
            started double precision, archived double precision, inputs bytea NOT NULL,
            outputs bytea NOT NULL)""",
        "CREATE INDEX histories_node ON histories(node_id)",
        """CREATE TABLE logs (
            id bigserial PRIMARY KEY, node_id text NOT NULL, version text NOT NULL, line text NOT NULL)""",
        "CREATE INDEX logs_node ON logs(node_id, version)",
        "CREATE TABLE node_index (node_id text PRIMARY KEY, root_id text NOT NULL)",
        "CREATE INDEX node_index_root ON node_index(root_id)",
        # the event log: one row per append (up to EVENTS_PER_ROW events), keyed by its
        # transaction and its place in it (see the module docstring)
        """CREATE TABLE events (
            xact bigint NOT NULL, part integer NOT NULL, root_id text NOT NULL, node_id text,
            event_type text NOT NULL, data bytea NOT NULL, schema integer NOT NULL,
            created double precision NOT NULL, PRIMARY KEY (xact, part))""",
        "CREATE INDEX events_root ON events(root_id, xact, part)",
        """CREATE TABLE timers (
            id bigserial PRIMARY KEY, kind text NOT NULL, node_id text NOT NULL, version text NOT NULL,
            due double precision NOT NULL, payload bytea NOT NULL, owner text)""",
        "CREATE INDEX timers_node ON timers(node_id)",
        "CREATE INDEX timers_unowned ON timers(id) WHERE owner IS NULL",
        """CREATE TABLE owners (
            id text PRIMARY KEY, host text NOT NULL, pid integer NOT NULL, pid_started text,
            expires double precision NOT NULL)""",
        # the rollback extension (rattan.rollback)
        "CREATE TABLE rollback_tokens (root_id text PRIMARY KEY, tokens bytea NOT NULL)",
        """CREATE TABLE rollback_snapshots (
            id bigserial PRIMARY KEY, root_id text NOT NULL, node_id text NOT NULL, code text NOT NULL,
            component_version text NOT NULL, node_version text NOT NULL, loop integer NOT NULL,
            inner_loop integer NOT NULL, inputs bytea NOT NULL, outputs bytea NOT NULL,
            root_data bytea NOT NULL, rolled_back boolean NOT NULL DEFAULT false,
            created double precision NOT NULL)""",
        "CREATE INDEX rollback_snapshots_node ON rollback_snapshots(root_id, node_id)",
        """CREATE TABLE rollback_plans (
            id bigserial PRIMARY KEY, root_id text NOT NULL, start_node_id text NOT NULL,
            target_node_id text NOT NULL, mode text NOT NULL, options bytea NOT NULL,
            expired boolean NOT NULL DEFAULT false, created double precision NOT NULL)""",
        "CREATE INDEX rollback_plans_root ON rollback_plans(root_id, start_node_id)",
        """CREATE TABLE rollback_jobs (
            root_id text PRIMARY KEY, start_node_id text NOT NULL, target_node_id text NOT NULL,
            mode text NOT NULL, process_id bigint NOT NULL, walk bytea NOT NULL, clean bytea NOT NULL,
            skip bytea NOT NULL, status text NOT NULL, retry_node text, retry_data bytea,
            created double precision NOT NULL, owner text)""",
    ],
    # listing runs newest first (Engine.list_pipelines) without sorting the whole table
    2: [
        "CREATE INDEX runs_created ON runs(created, seq)",
    ],
    # large values stored once (rattan.model.spill): pieces by the hash of their bytes, and which
    # runs refer to each (a piece goes when its last run is deleted)
    3: [
        "CREATE TABLE value_pieces (hash text PRIMARY KEY, data bytea NOT NULL)",
        "CREATE TABLE value_refs (root_id text NOT NULL, hash text NOT NULL, PRIMARY KEY (root_id, hash))",
        "CREATE INDEX value_refs_hash ON value_refs(hash)",
    ],
    # ids compare byte by byte: every key the engine looks up is an id (or a hash), and under the
    # database's own collation (en_US.UTF-8, say) each comparison in an index is a strcoll() call;
    # rows and indexes are rebuilt once, under a lock, when a store is migrated
    4: [
        _binary_ids("runs", "root_id"),
        _binary_ids("states", "node_id", "root_id", "parent_id", "version"),
        _binary_ids("exec_data", "node_id"),
        _binary_ids("data_override", "node_id"),
        _binary_ids("context", "pipeline_id", "key"),
        _binary_ids("processes", "root_id", "current", "destination", "owner"),
        _binary_ids("schedules", "node_id", "version", "owner"),
        _binary_ids("callbacks", "node_id", "version", "idem_key"),
        _binary_ids("histories", "node_id"),
        _binary_ids("logs", "node_id", "version"),
        _binary_ids("node_index", "node_id", "root_id"),
        _binary_ids("events", "root_id", "node_id"),
        _binary_ids("timers", "node_id", "owner"),
        _binary_ids("owners", "id"),
        _binary_ids("rollback_tokens", "root_id"),
        _binary_ids("rollback_snapshots", "root_id", "node_id"),
        _binary_ids("rollback_plans", "root_id", "start_node_id"),
        _binary_ids("rollback_jobs", "root_id", "owner"),
        _binary_ids("value_pieces", "hash"),
        _binary_ids("value_refs", "root_id", "hash"),
    ],
}
