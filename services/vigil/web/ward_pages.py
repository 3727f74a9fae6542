"""The ward workspace's pages and their static files (scripts, styles, the vendored uPlot).

Pages and files hold no patient data, so they are public (like the login page): the data comes
from the API once signed in. Only the files shipped in `vigil/web/static` are served, from a list
made at start (no path from the request ever reaches the file system). Every page goes out with
a Content-Security-Policy that allows scripts and styles from Vigil itself only: the pages have
no inline script or style, and nothing is loaded from a CDN.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

from aiohttp import web

STATIC_PREFIX = "/static/"
PAGES = {"/ward": "ward.html", "/ward/patient": "patient.html"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".txt": "text/plain", "": "text/plain"}
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-cache"}


def _walk(folder: Traversable, prefix: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for entry in folder.iterdir():
        if entry.is_dir():
            found.update(_walk(entry, f"{prefix}{entry.name}/"))
        elif entry.name.rsplit(".", 1)[-1] in ("js", "css") or entry.name == "LICENSE":
            found[f"{prefix}{entry.name}"] = entry.read_bytes()
    return found


def static_files() -> dict[str, bytes]:
    """URL path -> bytes of every shipped static file."""
    return _walk(files("vigil.web").joinpath("static"), STATIC_PREFIX)


def _type(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return TYPES.get("." + name.rsplit(".", 1)[-1] if "." in name else "", "application/octet-stream")


def add_ward_pages(app: web.Application) -> None:
    """GET /ward (the overview), /ward/patient?id= (a patient) and /static/… (their files)."""
    shipped = static_files()
    pages = {path: files("vigil.web").joinpath(name).read_bytes() for path, name in PAGES.items()}

    async def page(request: web.Request) -> web.Response:
        return web.Response(body=pages[request.path], content_type="text/html", charset="utf-8", headers=HEADERS)

    async def static(request: web.Request) -> web.Response:
        body = shipped.get(request.path)
        if body is None:
            raise web.HTTPNotFound(text="no such file")
        return web.Response(body=body, content_type=_type(request.path), headers=HEADERS)

    for path in PAGES:
        app.router.add_get(path, page)
    app.router.add_get(STATIC_PREFIX + "{name:.+}", static)
