"""The real-time hub: connected clients, topics, fan-out, the backplane."""
