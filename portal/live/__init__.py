"""Live panels over Server-Sent Events, fanned out across processes by PostgreSQL LISTEN/NOTIFY."""
