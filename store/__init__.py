"""The platform's persistence: SQLite schema and migrations, reads, the single writer, artifacts.

Only :class:`store.writer.StoreWriter` writes, and only inside the store actor (or the CLI while the
platform is stopped, holding the data directory's lock). Readers open their own read-only
connections with :func:`store.connections.open_reader`.
"""
