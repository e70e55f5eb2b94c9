"""Business rules. Nothing here imports aiohttp, aiosqlite, aiortc or redis."""
