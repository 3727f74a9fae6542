"""A local stand-in for the part of Grafana's HTTP API that `vigil dashboards publish` uses.

Grafana cannot be installed on these machines, so the grafana-client calls are tested against
this server, which answers like Grafana 11 does: folders, data sources by uid, and
`POST /api/dashboards/db` with versions; 401 without the bearer token, 404 for what is missing,
412 for a dashboard saved without `overwrite` over an existing one.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class GrafanaStandIn(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, token: str = "glsa_test") -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.token = token
        self.folders: dict[str, dict[str, Any]] = {}
        self.datasources: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> "GrafanaStandIn":
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: GrafanaStandIn

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def _route(self, method: str) -> None:
        server = self.server
        with server._lock:
            server.requests.append((method, self.path))
        if self.headers.get("Authorization") != f"Bearer {server.token}":
            self._reply(401, {"message": "Unauthorized"})
            return
        path = self.path.split("?")[0]
        if method == "GET" and path == "/api/health":
            self._reply(200, {"database": "ok", "version": "11.3.0"})
        elif method == "GET" and (m := re.fullmatch(r"/api/folders/([\w-]+)", path)):
            folder = server.folders.get(m.group(1))
            self._reply(200, folder) if folder else self._reply(404, {"message": "folder not found", "status": "not-found"})
        elif method == "POST" and path == "/api/folders":
            body = self._body()
            uid = body.get("uid") or f"f{len(server.folders)}"
            if uid in server.folders:
                self._reply(409, {"message": "a folder with the same uid already exists"})
                return
            server.folders[uid] = {"id": len(server.folders) + 1, "uid": uid, "title": body["title"]}
            self._reply(200, server.folders[uid])
        elif method == "GET" and (m := re.fullmatch(r"/api/datasources/uid/([\w-]+)", path)):
            source = server.datasources.get(m.group(1))
            self._reply(200, source) if source else self._reply(404, {"message": "Data source not found"})
        elif method == "POST" and path == "/api/datasources":
            body = self._body()
            if any(s["name"] == body.get("name") for s in server.datasources.values()):
                self._reply(409, {"message": "data source with the same name already exists"})
                return
            body["id"] = len(server.datasources) + 1
            server.datasources[body["uid"]] = body
            self._reply(200, {"datasource": body, "id": body["id"], "message": "Datasource added", "name": body["name"]})
        elif method == "PUT" and (m := re.fullmatch(r"/api/datasources/uid/([\w-]+)", path)):
            if m.group(1) not in server.datasources:
                self._reply(404, {"message": "Data source not found"})
                return
            body = self._body()
            body["id"] = server.datasources[m.group(1)]["id"]
            server.datasources[m.group(1)] = body
            self._reply(200, {"datasource": body, "id": body["id"], "message": "Datasource updated", "name": body["name"]})
        elif method == "POST" and path == "/api/dashboards/db":
            body = self._body()
            dashboard = body.get("dashboard") or {}
            uid, folder = dashboard.get("uid"), body.get("folderUid")
            if not uid or not dashboard.get("title") or not isinstance(dashboard.get("panels"), list):
                self._reply(400, {"message": "Dashboard title, uid and panels are required"})
                return
            if folder and folder not in server.folders:
                self._reply(400, {"message": "folder not found"})
                return
            previous = server.dashboards.get(uid)
            if previous and not body.get("overwrite"):
                self._reply(412, {"message": "A dashboard with the same uid already exists", "status": "name-exists"})
                return
            version = (previous["version"] + 1) if previous else 1
            server.dashboards[uid] = {"dashboard": dashboard, "folderUid": folder, "version": version}
            slug = re.sub(r"[^a-z0-9]+", "-", dashboard["title"].lower()).strip("-")
            self._reply(200, {"id": len(server.dashboards), "uid": uid, "url": f"/d/{uid}/{slug}", "status": "success",
                              "version": version, "slug": slug})
        else:
            self._reply(404, {"message": "Not found"})

    def do_GET(self) -> None:  # noqa: N802
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._route("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._route("PUT")
