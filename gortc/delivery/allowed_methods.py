"""The ``Allow`` header of a 405: the methods of the one resource the path names.

aiohttp lists every method of every resource whose template matches the path,
so ``OPTIONS /api/v1/files/search`` would advertise the DELETE and PATCH of
``/api/v1/files/{file_id}``. The resource a client means, and the one the
OpenAPI document describes under that path, is the most literal match: the
template with the fewest ``{variables}``.
"""

from __future__ import annotations

from aiohttp import web


def allowed_methods(router: web.UrlDispatcher, path: str) -> list[str] | None:
    """The sorted methods of the most literal template matching ``path`` (of
    every resource with that template: aiohttp makes one per registration),
    or None when no plain or templated resource matches it."""
    methods: dict[str, set[str]] = {}
    for resource in router.resources():
        info = resource.get_info()
        if "path" in info:
            template, matched = info["path"], info["path"] == path
        elif "pattern" in info and "formatter" in info:
            template, matched = info["formatter"], info["pattern"].fullmatch(path) is not None
        else:
            continue  # static folders keep aiohttp's own answer
        if matched:
            methods.setdefault(template, set()).update(route.method for route in resource)
    if not methods:
        return None
    best = min(methods, key=lambda template: template.count("{"))
    return sorted(methods[best])
