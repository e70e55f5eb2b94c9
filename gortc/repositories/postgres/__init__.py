"""The repositories on PostgreSQL, selected by ``database.url``.

The same Protocols as the SQLite repositories beside this package
(``usecases/ports.py``), written for a server that several gortc instances
write to at once: row locks and constraints are the guarantees, never a
lock inside one process. asyncpg is the driver (see docs/architecture.md
for why); nothing outside this package imports it.
"""
