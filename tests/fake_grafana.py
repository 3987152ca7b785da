"""A local stand-in for the parts of Grafana's HTTP API that ``sitepulse provision`` uses,
with the documented request and response shapes, refusing what Grafana refuses: no or a
wrong token (401), a duplicate uid or folder title (409), a panel or rule reading a
datasource that does not exist, a rule in a missing folder, a contact point of an
unknown type, a policy naming an unknown receiver or mute timing (400); a team name
taken (409); a folder permission entry naming no or two grantees, an unknown team or
role, or a level other than View, Edit, Admin (400). It records every write."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, unquote

from tests.local_http import LocalServer, QuietHandler

# Contact point types Grafana 11 knows (a subset is enough to reject a wrong one).
KNOWN_CONTACT_TYPES = {"email", "webhook", "dingding", "wecom", "slack", "teams", "telegram", "pagerduty", "opsgenie", "discord", "line"}
DEFAULT_POLICY = {"receiver": "grafana-default-email", "group_by": ["grafana_folder", "alertname"]}


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message


class FakeGrafana:
    def __init__(self, token: str) -> None:
        self.token = token
        self.datasources: dict[str, dict] = {}
        self.folders: dict[str, dict] = {}
        self.dashboards: dict[str, dict] = {}
        self.dashboard_folders: dict[str, str] = {}
        self.rules: dict[str, dict] = {}
        self.contact_points: dict[str, dict] = {}
        self.mute_timings: dict[str, dict] = {}
        self.policy: dict = dict(DEFAULT_POLICY)
        self.teams: dict[int, dict] = {}
        # Grafana gives a new folder Editor: Edit and Viewer: View until someone sets its list.
        self.folder_permissions: dict[str, list[dict]] = {}
        self.writes: list[str] = []
        self.bodies: list[object] = []  # what each write sent, in order
        fake = self

        class Handler(QuietHandler):
            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                try:
                    public = self.path.startswith("/api/health")  # Grafana serves health without auth
                    if not public and self.headers.get("Authorization") != f"Bearer {fake.token}":
                        raise ApiError(401, "Unauthorized")
                    path, _, query = self.path.partition("?")
                    status, payload = fake.route(method, path, body, parse_qs(query))
                except ApiError as exc:
                    status, payload = exc.status, {"message": exc.message}
                data = json.dumps(payload, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PUT(self) -> None:
                self._handle("PUT")

        self.local = LocalServer(Handler)
        self.url = self.local.base_url + ""

    def close(self) -> None:
        self.local.close()

    # --- routing -------------------------------------------------------------------

    def route(self, method: str, path: str, body, query: dict[str, list[str]] | None = None):
        query = query or {}
        if method != "GET":
            self.writes.append(f"{method} {path}")
            self.bodies.append(body)
        routes = [
            ("GET", r"/api/health", lambda m: (200, {"database": "ok", "version": "11.6.0"})),
            ("GET", r"/api/folders", lambda m: (200, list(self.folders.values()))),
            ("GET", r"/api/datasources/uid/([^/]+)", lambda m: self._get(self.datasources, m[1], "Data source not found")),
            ("POST", r"/api/datasources", lambda m: self._create_datasource(body)),
            ("PUT", r"/api/datasources/uid/([^/]+)", lambda m: self._update(self.datasources, m[1], body, "Data source not found")),
            ("GET", r"/api/folders/([^/]+)/permissions", lambda m: self._get_permissions(m[1])),
            ("POST", r"/api/folders/([^/]+)/permissions", lambda m: self._set_permissions(m[1], body)),
            ("GET", r"/api/folders/([^/]+)", lambda m: self._get(self.folders, m[1], "folder not found")),
            ("POST", r"/api/folders", lambda m: self._create_folder(body)),
            ("GET", r"/api/teams/search", lambda m: self._search_teams(query)),
            ("POST", r"/api/teams", lambda m: self._create_team(body)),
            ("PUT", r"/api/folders/([^/]+)", lambda m: self._update(self.folders, m[1], self._titled(m[1], body["title"]), "folder not found")),
            ("GET", r"/api/dashboards/uid/([^/]+)", lambda m: (200, {"dashboard": self._get(self.dashboards, m[1], "Dashboard not found")[1], "meta": {"folderUid": self.dashboard_folders.get(m[1], "")}})),
            ("POST", r"/api/dashboards/db", lambda m: self._save_dashboard(body)),
            ("GET", r"/api/v1/provisioning/alert-rules/([^/]+)", lambda m: self._get(self.rules, m[1], "rule not found")),
            ("POST", r"/api/v1/provisioning/alert-rules", lambda m: self._create(self.rules, body.get("uid"), self._checked_rule(body), 201)),
            ("PUT", r"/api/v1/provisioning/alert-rules/([^/]+)", lambda m: self._update(self.rules, m[1], self._checked_rule(body), "rule not found")),
            ("GET", r"/api/v1/provisioning/contact-points", lambda m: (200, list(self.contact_points.values()))),
            ("POST", r"/api/v1/provisioning/contact-points", lambda m: self._create(self.contact_points, body.get("uid"), self._checked_contact(body), 202)),
            ("PUT", r"/api/v1/provisioning/contact-points/([^/]+)", lambda m: self._update(self.contact_points, m[1], self._checked_contact(body), "contact point not found", 202)),
            ("GET", r"/api/v1/provisioning/mute-timings/([^/]+)", lambda m: self._get(self.mute_timings, unquote(m[1]), "mute timing not found")),
            ("POST", r"/api/v1/provisioning/mute-timings", lambda m: self._create(self.mute_timings, body["name"], body, 201)),
            ("PUT", r"/api/v1/provisioning/mute-timings/([^/]+)", lambda m: self._update(self.mute_timings, unquote(m[1]), body, "mute timing not found")),
            ("GET", r"/api/v1/provisioning/policies", lambda m: (200, self.policy)),
            ("PUT", r"/api/v1/provisioning/policies", lambda m: self._set_policy(body)),
        ]
        for verb, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                return handler(match)
        raise ApiError(404, f"no route {method} {path}")

    # --- behaviour -----------------------------------------------------------------

    @staticmethod
    def _get(store: dict, key: str, missing: str):
        if key not in store:
            raise ApiError(404, missing)
        return 200, store[key]

    @staticmethod
    def _create(store: dict, key: str | None, value: dict, status: int = 200):
        if not key:
            raise ApiError(400, "uid required")
        if key in store:
            raise ApiError(409, f"{key} already exists")
        store[key] = value
        return status, value

    @staticmethod
    def _update(store: dict, key: str, value: dict, missing: str, status: int = 200):
        if key not in store:
            raise ApiError(404, missing)
        store[key] = value
        return status, value

    def _create_datasource(self, body: dict):
        if any(ds["name"] == body["name"] for ds in self.datasources.values()):
            raise ApiError(409, "data source with the same name already exists")
        stored = {k: v for k, v in body.items() if k != "secureJsonData"}
        stored["secureJsonFields"] = {k: True for k in body.get("secureJsonData", {})}
        return self._create(self.datasources, body["uid"], stored)

    def _save_dashboard(self, body: dict):
        dashboard, folder = body["dashboard"], body.get("folderUid")
        if folder and folder not in self.folders:
            raise ApiError(400, "folder not found")
        for panel in dashboard.get("panels", []):
            for ref in [panel.get("datasource"), *(t.get("datasource") for t in panel.get("targets", []))]:
                if ref and ref.get("uid") not in self.datasources:
                    raise ApiError(400, f"panel {panel.get('title')!r}: data source {ref.get('uid')} not found")
        if dashboard["uid"] in self.dashboards and not body.get("overwrite"):
            raise ApiError(412, "A dashboard with the same uid already exists")
        self.dashboards[dashboard["uid"]] = dashboard
        self.dashboard_folders[dashboard["uid"]] = folder or ""
        return 200, {"uid": dashboard["uid"], "status": "success", "version": 1}

    def _checked_rule(self, rule: dict) -> dict:
        if rule.get("folderUID") not in self.folders:
            raise ApiError(400, f"folder {rule.get('folderUID')} does not exist")
        for query in rule.get("data", []):
            if query["datasourceUid"] != "__expr__" and query["datasourceUid"] not in self.datasources:
                raise ApiError(400, f"data source {query['datasourceUid']} not found")
        if rule.get("condition") not in {q["refId"] for q in rule.get("data", [])}:
            raise ApiError(400, "condition refers to no query")
        return rule

    def _checked_contact(self, point: dict) -> dict:
        if point.get("type") not in KNOWN_CONTACT_TYPES:
            raise ApiError(400, f"notifier {point.get('type')!r} is not supported")
        return point

    def _set_policy(self, tree: dict):
        names = {cp["name"] for cp in self.contact_points.values()} | {"grafana-default-email"}

        def check(node: dict) -> None:
            if node.get("receiver") and node["receiver"] not in names:
                raise ApiError(400, f"receiver {node['receiver']!r} does not exist")
            for mute in node.get("mute_time_intervals", []):
                if mute not in self.mute_timings:
                    raise ApiError(400, f"mute time interval {mute!r} does not exist")
            for child in node.get("routes", []):
                check(child)

        check(tree)
        self.policy = tree
        return 202, {"message": "policies updated"}

    # --- teams and folder permissions (Grafana's documented HTTP API) ---------------

    def _titled(self, uid: str, title: str) -> dict:
        """A folder's title is unique among the folders beside it (here: all of them)."""
        if any(f["title"] == title and f["uid"] != uid for f in self.folders.values()):
            raise ApiError(409, "a folder with the same name already exists in the current location")
        return {"uid": uid, "title": title}

    def _create_folder(self, body: dict):
        status, folder = self._create(self.folders, body["uid"], self._titled(body["uid"], body["title"]))
        self.folder_permissions[body["uid"]] = [{"role": "Editor", "permission": 2}, {"role": "Viewer", "permission": 1}]
        return status, folder

    def _search_teams(self, query: dict[str, list[str]]):
        name = (query.get("name") or [None])[0]
        per_page = int((query.get("perpage") or ["1000"])[0])
        page = int((query.get("page") or ["1"])[0])
        found = [t for t in sorted(self.teams.values(), key=lambda t: t["id"]) if name is None or t["name"] == name]
        return 200, {"totalCount": len(found), "teams": found[(page - 1) * per_page : page * per_page], "page": page, "perPage": per_page}

    def _create_team(self, body: dict):
        name = (body or {}).get("name")
        if not name:
            raise ApiError(400, "name is required")
        if any(t["name"] == name for t in self.teams.values()):
            raise ApiError(409, "Team name taken")
        team_id = len(self.teams) + 1
        self.teams[team_id] = {"id": team_id, "uid": f"team{team_id}", "orgId": 1, "name": name, "email": body.get("email", ""), "memberCount": 0}
        return 200, {"message": "Team created", "teamId": team_id, "uid": f"team{team_id}"}

    def _get_permissions(self, uid: str):
        if uid not in self.folders:
            raise ApiError(404, "folder not found")
        listed = [{"role": "Admin", "permission": 4, "permissionName": "Admin", "teamId": 0, "userId": 0}]
        for item in self.folder_permissions.get(uid, []):
            listed.append({"role": item.get("role", ""), "teamId": item.get("teamId", 0), "userId": item.get("userId", 0), "permission": item["permission"],
                           "permissionName": {1: "View", 2: "Edit", 4: "Admin"}[item["permission"]], "uid": uid, "inherited": False})
        return 200, listed

    def _set_permissions(self, uid: str, body: dict):
        if uid not in self.folders:
            raise ApiError(404, "folder not found")
        items = (body or {}).get("items")
        if not isinstance(items, list):
            raise ApiError(400, "bad request data")
        for item in items:
            grantees = [key for key in ("role", "teamId", "userId") if item.get(key)]
            if len(grantees) != 1:
                raise ApiError(400, "Permission item must name exactly one of user, team or role")
            if item.get("permission") not in (1, 2, 4):
                raise ApiError(400, "Invalid permission")
            if "role" in item and item["role"] not in ("Viewer", "Editor"):
                raise ApiError(400, f"Invalid role {item['role']!r}")
            if "teamId" in item and item["teamId"] not in self.teams:
                raise ApiError(400, "Team not found")
        self.folder_permissions[uid] = [dict(item) for item in items]
        return 200, {"message": "Folder permissions updated"}

    def may_view(self, folder_uid: str, role: str, teams: set[str]) -> bool:
        """Whether a user with this org role and these teams may open the folder."""
        if role == "Admin":
            return True
        team_ids = {t["id"] for t in self.teams.values() if t["name"] in teams}
        return any(item.get("role") == role or item.get("teamId") in team_ids for item in self.folder_permissions.get(folder_uid, []))
