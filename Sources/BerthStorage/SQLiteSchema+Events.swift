extension SQLiteMetadataStore {
    /// The transactional outbox of events (issue #16 §3, docs/events.md): one row per event, written in
    /// the transaction of the change it reports; `routed` once the delivery service made its deliveries
    /// (one per matching target), each with its attempts, next attempt, claim (`claimed_until`, a lease:
    /// several processes never send one delivery at once) and outcome.
    static let eventOutboxSchema = """
        CREATE TABLE event_outbox(
            seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, created_at REAL NOT NULL,
            detail_type TEXT NOT NULL, account_id TEXT NOT NULL, body TEXT NOT NULL, routed INTEGER NOT NULL DEFAULT 0);
        CREATE INDEX event_outbox_unrouted ON event_outbox(seq) WHERE routed = 0;
        CREATE INDEX event_outbox_created ON event_outbox(created_at);
        CREATE TABLE event_deliveries(
            event_seq INTEGER NOT NULL REFERENCES event_outbox(seq) ON DELETE CASCADE, target TEXT NOT NULL,
            state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL, claimed_until REAL,
            last_attempt_at REAL, last_error TEXT, delivered_at REAL,
            PRIMARY KEY(event_seq, target)) WITHOUT ROWID;
        CREATE INDEX event_deliveries_due ON event_deliveries(next_attempt_at) WHERE state = 'pending';
        CREATE INDEX event_deliveries_state ON event_deliveries(state, event_seq);
        """
}
