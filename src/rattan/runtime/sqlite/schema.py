"""The store schema, as numbered migrations. Migration N brings a store from version N-1 to N.

Secondary indexes are few on purpose: every index on a row that changes per node (a state, a
process's current node) is another page written to the WAL on every commit. Lookups by parent
or by current node go through the root id, which operations always know.

Times are stored as REAL seconds since the epoch (UTC); JSON columns hold orjson bytes.
"""

from __future__ import annotations

SCHEMA_VERSION = 7

MIGRATIONS: dict[int, list[str]] = {
    1: [
        "CREATE TABLE IF NOT EXISTS rattan_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        # one row per root run: the validated tree and what run_pipeline was given
        """CREATE TABLE runs (
            root_id TEXT PRIMARY KEY, tree BLOB NOT NULL, root_data BLOB NOT NULL,
            options BLOB NOT NULL, created REAL NOT NULL)""",
        """CREATE TABLE states (
            node_id TEXT PRIMARY KEY, root_id TEXT NOT NULL, parent_id TEXT NOT NULL,
            name TEXT NOT NULL, version TEXT NOT NULL, loop INTEGER NOT NULL,
            inner_loop INTEGER NOT NULL, retry INTEGER NOT NULL, skip INTEGER NOT NULL,
            error_ignored INTEGER NOT NULL, created REAL NOT NULL, started REAL, archived REAL)""",
        "CREATE INDEX states_root ON states(root_id)",
        "CREATE TABLE exec_data (node_id TEXT PRIMARY KEY, inputs BLOB NOT NULL, outputs BLOB NOT NULL)",
        # static inputs replaced by retry_node(data=...)
        "CREATE TABLE data_override (node_id TEXT PRIMARY KEY, inputs BLOB NOT NULL)",
        """CREATE TABLE context (
            pipeline_id TEXT NOT NULL, key TEXT NOT NULL, type INTEGER NOT NULL,
            value BLOB NOT NULL, code TEXT, PRIMARY KEY (pipeline_id, key)) WITHOUT ROWID""",
        # execution tokens; status: ready | sleep | failed | suspended | waiting | done
        """CREATE TABLE processes (
            id INTEGER PRIMARY KEY, root_id TEXT NOT NULL, parent_id INTEGER,
            current TEXT NOT NULL, destination TEXT, stack BLOB NOT NULL, status TEXT NOT NULL,
            pending INTEGER NOT NULL DEFAULT 0, executing TEXT)""",
        "CREATE INDEX processes_root ON processes(root_id, status)",
        """CREATE TABLE schedules (
            id INTEGER PRIMARY KEY, node_id TEXT NOT NULL, version TEXT NOT NULL,
            type INTEGER NOT NULL, process_id INTEGER NOT NULL, times INTEGER NOT NULL DEFAULT 0,
            finished INTEGER NOT NULL DEFAULT 0, expired INTEGER NOT NULL DEFAULT 0, due REAL,
            UNIQUE (node_id, version))""",
        "CREATE INDEX schedules_due ON schedules(due) WHERE due IS NOT NULL",
        # the durable callback inbox
        """CREATE TABLE callbacks (
            id INTEGER PRIMARY KEY, node_id TEXT NOT NULL, version TEXT NOT NULL,
            data BLOB NOT NULL, idem_key TEXT, applied INTEGER NOT NULL DEFAULT 0,
            created REAL NOT NULL)""",
        "CREATE UNIQUE INDEX callbacks_idem ON callbacks(node_id, idem_key) WHERE idem_key IS NOT NULL",
        "CREATE INDEX callbacks_pending ON callbacks(applied, id)",
        """CREATE TABLE histories (
            id INTEGER PRIMARY KEY, node_id TEXT NOT NULL, loop INTEGER NOT NULL,
            retry INTEGER NOT NULL, skip INTEGER NOT NULL, version TEXT NOT NULL,
            started REAL, archived REAL, inputs BLOB NOT NULL, outputs BLOB NOT NULL)""",
        "CREATE INDEX histories_node ON histories(node_id)",
        """CREATE TABLE logs (
            id INTEGER PRIMARY KEY, node_id TEXT NOT NULL, version TEXT NOT NULL,
            line TEXT NOT NULL)""",
        "CREATE INDEX logs_node ON logs(node_id, version)",
        # every node of every run, so operations can find a node that has no state yet
        "CREATE TABLE node_index (node_id TEXT PRIMARY KEY, root_id TEXT NOT NULL) WITHOUT ROWID",
    ],
    2: [
        # the durable event log: every engine event, appended in the transaction of the change;
        # AUTOINCREMENT so ids never go back after retention deletes the newest rows
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT, root_id TEXT NOT NULL, node_id TEXT,
            event_type TEXT NOT NULL, data BLOB NOT NULL, schema INTEGER NOT NULL,
            created REAL NOT NULL)""",
        "CREATE INDEX events_root ON events(root_id, id)",
        # durable timers: node timeouts and automatic retries/skips, fired by the timer thread;
        # each names the node version it was armed for, so a stale one is a no-op
        """CREATE TABLE timers (
            id INTEGER PRIMARY KEY, kind TEXT NOT NULL, node_id TEXT NOT NULL, version TEXT NOT NULL,
            due REAL NOT NULL, payload BLOB NOT NULL)""",
        "CREATE INDEX timers_node ON timers(node_id)",
        # retention deletes a run's callbacks by node
        "CREATE INDEX callbacks_node ON callbacks(node_id)",
    ],
    # rollback (rattan.rollback); written only when pipeline_enable_rollback is on
    3: [
        "CREATE TABLE rollback_tokens (root_id TEXT PRIMARY KEY, tokens BLOB NOT NULL)",
        # one row per finished pass of a service activity: what rollback() is given
        """CREATE TABLE rollback_snapshots (
            id INTEGER PRIMARY KEY, root_id TEXT NOT NULL, node_id TEXT NOT NULL, code TEXT NOT NULL,
            component_version TEXT NOT NULL, node_version TEXT NOT NULL, loop INTEGER NOT NULL,
            inner_loop INTEGER NOT NULL, inputs BLOB NOT NULL, outputs BLOB NOT NULL,
            root_data BLOB NOT NULL, rolled_back INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL)""",
        "CREATE INDEX rollback_snapshots_node ON rollback_snapshots(root_id, node_id)",
        # reservations: roll back automatically when start_node_id finishes
        """CREATE TABLE rollback_plans (
            id INTEGER PRIMARY KEY, root_id TEXT NOT NULL, start_node_id TEXT NOT NULL,
            target_node_id TEXT NOT NULL, mode TEXT NOT NULL, options BLOB NOT NULL,
            expired INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL)""",
        "CREATE INDEX rollback_plans_root ON rollback_plans(root_id, start_node_id)",
        # the rollback of a pipeline in progress (or failed, or done): its walk is durable
        """CREATE TABLE rollback_jobs (
            root_id TEXT PRIMARY KEY, start_node_id TEXT NOT NULL, target_node_id TEXT NOT NULL,
            mode TEXT NOT NULL, process_id INTEGER NOT NULL, walk BLOB NOT NULL, clean BLOB NOT NULL,
            skip BLOB NOT NULL, status TEXT NOT NULL, retry_node TEXT, retry_data BLOB,
            created REAL NOT NULL)""",
    ],
    # the event log without AUTOINCREMENT: its sqlite_sequence row was one more page written by
    # every commit. Ids still never go back: the old high-water mark is kept as an empty
    # placeholder row, and deleting a run keeps one too when it removes the newest row
    # (retention.delete_run).
    4: [
        """CREATE TABLE events_v4 (
            id INTEGER PRIMARY KEY, root_id TEXT NOT NULL, node_id TEXT,
            event_type TEXT NOT NULL, data BLOB NOT NULL, schema INTEGER NOT NULL,
            created REAL NOT NULL)""",
        "INSERT INTO events_v4 SELECT id, root_id, node_id, event_type, data, schema, created FROM events",
        """INSERT INTO events_v4(id, root_id, node_id, event_type, data, schema, created)
            SELECT seq, '', NULL, '', x'5b5d', 1, 0 FROM sqlite_sequence
            WHERE name='events' AND seq > (SELECT coalesce(max(id), 0) FROM events)""",
        "DROP TABLE events",
        "ALTER TABLE events_v4 RENAME TO events",
        "CREATE INDEX events_root ON events(root_id, id)",
    ],
    # many engine processes on one store (leases): every row that stands for pending work names
    # the engine that owns it; an owner renews its lease in ``owners``, and the work of an owner
    # whose lease ran out (or that crashed on this machine) is claimed by another. Rows with no
    # owner (NULL: written by an engine that runs no workers, or live work stored before this
    # migration) are claimed by the first engine that looks; the partial indexes hold only those,
    # so looking is cheap, and depend on the owner column alone, so the writes of a step (which
    # leave the owner as it is) never touch them. Rows that are no work ('' as owner: finished
    # tokens and schedules) are in no index. Tokens get a revision: their writes are
    # compare-and-set like those of states.
    5: [
        """CREATE TABLE owners (
            id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, pid_started TEXT,
            expires REAL NOT NULL)""",
        "ALTER TABLE processes ADD COLUMN owner TEXT",
        "ALTER TABLE processes ADD COLUMN rev INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE schedules ADD COLUMN owner TEXT",
        "ALTER TABLE timers ADD COLUMN owner TEXT",
        "ALTER TABLE rollback_jobs ADD COLUMN owner TEXT",
        "UPDATE processes SET owner='' WHERE status = 'done'",
        "UPDATE schedules SET owner='' WHERE finished = 1 OR expired = 1",
        "CREATE INDEX processes_unowned ON processes(id) WHERE owner IS NULL",
        "CREATE INDEX schedules_unowned ON schedules(id) WHERE owner IS NULL",
        "CREATE INDEX timers_unowned ON timers(id) WHERE owner IS NULL",
    ],
    # listing runs newest first (Engine.list_pipelines) without sorting the whole table
    6: [
        "CREATE INDEX runs_created ON runs(created)",
    ],
    # large values stored once (rattan.model.spill): pieces by the hash of their bytes, and which
    # runs refer to each (a piece goes when its last run is deleted)
    7: [
        "CREATE TABLE value_pieces (hash TEXT PRIMARY KEY, data BLOB NOT NULL)",
        """CREATE TABLE value_refs (root_id TEXT NOT NULL, hash TEXT NOT NULL,
            PRIMARY KEY (root_id, hash)) WITHOUT ROWID""",
        "CREATE INDEX value_refs_hash ON value_refs(hash)",
    ],
}
