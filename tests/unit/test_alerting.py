"""Alerting as code: rules Grafana can evaluate, and routes that reach the right person."""

from __future__ import annotations

import json
from datetime import date, timedelta

from sitepulse.dashboards.alerting import HOLIDAY_MUTE, routing_file, rule_group_file
from sitepulse.dashboards.influxql import DATASOURCE_UID
from sitepulse.streams.contract import Measurement, RegistryEntry


def entry(pid: str, leader: str, phone: str, district: str, owner: str) -> RegistryEntry:
    return RegistryEntry(pid, f"{district}项目{pid}", district, "东部新城", "市住建局", "city", "continuing", leader, phone, owner, 1000.0, date(2025, 1, 1), 630.0)


REGISTRY = [
    entry("NB-1", "王伟", "13800000001", "鄞州区", "计量中心1组"),
    entry("NB-2", "王伟", "13800000001", "海曙区", "计量中心1组"),
    entry("NB-3", "李娜", "13800000003", "海曙区", "计量中心2组"),
]


def test_rules_evaluate_their_own_queries_and_label_severity():
    (group,) = rule_group_file()["groups"]
    assert group["folder"] and group["interval"] == "60s"
    uids = [rule["uid"] for rule in group["rules"]]
    assert len(set(uids)) == len(uids) == 6
    for rule in group["rules"]:
        refs = {query["refId"] for query in rule["data"]}
        assert rule["condition"] in refs
        assert {q["datasourceUid"] for q in rule["data"]} == {DATASOURCE_UID, "__expr__"}
        for query in rule["data"]:
            if query["datasourceUid"] == "__expr__":
                assert query["model"]["expression"] in refs
            else:
                assert query["relativeTimeRange"]["from"] > 0 and "$timeFilter" in query["model"]["query"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert any("\u4e00" <= ch <= "\u9fff" for ch in rule["annotations"]["summary"])
    escalation = next(r for r in group["rules"] if r["uid"] == "sp-stall-escalation")
    threshold = next(q for q in escalation["data"] if q["refId"] == "C")
    assert threshold["model"]["conditions"][0]["evaluator"] == {"params": [6], "type": "gt"}, "fires at 7 working days"
    by_uid = {rule["uid"]: rule for rule in group["rules"]}
    node, problem = by_uid["sp-node-overdue"], by_uid["sp-problem-overdue"]
    assert node["labels"]["kind"] == "node_overdue" and "escalate" not in node["labels"]
    assert f"FROM {Measurement.SCHEDULE} " in node["data"][0]["model"]["query"]
    assert problem["labels"] == {"severity": "critical", "kind": "problem_overdue", "escalate": "district"}
    assert "status = 'overdue'" in problem["data"][0]["model"]["query"]
    for rule in (node, problem):
        assert "GROUP BY project_id, district, leader" in rule["data"][0]["model"]["query"], "labelled with who must act"


def receivers_for(policy: dict, labels: dict[str, str]) -> list[str]:
    """Where Grafana's Alertmanager sends an alert with ``labels``: down the first matching
    route (and on past it where it says ``continue``); a route without a matching child
    delivers to its own receiver, inherited from its parent when it names none."""

    def matches(route: dict) -> bool:
        return all(labels.get(name) == value for name, op, value in route.get("object_matchers", []) if op == "=")

    def walk(route: dict, inherited: str) -> list[str]:
        receiver = route.get("receiver") or inherited
        found: list[str] = []
        for child in route.get("routes", []):
            if matches(child):
                found += walk(child, receiver)
                if not child.get("continue"):
                    break
        return found or [receiver]

    return walk(policy, policy["receiver"])


def test_each_leader_gets_a_route_and_a_contact_point_without_their_phone():
    routing = routing_file(REGISTRY, "dingtalk", [2026])
    contacts = {cp["name"]: cp["receivers"][0] for cp in routing["contactPoints"]}
    assert all(r["type"] == "dingding" and r["settings"]["url"] == "${SITEPULSE_NOTIFY_URL}" for r in contacts.values())
    # Every Grafana viewer can read contact points: phones stay in the registry.
    assert "负责人-王伟" in contacts and not any(e.leader_phone in json.dumps(routing, ensure_ascii=False) for e in REGISTRY)
    (policy,) = routing["policies"]
    routes = policy["routes"]
    by_leader = {r["object_matchers"][0][2]: r for r in routes if r.get("object_matchers", [[None]])[0][0] == "leader"}
    assert set(by_leader) == {"王伟", "李娜"}
    assert all(r["receiver"] in contacts and r["mute_time_intervals"] == [HOLIDAY_MUTE] for r in by_leader.values())
    meters = routes[0]
    assert meters["object_matchers"] == [["kind", "=", "meter_offline"]] and "continue" not in meters, "meter alerts stop at the data owner"
    assert {r["receiver"] for r in meters["routes"]} == {"数据责任单位-计量中心1组", "数据责任单位-计量中心2组"}
    escalation = routes[1]
    assert escalation["continue"] is True, "escalations reach the district and still the leader"
    assert {r["receiver"] for r in escalation["routes"]} == {"区县督查-鄞州区", "区县督查-海曙区"}
    assert all(r["receiver"] in contacts for branch in (meters, escalation) for r in branch["routes"])


def test_overdue_nodes_page_the_leader_and_overdue_problems_also_the_district():
    (policy,) = routing_file(REGISTRY, "dingtalk", [2026])["policies"]
    project = {"project_id": "NB-2", "district": "海曙区", "leader": "王伟"}
    assert receivers_for(policy, {**project, "severity": "warning", "kind": "stalled"}) == ["负责人-王伟"]
    assert receivers_for(policy, {**project, "severity": "warning", "kind": "node_overdue"}) == ["负责人-王伟"], "like a stall"
    long_stall = receivers_for(policy, {**project, "severity": "critical", "kind": "stall_escalation", "escalate": "district"})
    overdue = receivers_for(policy, {**project, "severity": "critical", "kind": "problem_overdue", "escalate": "district"})
    assert overdue == long_stall == ["区县督查-海曙区", "负责人-王伟"], "like a long stall"
    meter = {"project_id": "NB-2", "meter_id": "M1", "data_owner": "计量中心2组", "severity": "warning", "kind": "meter_offline"}
    assert receivers_for(policy, meter) == ["数据责任单位-计量中心2组"]


def test_holiday_mute_timing_covers_statutory_holidays_not_tiaoxiu_saturdays():
    (mute,) = routing_file(REGISTRY, "wecom", [2026])["muteTimes"]
    days = {
        date(interval["years"][0]["begin"], interval["months"][0]["begin"], day)
        for interval in mute["time_intervals"]
        for day in range(interval["days_of_month"][0]["begin"], interval["days_of_month"][0]["end"] + 1)
    }
    assert {date(2026, 2, 15) + timedelta(days=n) for n in range(9)} <= days  # Spring Festival
    assert date(2026, 10, 1) in days and date(2026, 2, 14) not in days and date(2026, 2, 28) not in days
    assert routing_file(REGISTRY, "wecom", [2099])["muteTimes"][0]["time_intervals"] == [], "unknown years are left out"
