"""Raw SQL over SQLite implementing the repository Protocols of usecases.ports."""
