"""The ward console: one static page on the incident API and the console's push stream."""

from __future__ import annotations

from importlib.resources import files

from aiohttp import web

CONSOLE_HTML = files("vigil.web").joinpath("console.html").read_text(encoding="utf-8")


def add_console_route(app: web.Application) -> None:
    async def console(_request: web.Request) -> web.Response:
        return web.Response(text=CONSOLE_HTML, content_type="text/html", charset="utf-8")

    app.router.add_get("/console", console)
