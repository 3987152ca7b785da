"""Grafana-managed alerting as code: rules over the status measurements, contact points
and a notification policy tree generated from the registry (one route per leader, per
data owner and, for escalations, per district), and mute timings for statutory holidays.

Built with grafana-foundation-sdk's alerting builders; the objects are what Grafana's
provisioning HTTP API takes, and ``file_provisioning`` turns them into its YAML files."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date, timedelta

import chinese_calendar
from grafana_foundation_sdk.builders import alerting, expr
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.alerting import RelativeTimeRange
from grafana_foundation_sdk.models.expr import ExprTypeThresholdConditions, ExprTypeThresholdConditionsEvaluator

from ..agents.core.problems import CLOSED, OVERDUE
from ..streams.contract import Measurement as M
from ..streams.contract import StatusField as S
from ..streams.contract import RegistryEntry
from .boards import FOLDER_TITLE, short_digest
from .influxql import DATASOURCE_UID, InfluxQL

FOLDER_UID = "sitepulse"
RULE_GROUP = "sitepulse-项目监测"
HOLIDAY_MUTE = "法定节假日"
DUTY_RECEIVER = "sitepulse-值班"
ESCALATE_AFTER_WORKING_DAYS = 7
CONTACT_TYPES = {"dingtalk": "dingding", "wecom": "wecom", "webhook": "webhook"}
URL_FROM_ENV = "${SITEPULSE_NOTIFY_URL}"  # Grafana expands it when it reads the file: no secret in the repo

_BY_PROJECT = f"GROUP BY {M.TAG_PROJECT}, {M.TAG_DISTRICT}, leader"


def _rule(uid: str, title: str, query: str, above: float, seconds_back: int, labels: dict[str, str], summary: str) -> alerting.Rule:
    """Fires for every series (project, meter) whose last value in the window is above ``above``."""
    return (
        alerting.Rule(title)
        .uid(uid)
        .org_id(1)
        .folder_uid(FOLDER_UID)
        .rule_group(RULE_GROUP)
        .condition("C")
        .with_query(alerting.Query("A").datasource_uid(DATASOURCE_UID).relative_time_range(RelativeTimeRange(from_val=seconds_back, to=0)).model(InfluxQL(query)))
        .with_query(alerting.Query("B").datasource_uid("__expr__").model(expr.TypeReduce().ref_id("B").expression("A").reducer("last")))
        .with_query(
            alerting.Query("C")
            .datasource_uid("__expr__")
            .model(expr.TypeThreshold().ref_id("C").expression("B").conditions([_above(above)]))
        )
        .for_val("0m")
        .no_data_state("OK")
        .exec_err_state("Error")
        .labels(labels)
        .annotations({"summary": summary})
    )


class _Condition:
    """The SDK takes threshold conditions as builders; this one is just a value."""

    def __init__(self, above: float) -> None:
        self.condition = ExprTypeThresholdConditions(evaluator=ExprTypeThresholdConditionsEvaluator(params=[above], type_val="gt"))

    def build(self) -> ExprTypeThresholdConditions:
        return self.condition


def _above(value: float) -> _Condition:
    return _Condition(value)


def rules() -> list[alerting.Rule]:
    three_days, week, quarter, two_years = 3 * 86_400, 7 * 86_400, 90 * 86_400, 730 * 86_400
    project = "{{ $labels.project_id }}"
    return [
        _rule(
            "sp-stalled",
            "项目停工",
            f"SELECT last({S.STALLED}) FROM {M.PROJECT_STATUS} WHERE $timeFilter {_BY_PROJECT}",
            0,
            three_days,
            {"severity": "warning", "kind": "stalled"},
            f"项目 {project} 已停工 (连续 3 个工作日活跃指数低于 0.2), 责任领导 {{{{ $labels.leader }}}}",
        ),
        _rule(
            "sp-stall-escalation",
            f"停工超过 {ESCALATE_AFTER_WORKING_DAYS} 个工作日",
            f"SELECT last({S.STALLED_WORKING_DAYS}) FROM {M.PROJECT_STATUS} WHERE $timeFilter {_BY_PROJECT}",
            ESCALATE_AFTER_WORKING_DAYS - 1,
            three_days,
            {"severity": "critical", "kind": "stall_escalation", "escalate": "district"},
            f"项目 {project} 停工已达 {{{{ $values.B }}}} 个工作日, 升级至 {{{{ $labels.district }}}} 督查",
        ),
        _rule(
            "sp-meter-offline",
            "电表离线",
            f"SELECT last(offline) FROM {M.METER_STATUS} WHERE $timeFilter GROUP BY {M.TAG_PROJECT}, {M.TAG_METER}, data_owner",
            0,
            week,
            {"severity": "warning", "kind": "meter_offline"},
            f"项目 {project} 电表 {{{{ $labels.meter_id }}}} 离线, 请数据责任单位 {{{{ $labels.data_owner }}}} 处理",
        ),
        _rule(
            "sp-suspicious",
            "用电异常(疑似空转或数据造假)",
            f"SELECT count(kind) FROM {M.PROBLEM} WHERE kind = 'suspicious' AND status <> '{CLOSED}' AND $timeFilter {_BY_PROJECT}",
            0,
            quarter,
            {"severity": "warning", "kind": "suspicious"},
            f"项目 {project} 有未销号的用电异常问题, 请责任领导 {{{{ $labels.leader }}}} 核查",
        ),
        _rule(
            "sp-node-overdue",
            "计划节点逾期",
            f"SELECT last(behind) FROM {M.SCHEDULE} WHERE $timeFilter {_BY_PROJECT}",
            0,
            three_days,
            {"severity": "warning", "kind": "node_overdue"},
            f"项目 {project} 有计划节点逾期未完成, 请责任领导 {{{{ $labels.leader }}}} 督促; 节点与滞后天数见项目详情",
        ),
        # A problem is stamped at the day it was opened, which may be long before its
        # deadline: the window reaches two years back.
        _rule(
            "sp-problem-overdue",
            "问题逾期未销号",
            f"SELECT count(kind) FROM {M.PROBLEM} WHERE status = '{OVERDUE}' AND $timeFilter {_BY_PROJECT}",
            0,
            two_years,
            {"severity": "critical", "kind": "problem_overdue", "escalate": "district"},
            f"项目 {project} 有 {{{{ $values.B }}}} 个问题超过限期未销号, 责任领导 {{{{ $labels.leader }}}}, 升级至 {{{{ $labels.district }}}} 督查",
        ),
    ]


def _contact(name: str, kind: str) -> alerting.ContactPoint:
    settings: dict[str, object] = {"url": URL_FROM_ENV}
    if kind != "webhook":
        settings["message"] = ALERT_MESSAGE
    if kind == "dingtalk":
        settings["msgType"] = "text"
    return alerting.ContactPoint().uid(f"sp-{short_digest(name, 10)}").name(name).type(CONTACT_TYPES[kind]).settings(settings).disable_resolve_message(False)


# Grafana shows contact points to every viewer, so no phone number is written into one:
# the summary names the leader, and `sitepulse notify` (the webhook relay) @-mentions the
# leader by the phone it reads from the registry.
ALERT_MESSAGE = '{{ range .Alerts }}【重大项目监测】{{ .Annotations.summary }}\n{{ end }}'


def leader_receiver(leader: str) -> str:
    return f"负责人-{leader}"


def contact_points(entries: Sequence[RegistryEntry], kind: str) -> list[alerting.ContactPoint]:
    """One per leader, data owner and district, plus duty; none holds a phone number."""
    points = [_contact(DUTY_RECEIVER, kind)]
    points += [_contact(leader_receiver(leader), kind) for leader in sorted({e.leader for e in entries})]
    points += [_contact(f"数据责任单位-{owner}", kind) for owner in sorted({e.data_owner for e in entries})]
    points += [_contact(f"区县督查-{district}", kind) for district in sorted({e.district for e in entries})]
    return points


def policy_tree(entries: Sequence[RegistryEntry]) -> alerting.NotificationPolicy:
    """Meter alerts go to the data owner; escalations (a long stall, an overdue problem) to
    the district and still the leader; the rest (a stall, a node overdue, a suspicious
    site) to the project's leader. Leaders are not paged on statutory holidays."""
    owners = sorted({e.data_owner for e in entries})
    districts = sorted({e.district for e in entries})
    leaders = sorted({e.leader for e in entries})
    return (
        alerting.NotificationPolicy()
        .receiver(DUTY_RECEIVER)
        .group_by(["alertname", M.TAG_PROJECT])
        .routes(
            [
                alerting.NotificationPolicy()
                .object_matchers([["kind", "=", "meter_offline"]])
                .routes([alerting.NotificationPolicy().receiver(f"数据责任单位-{o}").object_matchers([["data_owner", "=", o]]) for o in owners]),
                alerting.NotificationPolicy()
                .object_matchers([["escalate", "=", "district"]])
                .continue_val(True)
                .routes([alerting.NotificationPolicy().receiver(f"区县督查-{d}").object_matchers([[M.TAG_DISTRICT, "=", d]]) for d in districts]),
            ]
            + [
                alerting.NotificationPolicy().receiver(leader_receiver(leader)).object_matchers([["leader", "=", leader]]).mute_time_intervals([HOLIDAY_MUTE])
                for leader in leaders
            ]
        )
    )


def holiday_mute_timing(years: Iterable[int]) -> alerting.MuteTiming:
    """Statutory holidays (weekends and 调休 working days excluded) of the given years, as
    runs of days; a year ``chinese-calendar`` does not know yet is left out."""
    intervals = []
    for year in years:
        try:
            holidays = chinese_calendar.get_holidays(date(year, 1, 1), date(year, 12, 31), include_weekends=False)
        except NotImplementedError:
            continue
        for first, last in _runs(holidays):
            intervals.append(
                alerting.TimeInterval()
                .years([alerting.YearRange().begin(year).end(year)])
                .months([alerting.MonthRange().begin(first.month).end(first.month)])
                .days_of_month([alerting.DayOfMonthRange().begin(first.day).end(last.day)])
                .location("Asia/Shanghai")
            )
    return alerting.MuteTiming().name(HOLIDAY_MUTE).time_intervals(intervals)


def _runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first, last), never crossing a month."""
    runs: list[list[date]] = []
    for day in sorted(days):
        if runs and runs[-1][1] + timedelta(days=1) == day and runs[-1][1].month == day.month:
            runs[-1][1] = day
        else:
            runs.append([day, day])
    return [(a, b) for a, b in runs]


def plain_json(obj: object) -> object:
    """An SDK model as plain dicts and lists, as Grafana's API and files take it."""
    return json.loads(JSONEncoder(ensure_ascii=False).encode(obj))


def rule_group_file(interval_s: int = 60) -> dict:
    """The rules as Grafana's alerting file provisioning (``groups``)."""
    built = [plain_json(rule.build()) for rule in rules()]
    for rule in built:
        for key in ("folderUID", "ruleGroup", "orgID"):
            rule.pop(key, None)
    return {"apiVersion": 1, "groups": [{"orgId": 1, "name": RULE_GROUP, "folder": FOLDER_TITLE, "interval": f"{interval_s}s", "rules": built}]}


def routing_file(entries: Sequence[RegistryEntry], kind: str, years: Iterable[int]) -> dict:
    """Contact points, the policy tree and the holiday mute timing, from the registry."""
    return {
        "apiVersion": 1,
        "contactPoints": [
            {"orgId": 1, "name": cp["name"], "receivers": [{k: cp[k] for k in ("uid", "type", "settings", "disableResolveMessage") if k in cp}]}
            for cp in (plain_json(point.build()) for point in contact_points(entries, kind))
        ],
        "policies": [{"orgId": 1, **plain_json(policy_tree(entries).build())}],
        "muteTimes": [{"orgId": 1, **plain_json(holiday_mute_timing(years).build())}],
    }
