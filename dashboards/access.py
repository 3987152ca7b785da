"""Who may see which board, generated from the registry: a Grafana team per district and
per department (responsible or cooperating, 一批部门配合) plus the city's supervisors; a
folder per district whose drill-down only that district's team and the supervisors may
open, and one per department whose drill-down offers only the projects it is responsible
for or cooperates on. The public boards (overview, ranking) are readable by every viewer
and every team.

Grafana's folder permissions are the whole list of who may do what (a POST replaces it),
so a plan states each folder's complete list; ``provision`` compares and writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import dashboard

from ..streams.contract import RegistryEntry
from .alerting import FOLDER_UID
from .boards import FOLDER_TITLE, department_project, overview, project, ranking, short_digest

CITY_TEAM = "市级督查"
CITY_FOLDER_UID = "sitepulse-city"
CITY_FOLDER_TITLE = "重大项目 · 市级督查"
VIEW = 1  # Grafana's folder permission levels: 1 View, 2 Edit, 4 Admin


def district_team(district: str) -> str:
    return f"区县-{district}"


def department_team(department: str) -> str:
    return f"部门-{department}"


def district_folder_uid(district: str) -> str:
    return f"sitepulse-d-{short_digest(district)}"


def department_folder_uid(department: str) -> str:
    return f"sitepulse-dept-{short_digest(department)}"


@dataclass(frozen=True)
class Grant:
    """One entry of a folder's permission list: a basic role or a team, and its level."""

    role: str | None = None
    team: str | None = None
    permission: int = VIEW


@dataclass(frozen=True)
class FolderPlan:
    uid: str
    title: str
    grants: tuple[Grant, ...]
    boards: tuple[dashboard.Dashboard, ...]


def projects_by_department(registry: Sequence[RegistryEntry]) -> dict[str, list[RegistryEntry]]:
    """Each department's projects: those it is responsible for and those it cooperates on."""
    found: dict[str, dict[str, RegistryEntry]] = {}
    for entry in registry:
        for department in {entry.department, *entry.partners} - {""}:
            found.setdefault(department, {})[entry.project_id] = entry
    return {d: [found[d][pid] for pid in sorted(found[d])] for d in sorted(found)}


def teams_of(registry: Sequence[RegistryEntry]) -> list[str]:
    districts = sorted({e.district for e in registry if e.district})
    return [CITY_TEAM, *(district_team(d) for d in districts), *(department_team(d) for d in projects_by_department(registry))]


def folder_plans(registry: Sequence[RegistryEntry]) -> list[FolderPlan]:
    """The public folder, the supervisors' folder (the all-district drill-down), one folder
    per district and one per department."""
    teams = teams_of(registry)
    public = FolderPlan(
        FOLDER_UID,
        FOLDER_TITLE,
        (Grant(role="Viewer"), Grant(role="Editor"), *(Grant(team=t) for t in teams)),
        (overview(), ranking()),
    )
    city = FolderPlan(CITY_FOLDER_UID, CITY_FOLDER_TITLE, (Grant(team=CITY_TEAM),), (project(),))
    districts = [
        FolderPlan(
            district_folder_uid(d),
            f"重大项目 · {d}",
            (Grant(team=district_team(d)), Grant(team=CITY_TEAM)),
            (project(district_only=d),),
        )
        for d in sorted({e.district for e in registry if e.district})
    ]
    departments = [
        FolderPlan(
            department_folder_uid(d),
            f"重大项目 · 部门 · {d}",
            (Grant(team=department_team(d)), Grant(team=CITY_TEAM)),
            (department_project(d, [(e.project_id, e.name) for e in entries]),),
        )
        for d, entries in projects_by_department(registry).items()
    ]
    return [public, city, *districts, *departments]
