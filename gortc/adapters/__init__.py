"""Drivers behind the ports of usecases.ports: disk, SMTP, Redis, crypto, time."""
