"""Media engines behind the media ports: the aiortc SFU (and, later, live ingest)."""
