"""The Grafana boards (overview, ranking, the project drill-down and its district and
department copies), built with grafana-foundation-sdk. Every query is InfluxQL over the
measurements declared in ``streams/contract.py`` (so one query serves InfluxDB 1.x and
2.x), and every query is run against a real influxd in the tests."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from grafana_foundation_sdk.builders import dashboard, gauge, geomap, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders.common import FrameGeometrySource, GraphThresholdsStyleConfig, MapLayerOptions
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import FrameGeometrySourceMode, GraphTresholdsStyleMode, TableColorTextCellOptions
from grafana_foundation_sdk.models.dashboard import (
    DashboardLinkType,
    DashboardSpecialValueMapOptions,
    DataTransformerConfig,
    DynamicConfigValue,
    SpecialValueMap,
    SpecialValueMatch,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableModel,
    VariableRefresh,
    VariableSort,
)

from ..agents.core.indicators import STABLE_AT, STALLED_BELOW, STARTED_ABOVE
from ..agents.core.investment import FAR_BEHIND_PCT, ON_PACE_PCT
from ..agents.core.nodes import BEHIND, DONE, ON_SCHEDULE
from ..agents.core.problems import AWAITING, CLOSED, OPEN, OVERDUE
from ..streams.contract import DAY_STATE_NAMES, EVENT_KINDS, NODE_STATUS_NAMES, PROBLEM_STATUS_NAMES
from ..streams.contract import DailyField as D
from ..streams.contract import Measurement as M
from .influxql import DATASOURCE, InfluxQL

OVERVIEW_UID = "sitepulse-overview"
RANKING_UID = "sitepulse-ranking"
PROJECT_UID = "sitepulse-project"
FOLDER_TITLE = "重大项目动态监测"

STATE_MAPPINGS = ValueMap(
    {
        state: ValueMappingResult(text=DAY_STATE_NAMES[state], color=color, index=index)
        for index, (state, color) in enumerate(
            (("started", "green"), ("stalled", "red"), ("offline", "purple"), ("not_started", "blue"), ("stoppage", "yellow"))
        )
    }
)
# 问题销号: a problem stays 未销号 (open, awaiting confirmation or overdue) until a person closes it.
PROBLEM_STATUS_MAPPINGS = ValueMap(
    {
        status: ValueMappingResult(text=PROBLEM_STATUS_NAMES[status], color=color, index=index)
        for index, (status, color) in enumerate(((OPEN, "orange"), (AWAITING, "blue"), (OVERDUE, "red"), (CLOSED, "green")))
    }
)
NODE_STATUS_MAPPINGS = ValueMap(
    {
        status: ValueMappingResult(text=NODE_STATUS_NAMES[status], color=color, index=index)
        for index, (status, color) in enumerate(((DONE, "green"), (ON_SCHEDULE, "blue"), (BEHIND, "red")))
    }
)
# What opened a problem: the event kind ("problem_opened": filed by a person).
PROBLEM_KIND_MAPPINGS = ValueMap({kind: ValueMappingResult(text=name, index=index) for index, (kind, name) in enumerate(EVENT_KINDS.items())})
NOT_DONE = SpecialValueMap(DashboardSpecialValueMapOptions(SpecialValueMatch.NULL, ValueMappingResult(text="未完成", color="orange", index=0)))
SNAIL_MAPPINGS = ValueMap({"true": ValueMappingResult(text="🐌 金蜗牛", color="orange", index=0), "false": ValueMappingResult(text="", index=1)})

# The state of every project on its newest judged day in the board's time range.
_LATEST_STATES = f"SELECT last({D.STATE}) AS {D.STATE} FROM {M.POWER_DAILY} WHERE $timeFilter AND {D.MACHINE_STATE} =~ /./ GROUP BY {M.TAG_PROJECT}"
# Whether every project is behind one of its plan nodes on its newest judged day in the range.
_LATEST_SCHEDULES = f"SELECT last(behind) AS behind FROM {M.SCHEDULE} WHERE $timeFilter GROUP BY {M.TAG_PROJECT}"
_NOT_CLOSED = f"status <> '{CLOSED}'"


def _thresholds(*steps: tuple[float | None, str]) -> dashboard.ThresholdsConfig:
    return dashboard.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps([Threshold(value, color) for value, color in steps])


def _count(title: str, query: str, thresholds: dashboard.ThresholdsConfig, span: int = 4) -> stat.Panel:
    """A count that shows 0, not "No data", when nothing matches."""
    return stat.Panel().title(title).datasource(DATASOURCE).with_target(InfluxQL(query)).thresholds(thresholds).no_value("0").height(4).span(span)


def _problem_count(title: str, where: str, color: str) -> stat.Panel:
    """Problems of the ledger (every one, whenever opened) matching ``where``; a row of three."""
    return _count(title, f"SELECT count(kind) FROM {M.PROBLEM} WHERE {where}", _thresholds((None, "green"), (1, color)), span=8)


def _state_count(state: str, color: str) -> stat.Panel:
    return _count(DAY_STATE_NAMES[state], f"SELECT count({D.STATE}) FROM ({_LATEST_STATES}) WHERE {D.STATE} = '{state}'", _thresholds((None, color)))


def overview() -> dashboard.Dashboard:
    """一屏掌控: how many projects work, stall, are offline, behind their plan nodes or
    suspicious; the problem ledger; plan completion; energy against baseline; the map;
    who must act."""
    board = (
        dashboard.Dashboard("一屏掌控 · 重大项目总览")
        .uid(OVERVIEW_UID)
        .tags(["sitepulse"])
        .time("now-30d", "now")
        .refresh("1m")
        .timezone("browser")
        .link(dashboard.DashboardLink("一屏晾晒 · 排名").type(DashboardLinkType.LINK).url(f"/d/{RANKING_UID}").icon("external link"))
        .with_panel(
            stat.Panel()
            .title("项目总数")
            .datasource(DATASOURCE)
            .with_target(InfluxQL(f"SELECT count(annual_plan_wan) FROM (SELECT last(annual_plan_wan) AS annual_plan_wan FROM {M.PROJECT} GROUP BY {M.TAG_PROJECT})"))
            .height(4)
            .span(4)
        )
        .with_panel(_state_count("started", "green"))
        .with_panel(_state_count("stalled", "red"))
        .with_panel(_state_count("offline", "purple"))
        .with_panel(
            _count(
                "计划节点滞后项目",
                f"SELECT count(behind) FROM ({_LATEST_SCHEDULES}) WHERE behind = 1",
                _thresholds((None, "green"), (1, "orange")),
            ).description("最新判定日有计划节点逾期未完成的项目数")
        )
        .with_panel(
            _count(
                "用电异常(未销号)",
                f"SELECT count(kind) FROM {M.PROBLEM} WHERE kind = 'suspicious' AND {_NOT_CLOSED}",
                _thresholds((None, "green"), (1, "orange")),
            )
        )
        .with_panel(_problem_count("未销号问题", _NOT_CLOSED, "red").description("待解决、待销号与逾期的问题: 只有责任人销号才算解决"))
        .with_panel(_problem_count("待销号", f"status = '{AWAITING}'", "blue").description("已复工等待责任人确认销号的问题"))
        .with_panel(_problem_count("逾期问题", f"status = '{OVERDUE}'", "red").description("超过限期仍未销号的问题"))
        .with_panel(
            # 15.4 % at the end of February is on time (序时进度 16.2 %): the gauge shows
            # completion against 序时进度 of the months reported, coloured as the
            # bulletin colours it, and the stat beside it the two figures themselves.
            gauge.Panel()
            .title("计划完成率对比序时进度(全市)")
            .description("年度计划完成率 ÷ 已报送月份的序时进度: 100% 即与序时同步; 绿色符合序时, 橙色滞后, 红色严重滞后")
            .datasource(DATASOURCE)
            .with_target(InfluxQL(f"SELECT last(pace_pct) AS \"对比序时进度\" FROM {M.COMPLETION} WHERE unit_type = 'city'"))
            .unit("percent")
            .min(0)
            .max(150)
            .thresholds(_thresholds((None, "red"), (FAR_BEHIND_PCT, "orange"), (ON_PACE_PCT, "green")))
            .height(8)
            .span(3)
        )
        .with_panel(
            stat.Panel()
            .title("年度计划完成率与序时进度(全市)")
            .datasource(DATASOURCE)
            .with_target(
                InfluxQL(
                    f"SELECT last(completion_pct) AS \"年度计划完成率\", last(time_elapsed_pct) AS \"序时进度\", last(yoy_pct) AS \"同比增长\" "
                    f"FROM {M.COMPLETION} WHERE unit_type = 'city'"
                )
            )
            .unit("percent")
            .decimals(1)
            .height(8)
            .span(3)
        )
        .with_panel(
            table.Panel()
            .title("各区县计划完成率")
            .datasource(DATASOURCE)
            .with_target(
                InfluxQL(
                    f"SELECT last(completion_pct) AS \"完成率\", last(pace_pct) AS \"对比序时进度\", last(yoy_pct) AS \"同比增长\", "
                    f"last(completed_wan) AS \"已完成(万元)\", last(plan_wan) AS \"年度计划(万元)\", last(months) AS \"统计月份\" "
                    f"FROM {M.COMPLETION} WHERE unit_type = 'district' GROUP BY unit"
                ).table()
            )
            .height(8)
            .span(6)
        )
        .with_panel(
            timeseries.Panel()
            .title("全部项目日用电量与基线 (kWh, 已判定日)")
            .datasource(DATASOURCE)
            .with_target(InfluxQL(f"SELECT kwh AS \"日用电量\", baseline_kwh AS \"基线\" FROM {M.ENERGY_DAILY} WHERE $timeFilter AND unit_type = 'city'"))
            .unit("kwatth")
            .height(8)
            .span(12)
        )
        .with_panel(
            geomap.Panel()
            .title("项目分布(按最新状态着色)")
            .datasource(DATASOURCE)
            .with_target(InfluxQL(f"SELECT last(lat) AS latitude, last(lon) AS longitude, last(project_name) AS \"项目名称\" FROM {M.PROJECT} GROUP BY {M.TAG_PROJECT}").table().ref_id("A"))
            .with_target(InfluxQL(_LATEST_STATES).table().ref_id("B"))
            # One row per project: where it is (A) joined with its latest state (B).
            .with_transformation(DataTransformerConfig(id_val="joinByField", options={"byField": M.TAG_PROJECT, "mode": "outer"}))
            .layers(
                [
                    MapLayerOptions()
                    .type("markers")
                    .name("项目")
                    .location(FrameGeometrySource().mode(FrameGeometrySourceMode.COORDS).latitude("latitude").longitude("longitude"))
                    .config({"showLegend": True, "style": {"color": {"field": "state", "fixed": "green"}, "size": {"fixed": 6}}})
                    .tooltip(True)
                ]
            )
            .mappings([STATE_MAPPINGS])
            .height(12)
            .span(12)
        )
        .with_panel(
            _problem_table(
                "需要关注的项目(未销号问题)",
                "district AS \"区县\", leader AS \"责任领导\", department AS \"责任部门\", due AS \"限期\", detail AS \"说明\"",
                f"{_NOT_CLOSED} GROUP BY {M.TAG_PROJECT}, problem_id",
            ).height(12)
        )
    )
    return board


def _status_cells(mappings: ValueMap) -> list[DynamicConfigValue]:
    """A status column in Chinese, coloured by its mapping."""
    return [DynamicConfigValue("mappings", [mappings]), DynamicConfigValue("custom.cellOptions", TableColorTextCellOptions())]


def _problem_table(title: str, columns: str, where_group: str) -> table.Panel:
    """Problems of the ledger: when, what opened each and its status and category in
    Chinese, then ``columns``; ``where_group`` is the WHERE and GROUP BY clauses."""
    return (
        table.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(
                f"SELECT opened_day AS \"发现日期\", kind AS \"来源\", status AS \"状态\", category AS \"类别\", {columns} "
                f"FROM {M.PROBLEM} WHERE {where_group}"
            ).table()
        )
        .override_by_name("来源", [DynamicConfigValue("mappings", [PROBLEM_KIND_MAPPINGS])])
        .override_by_name("状态", _status_cells(PROBLEM_STATUS_MAPPINGS))
        .span(12)
    )


def _ranking_table(unit_type: str, title: str) -> table.Panel:
    return (
        table.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .with_target(
            InfluxQL(
                f"SELECT last(rank) AS \"排名\", last(score) AS \"得分\", last(completion_pct) AS \"计划完成率%\", "
                f"last(start_rate) AS \"开工率\", last(stalled_share) AS \"停工天数占比\", last(golden_snail) AS \"金蜗牛\" "
                f"FROM {M.RANKING} WHERE unit_type = '{unit_type}' AND period = '$period' GROUP BY unit"
            ).table()
        )
        .override_by_name("金蜗牛", [DynamicConfigValue("mappings", [SNAIL_MAPPINGS])])
        .height(10)
        .span(8)
    )


def ranking() -> dashboard.Dashboard:
    """一屏晾晒: the period's ranking of districts, zones and departments, and the trend."""
    period = (
        dashboard.QueryVariable("period")
        .label("期间")
        .datasource(DATASOURCE)
        .query(f"SHOW TAG VALUES FROM {M.RANKING} WITH KEY = period")
        .sort(VariableSort.ALPHABETICAL_DESC)
        .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
    )
    board = (
        dashboard.Dashboard("一屏晾晒 · 区县/片区/部门排名")
        .uid(RANKING_UID)
        .tags(["sitepulse"])
        .time("now-90d", "now")
        .refresh("5m")
        .with_variable(period)
        .with_panel(_ranking_table("district", "区县排名"))
        .with_panel(_ranking_table("zone", "片区排名"))
        .with_panel(_ranking_table("department", "责任部门排名"))
    )
    for unit_type, title in (("district", "区县名次走势"), ("zone", "片区名次走势"), ("department", "部门名次走势")):
        board = board.with_panel(
            timeseries.Panel()
            .title(title)
            .datasource(DATASOURCE)
            .with_target(InfluxQL(f"SELECT last(rank) FROM {M.RANKING} WHERE unit_type = '{unit_type}' AND $timeFilter GROUP BY time(1d), unit fill(none)").alias("$tag_unit"))
            .decimals(0)
            .height(8)
            .span(8)
        )
    return board


def short_digest(text: str, length: int = 12) -> str:
    """An ASCII stand-in for a Chinese name in Grafana uids (ASCII, at most 40 characters)."""
    return hashlib.sha1(text.encode()).hexdigest()[:length]


def district_board_uid(district: str) -> str:
    return f"sitepulse-p-{short_digest(district)}"


def department_board_uid(department: str) -> str:
    return f"sitepulse-pdept-{short_digest(department)}"


def _influx_string(text: str) -> str:
    """``text`` inside a single-quoted InfluxQL string, as a board variable puts it there."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


def project(district_only: str | None = None) -> dashboard.Dashboard:
    """The drill-down: district, then project. With ``district_only``, one district's own
    copy (its folder admits only that district's team and the city's supervisors): the
    district is fixed and hidden, its projects are the choice."""
    if district_only is None:
        district = (
            dashboard.QueryVariable("district")
            .label("区县")
            .datasource(DATASOURCE)
            .query(f"SHOW TAG VALUES FROM {M.PROJECT} WITH KEY = {M.TAG_DISTRICT}")
            .sort(VariableSort.ALPHABETICAL_ASC)
            .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
        )
        uid, title = PROJECT_UID, "项目详情 · 用电与进度"
    else:
        district = dashboard.ConstantVariable("district").value(_influx_string(district_only))
        uid, title = district_board_uid(district_only), f"项目详情 · {district_only}"
    project_id = (
        dashboard.QueryVariable("project")
        .label("项目")
        .datasource(DATASOURCE)
        .query(f"SHOW TAG VALUES FROM {M.PROJECT} WITH KEY = {M.TAG_PROJECT} WHERE {M.TAG_DISTRICT} = '$district'")
        .sort(VariableSort.ALPHABETICAL_ASC)
        .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
    )
    return _drill_down(uid, title, [district, project_id])


def department_project(department: str, projects: Sequence[tuple[str, str]]) -> dashboard.Dashboard:
    """One department's own drill-down (its folder admits only its team and the city's
    supervisors): the choice is fixed to ``projects`` (id, name), those it is responsible
    for or cooperates on. The registry says which when the boards are provisioned, and the
    department is a field, not a tag, so no variable query could select them."""
    choices = ",".join(f"{pid} {name} : {_influx_string(pid)}".replace(",", "\\,") for pid, name in projects)
    project_id = dashboard.CustomVariable("project").label("项目").values(choices)
    return _drill_down(department_board_uid(department), f"项目详情 · {department}", [project_id])


def _drill_down(uid: str, title: str, variables: Sequence[cogbuilder.Builder[VariableModel]]) -> dashboard.Dashboard:
    """The panels of one project (``$project``): who is responsible for it, power against
    baseline, the index with its thresholds, the state timeline, plan nodes, investment,
    problems."""
    where_project = f"{M.TAG_PROJECT} = '$project'"
    index_thresholds = _thresholds((None, "red"), (STALLED_BELOW, "orange"), (STARTED_ABOVE, "green"), (STABLE_AT, "blue"))
    board = dashboard.Dashboard(title).uid(uid).tags(["sitepulse"]).time("now-60d", "now").refresh("1m")
    for variable in variables:
        board = board.with_variable(variable)
    return (
        board
        .with_panel(
            table.Panel()
            .title("项目登记信息")
            .datasource(DATASOURCE)
            .with_target(
                InfluxQL(
                    f"SELECT last(project_name) AS \"项目名称\", last(leader) AS \"责任领导\", last(leader_title) AS \"领导职务\", "
                    f"last(department) AS \"责任部门\", last(partner_departments) AS \"配合部门\", last(owner_person) AS \"现场责任人\", "
                    f"last(annual_plan_wan) AS \"年度计划(万元)\", last(planned_start) AS \"计划开工\" FROM {M.PROJECT} WHERE {where_project}"
                ).table()
            )
            .height(4)
            .span(24)
        )
        .with_panel(
            table.Panel()
            .title("现场视频")
            .datasource(DATASOURCE)
            .with_target(InfluxQL(f"SELECT last(video_url) AS \"现场视频\" FROM {M.PROJECT} WHERE {where_project}").table())
            .override_by_name(
                "现场视频",
                [DynamicConfigValue("links", [{"title": "打开现场直播", "url": "${__value.raw}", "targetBlank": True}])],
            )
            .no_value("该项目未登记现场视频")
            .height(4)
            .span(24)
        )
        .with_panel(
            timeseries.Panel()
            .title("日用电量与基线 (kWh)")
            .datasource(DATASOURCE)
            .with_target(InfluxQL(f"SELECT last({D.KWH}) AS \"日用电量\", last({D.BASELINE_KWH}) AS \"基线\" FROM {M.POWER_DAILY} WHERE {where_project} AND $timeFilter GROUP BY time(1d) fill(none)"))
            .unit("kwatth")
            .height(8)
            .span(12)
        )
        .with_panel(
            timeseries.Panel()
            .title("活跃指数 (停工线 0.2 / 开工线 0.3)")
            .datasource(DATASOURCE)
            .with_target(InfluxQL(f"SELECT last({D.ACTIVITY_INDEX}) AS \"活跃指数\" FROM {M.POWER_DAILY} WHERE {where_project} AND $timeFilter GROUP BY time(1d) fill(none)"))
            .thresholds(index_thresholds)
            .thresholds_style(GraphThresholdsStyleConfig().mode(GraphTresholdsStyleMode.LINE))
            .min(0)
            .max(1.5)
            .height(8)
            .span(12)
        )
        .with_panel(
            statetimeline.Panel()
            .title("每日状态")
            .datasource(DATASOURCE)
            .with_target(InfluxQL(f"SELECT {D.STATE} AS \"状态\" FROM {M.POWER_DAILY} WHERE {where_project} AND {D.MACHINE_STATE} =~ /./ AND $timeFilter"))
            .mappings([STATE_MAPPINGS])
            .height(5)
            .span(24)
        )
        .with_panel(
            # 一图五表: the plan nodes in planned order, each done, on schedule or behind as
            # the worker judged it on the newest day (no $timeFilter: a plan loaded long ago still holds).
            table.Panel()
            .title("计划节点 (一图五表)")
            .datasource(DATASOURCE)
            .with_target(
                InfluxQL(
                    f"SELECT last(planned_date) AS \"计划日期\", last(done_date) AS \"完成日期\", last(status) AS \"状态\", "
                    f"last(days_behind) AS \"滞后天数\" FROM {M.PLAN_NODE} WHERE {where_project} GROUP BY node"
                ).table()
            )
            .with_transformation(
                DataTransformerConfig(
                    id_val="organize",
                    options={"excludeByName": {"Time": True}, "renameByName": {"node": "节点"}, "indexByName": {"node": 0, "计划日期": 1, "完成日期": 2, "状态": 3, "滞后天数": 4}},
                )
            )
            .with_transformation(DataTransformerConfig(id_val="sortBy", options={"fields": {}, "sort": [{"field": "计划日期", "desc": False}]}))
            .override_by_name("完成日期", [DynamicConfigValue("mappings", [NOT_DONE])])
            .override_by_name("状态", _status_cells(NODE_STATUS_MAPPINGS))
            .no_value("该项目未登记计划节点")
            .height(8)
            .span(12)
        )
        .with_panel(
            # The 作战挂图 as a timeline: each node's standing on every judged day, a row a node.
            statetimeline.Panel()
            .title("计划节点时间线")
            .datasource(DATASOURCE)
            .with_target(
                InfluxQL(
                    f"SELECT last(status) AS \"状态\" FROM {M.PLAN_NODE} WHERE {where_project} AND $timeFilter "
                    f"GROUP BY time(1d), node fill(none)"
                )
            )
            .mappings([NODE_STATUS_MAPPINGS])
            .height(6)
            .span(24)
        )
        .with_panel(
            timeseries.Panel()
            .title("计划节点滞后天数")
            .description("每个已判定日最滞后节点的滞后天数: 0 即全部节点按计划")
            .datasource(DATASOURCE)
            .with_target(InfluxQL(f"SELECT last(days_behind) AS \"滞后天数\" FROM {M.SCHEDULE} WHERE {where_project} AND $timeFilter GROUP BY time(1d) fill(none)"))
            .decimals(0)
            .min(0)
            .height(8)
            .span(12)
        )
        .with_panel(
            timeseries.Panel()
            .title("完成投资 (万元)")
            .datasource(DATASOURCE)
            .with_target(InfluxQL(f"SELECT amount_wan AS \"当月完成\" FROM {M.INVESTMENT} WHERE {where_project} AND $timeFilter").ref_id("A"))
            .with_target(InfluxQL(f"SELECT cumulative_sum(amount_wan) AS \"区间累计完成\" FROM {M.INVESTMENT} WHERE {where_project} AND $timeFilter").ref_id("B"))
            .unit("none")
            .height(8)
            .span(12)
        )
        .with_panel(
            _problem_table(
                "问题台账",
                "department AS \"责任部门\", due AS \"限期\", detail AS \"说明\", measures AS \"措施\", note AS \"销号说明\"",
                f"{where_project} GROUP BY problem_id",
            ).height(8)
        )
    )


def all_boards() -> list[dashboard.Dashboard]:
    return [overview(), ranking(), project()]


def board_json(board: dashboard.Dashboard) -> str:
    return JSONEncoder(sort_keys=True, indent=2, ensure_ascii=False).encode(board.build())
