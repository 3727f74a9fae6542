"""The patient app's files at /app/: an installable web app (manifest, service worker) in English
and Simplified Chinese. Static and public (no patient data: that comes from /api/patient/*, which
needs the patient's session). Only the files listed are served: no path from the request reaches
the file system.
"""

from __future__ import annotations

from importlib.resources import files

from aiohttp import web

FILES = {
    "": ("index.html", "text/html"),
    "app.js": ("app.js", "text/javascript"),
    "words.js": ("words.js", "text/javascript"),
    "app.css": ("app.css", "text/css"),
    "sw.js": ("sw.js", "text/javascript"),
    "manifest.webmanifest": ("manifest.webmanifest", "application/manifest+json"),
    "icon.svg": ("icon.svg", "image/svg+xml"),
}
FOLDER = files("vigil.web").joinpath("patient_app")
# The app's pages may load only their own scripts and styles, and talk only to this server.
POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
          "worker-src 'self'; manifest-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def add_patient_app_routes(app: web.Application) -> None:
    loaded = {name: FOLDER.joinpath(file).read_bytes() for name, (file, _kind) in FILES.items()}

    async def app_root(_request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/app/")

    async def app_file(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in FILES:
            raise web.HTTPNotFound(text="no such file")
        headers = {"Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff",
                   "Cache-Control": "no-cache", "Referrer-Policy": "no-referrer"}
        if name == "sw.js":
            headers["Service-Worker-Allowed"] = "/app/"
        return web.Response(body=loaded[name], content_type=FILES[name][1], charset="utf-8", headers=headers)

    app.router.add_get("/app", app_root)
    app.router.add_get("/app/{name:[a-z0-9.]*}", app_file)
