"""`sitepulse provision` through grafana-client against a local fake of Grafana's API."""

from __future__ import annotations

import csv
import json
import re
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from sitepulse.cli import cli
from sitepulse.streams.contract import RegistryEntry
from sitepulse.streams.registry import write_registry_csv
from sitepulse.dashboards.access import department_folder_uid, district_folder_uid
from sitepulse.dashboards.boards import department_board_uid, district_board_uid
from tests.fake_grafana import FakeGrafana

TOKEN = "glsa_test_token"


@pytest.fixture
def grafana():
    server = FakeGrafana(TOKEN)
    yield server
    server.close()


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    path = tmp_path / "registry.csv"
    entries = [
        RegistryEntry(
            "NB-1", "鄞州区安置房1号", "鄞州区", "东部新城", "市住建局", "city", "new", "王伟", "13800000001", "计量中心1组", 1000.0, date(2026, 3, 1), 630.0,
            owner_person="陈刚", owner_phone="13900000009", leader_title="副区长", partner_departments="市交通局; 市水利局",
        ),
        RegistryEntry("NB-2", "海曙区管廊2号", "海曙区", "前湾新区", "市交通局", "district", "continuing", "李娜", "13800000002", "计量中心2组", 2000.0, date(2025, 3, 1), 800.0),
    ]
    write_registry_csv(entries, path)
    return path


def registry_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open(encoding="utf-8")))


def write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def project_choices(board: dict) -> list[str]:
    """The values of a board's custom ``project`` variable, split as Grafana splits them
    (commas not escaped, then ``label : value``)."""
    (variable,) = [v for v in board["templating"]["list"] if v["name"] == "project"]
    assert variable["type"] == "custom"
    texts = [t.replace("\\,", ",") for t in re.findall(r"(?:\\,|[^,])+", variable["query"])]
    return [(m[2] if (m := re.match(r"^\s*(.+)\s:\s(.+)$", t)) else t).strip() for t in texts]


def provision(grafana: FakeGrafana, *args: str, token: str = TOKEN):
    env = {"SITEPULSE_GRAFANA_TOKEN": token, "SITEPULSE_INFLUX_URL": "http://influxdb:8086", "SITEPULSE_NOTIFY_KIND": "dingtalk"}
    return CliRunner().invoke(cli, ["provision", "--grafana-url", grafana.url, *args], env=env, catch_exceptions=False)


def test_first_run_creates_everything_second_run_changes_nothing(grafana, registry):
    first = provision(grafana, "--registry", str(registry))
    assert first.exit_code == 0, first.output
    district_boards = {district_board_uid("鄞州区"), district_board_uid("海曙区")}
    departments = ("市住建局", "市交通局", "市水利局")
    department_boards = {department_board_uid(d) for d in departments}
    assert set(grafana.dashboards) == {"sitepulse-overview", "sitepulse-ranking", "sitepulse-project", *district_boards, *department_boards}
    assert len(grafana.rules) == 6
    assert set(grafana.folders) == {
        "sitepulse", "sitepulse-city", district_folder_uid("鄞州区"), district_folder_uid("海曙区"), *(department_folder_uid(d) for d in departments)
    }
    assert {cp["name"] for cp in grafana.contact_points.values()} >= {"负责人-王伟", "负责人-李娜", "数据责任单位-计量中心1组", "区县督查-海曙区"}
    assert grafana.policy["receiver"] == "sitepulse-值班" and "法定节假日" in grafana.mute_timings
    assert grafana.datasources["sitepulse-influxdb"]["url"] == "http://influxdb:8086"

    writes = len(grafana.writes)
    second = provision(grafana, "--registry", str(registry))
    assert second.exit_code == 0, second.output
    assert len(grafana.writes) == writes, f"second run wrote: {grafana.writes[writes:]}"
    assert "无变化" in second.output


def test_a_changed_board_or_registry_is_updated_in_place(grafana, registry, tmp_path):
    assert provision(grafana, "--registry", str(registry)).exit_code == 0
    grafana.dashboards["sitepulse-ranking"]["title"] = "someone edited it"
    rows = registry_rows(registry)
    rows[1]["leader"] = "张敏"
    write_rows(registry, rows)
    result = provision(grafana, "--registry", str(registry))
    assert result.exit_code == 0, result.output
    assert "更新: 看板" in result.output and "新建: 联系点 负责人-张敏" in result.output
    assert grafana.dashboards["sitepulse-ranking"]["title"] != "someone edited it"
    leaders = [r["object_matchers"][0][2] for r in grafana.policy["routes"] if r["object_matchers"][0][0] == "leader"]
    assert sorted(leaders) == ["张敏", "王伟"]


def test_each_party_opens_only_its_own_boards(grafana, registry):
    assert provision(grafana, "--registry", str(registry)).exit_code == 0, "provisioned"
    assert {t["name"] for t in grafana.teams.values()} == {"市级督查", "区县-鄞州区", "区县-海曙区", "部门-市住建局", "部门-市交通局", "部门-市水利局"}

    def boards_for(role: str, *teams: str) -> set[str]:
        return {uid for uid, folder in grafana.dashboard_folders.items() if grafana.may_view(folder, role, set(teams))}

    public = {"sitepulse-overview", "sitepulse-ranking"}
    yinzhou, haishu = district_board_uid("鄞州区"), district_board_uid("海曙区")
    housing, transport, water = (department_board_uid(d) for d in ("市住建局", "市交通局", "市水利局"))
    # Any viewer: the overview and the public ranking (一屏晾晒), no drill-down.
    assert boards_for("Viewer") == public
    # A district office (no org role of its own, only its team): its own drill-down.
    assert boards_for("None", "区县-鄞州区") == public | {yinzhou}
    # A department: its own drill-down, whether it is responsible or only cooperates.
    assert boards_for("None", "部门-市交通局") == public | {transport}
    assert boards_for("None", "部门-市水利局") == public | {water}
    # The city's supervisors: every district's and department's drill-down and the all-district one.
    assert boards_for("None", "市级督查") == public | {yinzhou, haishu, housing, transport, water, "sitepulse-project"}
    assert boards_for("Admin") == set(grafana.dashboards)
    # A district's board shows only that district's projects.
    constant = next(v for v in grafana.dashboards[yinzhou]["templating"]["list"] if v["name"] == "district")
    assert constant["type"] == "constant" and constant["query"] == "鄞州区" and constant["hide"] == 2
    # A department's board offers only the projects it is responsible for or cooperates on.
    assert project_choices(grafana.dashboards[transport]) == ["NB-1", "NB-2"], "responsible for NB-2, cooperating on NB-1"
    assert project_choices(grafana.dashboards[water]) == ["NB-1"] and project_choices(grafana.dashboards[housing]) == ["NB-1"]
    # No phone number anywhere in Grafana: every viewer may read contact points.
    sent = json.dumps(grafana.bodies, ensure_ascii=False)
    assert "13800000001" not in sent and "13800000002" not in sent and "13900000009" not in sent


def test_access_follows_the_registry_and_is_restored(grafana, registry):
    assert provision(grafana, "--registry", str(registry)).exit_code == 0, "provisioned"
    # Someone opens a district's folder to every viewer by hand: the next run closes it.
    folder = district_folder_uid("海曙区")
    grafana.folder_permissions[folder].append({"role": "Viewer", "permission": 1})
    rows = registry_rows(registry)
    rows.append({**rows[0], "project_id": "NB-3", "district": "北仑区", "department": "市城管局", "partner_departments": ""})
    write_rows(registry, rows)
    result = provision(grafana, "--registry", str(registry))
    assert result.exit_code == 0, result.output
    assert "新建: 团队 区县-北仑区" in result.output and "新建: 团队 部门-市城管局" in result.output
    assert not grafana.may_view(folder, "Viewer", set()) and grafana.may_view(folder, "None", {"区县-海曙区"})
    assert grafana.may_view(district_folder_uid("北仑区"), "None", {"区县-北仑区"})
    assert grafana.may_view("sitepulse", "None", {"部门-市城管局"}), "a new team sees the public boards"
    assert grafana.may_view(department_folder_uid("市城管局"), "None", {"部门-市城管局"})
    writes = len(grafana.writes)
    assert provision(grafana, "--registry", str(registry)).exit_code == 0
    assert grafana.writes[writes:] == [], "nothing changed, nothing written"


def test_a_registry_without_the_six_ones_columns_keeps_working(grafana, registry):
    old_columns = ("owner_person", "owner_phone", "leader_title", "partner_departments")
    write_rows(registry, [{k: v for k, v in row.items() if k not in old_columns} for row in registry_rows(registry)])
    result = provision(grafana, "--registry", str(registry))
    assert result.exit_code == 0, result.output
    assert {t["name"] for t in grafana.teams.values()} == {"市级督查", "区县-鄞州区", "区县-海曙区", "部门-市住建局", "部门-市交通局"}
    assert project_choices(grafana.dashboards[department_board_uid("市交通局")]) == ["NB-2"]
    assert grafana.may_view(department_folder_uid("市住建局"), "None", {"部门-市住建局"})
    assert not grafana.may_view(department_folder_uid("市住建局"), "None", {"部门-市交通局"})


def test_a_policy_tree_someone_else_wrote_is_kept_unless_replacing_it_is_asked(grafana, registry):
    grafana.contact_points["ops"] = {"uid": "ops", "name": "运维值班", "type": "email", "settings": {"addresses": "ops@example.org"}}
    grafana.policy = {"receiver": "运维值班", "routes": []}
    refused = provision(grafana, "--registry", str(registry))
    assert refused.exit_code != 0 and "--replace-policy" in refused.output
    assert grafana.policy == {"receiver": "运维值班", "routes": []}
    replaced = provision(grafana, "--registry", str(registry), "--replace-policy")
    assert replaced.exit_code == 0, replaced.output
    assert grafana.policy["receiver"] == "sitepulse-值班"


def test_grafana_refusals_reach_the_operator(grafana, registry):
    wrong_token = provision(grafana, token="not-the-token")
    assert wrong_token.exit_code != 0 and "401" in wrong_token.output
    # A datasource of the same name under another uid: Grafana refuses, the operator is told.
    grafana.datasources["other"] = {"uid": "other", "name": "sitepulse-influxdb", "type": "influxdb"}
    refused = provision(grafana)
    assert refused.exit_code != 0 and "409" in refused.output, "same datasource name under another uid"


def test_routing_only_leaves_boards_to_file_provisioning(grafana, registry):
    needs_registry = provision(grafana, "--routing-only")
    assert needs_registry.exit_code != 0 and "--registry" in needs_registry.output
    result = provision(grafana, "--routing-only", "--registry", str(registry))
    assert result.exit_code == 0, result.output
    assert grafana.dashboards == {} and grafana.rules == {} and grafana.datasources == {}
    assert "负责人-王伟" in {cp["name"] for cp in grafana.contact_points.values()}


def test_the_fake_refuses_what_grafana_refuses(grafana):
    from tests.fake_grafana import ApiError

    def refused(method: str, path: str, body) -> int:
        with pytest.raises(ApiError) as error:
            grafana.route(method, path, body)
        return error.value.status

    grafana.route("POST", "/api/folders", {"uid": "f", "title": "F"})
    assert refused("POST", "/api/folders", {"uid": "g", "title": "F"}) == 409
    grafana.route("POST", "/api/datasources", {"uid": "ds", "name": "ds", "type": "influxdb"})
    board = {"uid": "b", "panels": [{"title": "p", "datasource": {"uid": "missing"}, "targets": []}]}
    assert refused("POST", "/api/dashboards/db", {"dashboard": board, "folderUid": "f"}) == 400
    rule = {"uid": "r", "folderUID": "nope", "condition": "A", "data": [{"refId": "A", "datasourceUid": "ds"}]}
    assert refused("POST", "/api/v1/provisioning/alert-rules", rule) == 400
    grafana.route("POST", "/api/v1/provisioning/alert-rules", {**rule, "folderUID": "f"})
    assert refused("POST", "/api/v1/provisioning/alert-rules", {**rule, "folderUID": "f"}) == 409
    assert refused("POST", "/api/v1/provisioning/contact-points", {"uid": "c", "name": "c", "type": "carrier-pigeon", "settings": {}}) == 400
    assert refused("PUT", "/api/v1/provisioning/policies", {"receiver": "nobody"}) == 400
    grafana.route("POST", "/api/teams", {"name": "区县-鄞州区"})
    assert refused("POST", "/api/teams", {"name": "区县-鄞州区"}) == 409
    assert refused("POST", "/api/folders/f/permissions", {"items": [{"teamId": 99, "permission": 1}]}) == 400
    assert refused("POST", "/api/folders/f/permissions", {"items": [{"teamId": 1, "role": "Viewer", "permission": 1}]}) == 400
    assert refused("POST", "/api/folders/f/permissions", {"items": [{"teamId": 1, "permission": 3}]}) == 400
    assert refused("POST", "/api/folders/nope/permissions", {"items": []}) == 404


def test_grafana_gets_its_own_read_account_never_the_workers(grafana):
    env = {
        "SITEPULSE_GRAFANA_TOKEN": TOKEN,
        "SITEPULSE_INFLUX_URL": "http://influxdb:8086",
        "SITEPULSE_INFLUX_USERNAME": "sitepulse_worker",
        "SITEPULSE_INFLUX_PASSWORD": "worker-secret-1",
        "SITEPULSE_INFLUX_TOKEN": "worker-token-2",
        "SITEPULSE_GRAFANA_INFLUX_USERNAME": "grafana_reader",
        "SITEPULSE_GRAFANA_INFLUX_PASSWORD": "reader-secret-3",
    }
    done = CliRunner().invoke(cli, ["provision", "--grafana-url", grafana.url], env=env, catch_exceptions=False)
    assert done.exit_code == 0, done.output
    datasource = grafana.datasources["sitepulse-influxdb"]
    assert datasource["user"] == "grafana_reader" and datasource["secureJsonFields"] == {"password": True}
    sent = json.dumps(grafana.bodies, ensure_ascii=False)
    assert "reader-secret-3" in sent, "the read password goes to Grafana's write-only secure field"
    assert "worker-secret-1" not in sent and "worker-token-2" not in sent and "sitepulse_worker" not in sent
    assert "reader-secret-3" not in done.output
