"""aiohttp: handlers per area, the middlewares, the OpenAPI document."""
