"""Apply the boards and alerting to a running Grafana through its HTTP API (grafana-client):
datasource, folder, boards, rules, contact points, mute timing and policy tree, each by a
stable uid or name. Every object is read first and written only when it differs, so a
second run changes nothing and says so. A policy tree that sitepulse did not write is left
alone unless the operator asks to replace it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError

from ..streams.contract import RegistryEntry
from .alerting import DUTY_RECEIVER, FOLDER_UID, contact_points, holiday_mute_timing, policy_tree, rules, plain_json
from .access import FolderPlan, folder_plans
from .boards import FOLDER_TITLE, all_boards
from .influxql import DATASOURCE_UID

# Grafana's own default tree: replacing it takes nothing from anyone.
GRAFANA_DEFAULT_RECEIVER = "grafana-default-email"


class PolicyNotOurs(Exception):
    """The Grafana has a policy tree someone else wrote."""


@dataclass
class Outcome:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)


@dataclass(frozen=True)
class DatasourceTarget:
    """Where Grafana reaches InfluxDB (its own view of the network)."""

    url: str
    database: str
    token: str | None = field(default=None, repr=False)  # InfluxDB 2.x read token
    user: str | None = None  # InfluxDB 1.x read-only user
    password: str | None = field(default=None, repr=False)


def datasource_model(target: DatasourceTarget) -> dict:
    """Grafana's datasource, with its own read-only credentials (write-only secure fields:
    Grafana never returns them, so boards and API answers cannot leak them)."""
    model = {
        "uid": DATASOURCE_UID,
        "name": DATASOURCE_UID,
        "type": "influxdb",
        "access": "proxy",
        "url": target.url,
        "jsonData": {"version": "InfluxQL", "dbName": target.database, "httpMode": "POST"},
    }
    if target.token:
        model["jsonData"]["httpHeaderName1"] = "Authorization"
        model["secureJsonData"] = {"httpHeaderValue1": f"Token {target.token}"}
    elif target.user:
        model["user"] = target.user
        model["secureJsonData"] = {"password": target.password or ""}
    return model


def _missing(exc: GrafanaClientError) -> bool:
    return exc.status_code == 404


def _same(wanted: dict, current: dict) -> bool:
    """Every field we set has our value (Grafana adds ids, versions and defaults)."""
    for key, value in wanted.items():
        if key == "secureJsonData":
            continue  # never returned by Grafana
        if isinstance(value, dict) and isinstance(current.get(key), dict):
            if not _same(value, current[key]):
                return False
        elif json.dumps(current.get(key), sort_keys=True, ensure_ascii=False) != json.dumps(value, sort_keys=True, ensure_ascii=False):
            return False
    return True


def _upsert(outcome: Outcome, name: str, get: Callable[[], dict], create: Callable[[], object], update: Callable[[], object], wanted: dict, current_of: Callable[[dict], dict] = lambda c: c) -> None:
    try:
        current = current_of(get())
    except GrafanaClientError as exc:
        if not _missing(exc):
            raise
        create()
        outcome.created.append(name)
        return
    if _same(wanted, current):
        outcome.unchanged.append(name)
    else:
        update()
        outcome.updated.append(name)


def provision(
    api: GrafanaApi,
    datasource: DatasourceTarget,
    registry: Sequence[RegistryEntry] | None,
    robot_kind: str,
    years: Iterable[int],
    replace_policy: bool = False,
    routing_only: bool = False,
) -> Outcome:
    outcome = Outcome()
    if not routing_only:
        if registry is None:
            # Without a registry there are no teams to admit: every board in the one folder,
            # its permissions left as the Grafana admin set them.
            plans = [FolderPlan(FOLDER_UID, FOLDER_TITLE, (), tuple(all_boards()))]
        else:
            plans = folder_plans(registry)
        _apply_boards_and_rules(api, datasource, plans, registry is not None, outcome)
    if registry is not None:
        _apply_routing(api, registry, robot_kind, years, replace_policy, outcome)
    return outcome


def _apply_boards_and_rules(api: GrafanaApi, datasource: DatasourceTarget, plans: Sequence[FolderPlan], with_permissions: bool, outcome: Outcome) -> None:
    ds = datasource_model(datasource)
    _upsert(
        outcome, f"数据源 {DATASOURCE_UID}",
        lambda: api.datasource.get_datasource_by_uid(DATASOURCE_UID),
        lambda: api.datasource.create_datasource(ds),
        lambda: api.datasource.update_datasource_by_uid(DATASOURCE_UID, ds),
        ds,
    )
    team_ids = _teams(api, teams_of_plans(plans), outcome) if with_permissions else None
    for plan in plans:
        _apply_folder(api, plan, team_ids, outcome)
    for rule in rules():
        model = plain_json(rule.build())
        _upsert(
            outcome, f"告警规则 {model['title']}",
            lambda uid=model["uid"]: api.alertingprovisioning.get_alertrule(uid),
            lambda m=model: api.alertingprovisioning.create_alertrule(m),
            lambda m=model: api.alertingprovisioning.update_alertrule(m["uid"], m),
            model,
        )


def teams_of_plans(plans: Sequence[FolderPlan]) -> list[str]:
    return sorted({grant.team for plan in plans for grant in plan.grants if grant.team})


def _teams(api: GrafanaApi, names: Sequence[str], outcome: Outcome) -> dict[str, int]:
    """Team ids by name; missing teams are created (members are added in Grafana or by
    its SSO team sync: people are not sitepulse's to manage)."""
    existing = {team["name"]: team["id"] for team in api.teams.search_teams(perpage=1000)}
    for name in names:
        if name in existing:
            outcome.unchanged.append(f"团队 {name}")
        else:
            existing[name] = api.teams.add_team({"name": name})["teamId"]
            outcome.created.append(f"团队 {name}")
    return existing


def _permission_items(plan: FolderPlan, team_ids: dict[str, int]) -> list[dict]:
    return [
        {"role": grant.role, "permission": grant.permission} if grant.role else {"teamId": team_ids[grant.team], "permission": grant.permission}
        for grant in plan.grants
    ]


def _permission_set(items: Iterable[dict]) -> set[tuple[str, object, int]]:
    """Comparable entries of a folder's list; Grafana also lists the Admin role's implied
    admin and inherited entries, which no POST sets."""
    found = set()
    for item in items:
        if item.get("inherited") or item.get("role") == "Admin":
            continue
        if item.get("role"):
            found.add(("role", item["role"], item["permission"]))
        elif item.get("teamId"):
            found.add(("team", item["teamId"], item["permission"]))
        elif item.get("userId"):
            found.add(("user", item["userId"], item["permission"]))
    return found


def _apply_folder(api: GrafanaApi, plan: FolderPlan, team_ids: dict[str, int] | None, outcome: Outcome) -> None:
    """The folder, its boards and (with team ids) its complete permission list."""
    folder = {"uid": plan.uid, "title": plan.title}
    _upsert(
        outcome, f"文件夹 {plan.title}",
        lambda: api.folder.get_folder(plan.uid),
        lambda: api.folder.create_folder(plan.title, uid=plan.uid),
        lambda: api.folder.update_folder(plan.uid, title=plan.title, overwrite=True),
        folder,
    )
    for board in plan.boards:
        model = plain_json(board.build())
        payload = {"dashboard": model, "folderUid": plan.uid, "overwrite": True, "message": "sitepulse provision"}
        _upsert(
            outcome, f"看板 {model['title']}",
            lambda uid=model["uid"]: api.dashboard.get_dashboard(uid),
            lambda p=payload: api.dashboard.update_dashboard(p),
            lambda p=payload: api.dashboard.update_dashboard(p),
            # A board in another folder is moved: the folder is part of what must match.
            {**model, "folderUid": plan.uid},
            current_of=lambda response: {**response["dashboard"], "folderUid": response.get("meta", {}).get("folderUid")},
        )
    if team_ids is None:
        return
    items = _permission_items(plan, team_ids)
    name = f"文件夹权限 {plan.title}"
    if _permission_set(api.folder.get_folder_permissions(plan.uid)) == _permission_set(items):
        outcome.unchanged.append(name)
    else:
        api.folder.update_folder_permissions(plan.uid, items)
        outcome.updated.append(name)


def _apply_routing(
    api: GrafanaApi, registry: Sequence[RegistryEntry], robot_kind: str, years: Iterable[int], replace_policy: bool, outcome: Outcome
) -> None:
    existing = {cp["uid"]: cp for cp in api.alertingprovisioning.get_contactpoints()}
    for point in contact_points(registry, robot_kind):
        model = plain_json(point.build())
        _upsert(
            outcome, f"联系点 {model['name']}",
            lambda uid=model["uid"]: _found(existing, uid),
            lambda m=model: api.alertingprovisioning.create_contactpoint(m),
            lambda m=model: api.alertingprovisioning.update_contactpoint(m["uid"], m),
            model,
        )
    mute = plain_json(holiday_mute_timing(years).build())
    _upsert(
        outcome, f"静默时段 {mute['name']}",
        lambda: api.alertingprovisioning.get_mute_timing(mute["name"]),
        lambda: api.alertingprovisioning.create_mute_timing(mute),
        lambda: api.alertingprovisioning.update_mute_timing(mute["name"], mute),
        mute,
    )
    tree = plain_json(policy_tree(registry).build())
    current = api.alertingprovisioning.get_notification_policy_tree()
    if _same(tree, current):
        outcome.unchanged.append("通知策略")
    elif current.get("receiver") in (DUTY_RECEIVER, GRAFANA_DEFAULT_RECEIVER, None) or replace_policy:
        api.alertingprovisioning.set_notification_policy_tree(tree)
        outcome.updated.append("通知策略")
    else:
        raise PolicyNotOurs(
            f"Grafana 已有他人配置的通知策略 (默认接收方 {current.get('receiver')}), 未覆盖; 确认后加 --replace-policy 重试"
        )


def _found(existing: dict[str, dict], uid: str) -> dict:
    if uid not in existing:
        raise GrafanaClientError(404, None, f"contact point {uid} not found")
    return existing[uid]
