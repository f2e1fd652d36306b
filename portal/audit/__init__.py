"""The audit trail: every write appends a hash-chained event (see queries.record_event)."""
