"""The wire contract, declared once: topics, record types, dead-letter reasons and the
InfluxDB measurements. Everything else imports these names."""

from __future__ import annotations

import operator
from datetime import date, datetime, timedelta
from typing import Literal

import msgspec

# --- Kafka topics ---------------------------------------------------------------------

POWER_TOPIC = "sitepulse.power"
INVESTMENT_TOPIC = "sitepulse.investment"
REGISTRY_TOPIC = "sitepulse.registry"
DLQ_TOPIC = "sitepulse.dlq"
EVENTS_TOPIC = "sitepulse.events"
STOPPAGES_TOPIC = "sitepulse.stoppages"  # compacted, key "project_id/from_day"
AUDIT_TOPIC = "sitepulse.audit"  # who changed what and why (operator commands); kept
# compacted, key "project_id/node/plan" or "project_id/node/done": a node's plan and its
# completion are kept apart, so loading the plan again never forgets a node done
NODES_TOPIC = "sitepulse.nodes"

# Kafka headers on a dead-letter record; its key and value are the original bytes.
DLQ_HEADER_REASON = "sitepulse.reason"
DLQ_HEADER_DETAIL = "sitepulse.detail"
DLQ_HEADER_SOURCE = "sitepulse.source"
DLQ_HEADER_RECEIVED_AT = "sitepulse.received_at"

MAX_INTERVAL_S = 86_400
MAX_MESSAGE_BYTES = 64 * 1024  # a reading is ~200 bytes; anything near this is not one
# A batch stays under Kafka's default message.max.bytes (1,048,588) with room for headers.
MAX_BATCH_BYTES = 1_000_000
MAX_BATCH_READINGS = 2_000  # ~300 KB: a week of three 15-minute meters
MAX_SERIES_POINTS = 2_976  # a 31-day month of one 15-minute meter (~60 KB as columns)
MAX_CLOCK_AHEAD_S = 600  # a timestamp this far ahead of the receiver's clock is refused


# --- Records --------------------------------------------------------------------------


class PowerReading(msgspec.Struct, tag_field="type", tag="power", frozen=True, gc=False):
    """Energy of one meter interval; ``kwh`` is the energy of the interval ending at ``ts``.
    Not tracked by the garbage collector (``gc=False``), nor is ``MeterInterval``: their
    fields are texts, numbers and times, which make no cycle, and a worker decodes
    millions of them (decoding ~11 % faster, fewer collections)."""

    project_id: str
    meter_id: str
    ts: datetime
    kwh: float
    interval_s: int
    kwh_total: float | None = None
    kw: float | None = None
    sig: str | None = None  # HMAC-SHA256 with the project's key (streams/signing.py)


class InvestmentReport(msgspec.Struct, tag_field="type", tag="investment", frozen=True):
    """Investment completed in one month (``period`` = YYYY-MM), in 万元."""

    project_id: str
    period: str
    amount_wan: float
    reported_at: datetime


class MeterInterval(msgspec.Struct, frozen=True, gc=False):
    """A reading inside a ``PowerBatch``: a ``PowerReading`` less the batch's project."""

    meter_id: str
    ts: datetime
    kwh: float
    interval_s: int
    kwh_total: float | None = None
    kw: float | None = None
    sig: str | None = None


class PowerBatch(msgspec.Struct, tag_field="type", tag="power_batch", frozen=True):
    """Many readings of one project in one message: a metering platform's push, a meter's
    backfill, a replayed day. Each reading is checked (and signed) on its own; one bad
    reading is dead-lettered alone. Carrying many readings per message is what lets one
    worker go past the per-message cost of the stream framework (docs/performance.md)."""

    project_id: str
    readings: list[MeterInterval]

    def expand(self) -> list[PowerReading]:
        project_id = self.project_id
        return [
            PowerReading(project_id, r.meter_id, r.ts, r.kwh, r.interval_s, r.kwh_total, r.kw, r.sig) for r in self.readings
        ]

    def reading(self, index: int) -> PowerReading:
        """Reading ``index`` as the site sent it (signed, when it was)."""
        r = self.readings[index]
        return PowerReading(self.project_id, r.meter_id, r.ts, r.kwh, r.interval_s, r.kwh_total, r.kw, r.sig)

    @classmethod
    def of(cls, project_id: str, readings: list[PowerReading]) -> PowerBatch:
        return cls(
            project_id, [MeterInterval(r.meter_id, r.ts, r.kwh, r.interval_s, r.kwh_total, r.kw, r.sig) for r in readings]
        )


class PowerSeries(msgspec.Struct, tag_field="type", tag="power_series", frozen=True):
    """One meter's consecutive intervals in one message, as columns: the load curve a
    metering platform keeps (96 intervals a day at 15 minutes). Point ``i`` is the reading
    ending at ``first_ts + i × interval_s``; a None in ``kwh`` is an interval with no
    reading. ``kwh_total`` and ``kw``, when present, are columns of the same length.
    Sent as columns, a reading is three numbers rather than an object with a timestamp
    text, which is what lets a worker take a year's backlog at the storage's pace
    (docs/performance.md). One signature covers the whole series
    (``streams/signing.py``); each point is checked on its own and a bad one is
    dead-lettered alone, as a single ``power`` record."""

    project_id: str
    meter_id: str
    first_ts: datetime
    interval_s: int
    kwh: list[float | None]
    kwh_total: list[float | None] | None = None
    kw: list[float | None] | None = None
    sig: str | None = None

    def point(self, index: int) -> PowerReading | None:
        """Point ``index`` as a single reading (unsigned: the series' signature covers
        the series), None where the series has no reading."""
        kwh = self.kwh[index]
        if kwh is None:
            return None
        ts = self.first_ts + timedelta(seconds=index * self.interval_s)
        return PowerReading(self.project_id, self.meter_id, ts, kwh, self.interval_s, _at(self.kwh_total, index), _at(self.kw, index))

    def points(self) -> list[PowerReading]:
        return [reading for index in range(len(self.kwh)) if (reading := self.point(index)) is not None]

    @classmethod
    def runs_of(cls, readings: list[PowerReading]) -> list[PowerSeries]:
        """Readings of one project as series: one per meter and run of readings at one
        interval on one grid, holes filled with None. A reading that falls off its
        meter's run (another interval, off the grid, a repeated time) starts another."""
        by_meter: dict[str, list[PowerReading]] = {}
        for reading in readings:
            by_meter.setdefault(reading.meter_id, []).append(reading)
        found = []
        for meter_id in sorted(by_meter):
            run: list[PowerReading] = []
            place = 0  # the last reading's place in the run
            step = timedelta(0)  # the run's interval
            for reading in sorted(by_meter[meter_id], key=reading_time):  # (stable: a repeated time keeps its order)
                if run:
                    # Most readings follow the last one by one interval: no division.
                    last = run[-1]
                    if reading.interval_s == last.interval_s and reading.ts - last.ts == step:
                        steps: int | None = place + 1
                    else:
                        steps = _place_in(run, reading)
                    if steps is None or steps >= MAX_SERIES_POINTS:
                        found.append(cls._of_run(run))
                        run, steps = [], 0
                    place = steps
                if not run:
                    step = timedelta(seconds=reading.interval_s)
                run.append(reading)
            found.append(cls._of_run(run))
        return found

    @classmethod
    def _of_run(cls, run: list[PowerReading]) -> PowerSeries:
        first, interval = run[0], timedelta(seconds=run[0].interval_s)
        length = (run[-1].ts - first.ts) // interval + 1
        columns: dict[str, list[float | None]]
        if length == len(run):  # no hole (a run's places only go up): the columns as they come
            columns = {"kwh": [r.kwh for r in run], "kwh_total": [r.kwh_total for r in run], "kw": [r.kw for r in run]}
        else:
            columns = {"kwh": [None] * length, "kwh_total": [None] * length, "kw": [None] * length}
            for reading in run:
                index = (reading.ts - first.ts) // interval
                columns["kwh"][index] = reading.kwh
                columns["kwh_total"][index] = reading.kwh_total
                columns["kw"][index] = reading.kw
        optional = {name: column for name, column in columns.items() if name != "kwh" and any(v is not None for v in column)}
        return cls(first.project_id, first.meter_id, first.ts, first.interval_s, columns["kwh"], optional.get("kwh_total"), optional.get("kw"))


reading_time = operator.attrgetter("ts")  # a reading's time, as a sort key


def _at(column: list[float | None] | None, index: int) -> float | None:
    return None if column is None else column[index]


def _place_in(run: list[PowerReading], reading: PowerReading) -> int | None:
    """Where ``reading`` goes on ``run``'s grid, after its last reading, exactly; None
    when it does not (a reading a fraction of a second off the grid starts a run of its
    own rather than take a neighbour's place)."""
    first, last = run[0], run[-1]
    if reading.interval_s != first.interval_s or reading.ts <= last.ts:
        return None
    steps, rest = divmod(reading.ts - first.ts, timedelta(seconds=first.interval_s))
    return None if rest else steps


Record = PowerReading | InvestmentReport | PowerBatch | PowerSeries
RECORD_TOPICS: dict[type, str] = {
    PowerReading: POWER_TOPIC, PowerBatch: POWER_TOPIC, PowerSeries: POWER_TOPIC, InvestmentReport: INVESTMENT_TOPIC
}

ProjectLevel = Literal["city", "district", "town"]
ProjectKind = Literal["new", "continuing"]


class RegistryEntry(msgspec.Struct, frozen=True):
    """One row of the project registry (CSV columns in this order)."""

    project_id: str
    name: str
    district: str
    zone: str
    department: str
    level: ProjectLevel
    kind: ProjectKind
    leader: str
    leader_phone: str
    data_owner: str
    annual_plan_wan: float
    planned_start: date
    capacity_kva: float
    lat: float | None = None
    lon: float | None = None
    video_url: str | None = None  # the site's live camera (直播连线), if it has one
    total_investment_wan: float | None = None  # 总投资: completion since the project began is measured against it
    # 六个一: the person on site (一名责任人具体抓), who is paged with the leader; the
    # leader's title; the cooperating departments (一批部门配合), ";"-separated.
    owner_person: str | None = None
    owner_phone: str | None = None
    leader_title: str | None = None
    partner_departments: str | None = None
    # Spending that comes in large steps by nature (equipment bought at once, land paid
    # for in one sum): months without investment are not suspicious for it.
    investment_lumpy: bool = False

    @property
    def partners(self) -> list[str]:
        return [d.strip() for d in (self.partner_departments or "").split(";") if d.strip()]


REGISTRY_COLUMNS: tuple[str, ...] = RegistryEntry.__struct_fields__


class StoppageRecord(msgspec.Struct, frozen=True):
    """An approved stoppage (force majeure, ordered halt), days ``from_day``..``to_day``
    inclusive. Sent again with the same ``from_day`` it amends the earlier one."""

    project_id: str
    from_day: date
    to_day: date
    reason: str

    @property
    def key(self) -> bytes:
        return f"{self.project_id}/{self.from_day.isoformat()}".encode()


STOPPAGE_COLUMNS: tuple[str, ...] = StoppageRecord.__struct_fields__

AUDIT_ACTIONS = {
    "registry_load": "加载项目登记表",
    "stoppage_add": "停工备案",
    "problem_close": "问题销号",
    "investment_load": "加载投资历史数据",
    "nodes_load": "加载计划节点",
    "node_done": "报送节点完成",
    "problem_open": "问题交办",
    "report_send": "推送调度通报",
}


class AuditRecord(msgspec.Struct, frozen=True):
    """An operator command that changed state: who ran it, why, on what, and when."""

    action: Literal["registry_load", "stoppage_add", "problem_close", "investment_load", "nodes_load", "node_done", "problem_open", "report_send"]
    operator: str
    reason: str
    subject: str  # what it changed: a project, a problem, a registry file and its size
    at: datetime
    host: str = ""



class NodeRecord(msgspec.Struct, frozen=True):
    """A plan node (细账: 开工, 主体结构封顶, 竣工, 投产 or any name): its planned date, or
    the date it was done. Keyed so that a plan and a completion never replace each other."""

    project_id: str
    node: str
    planned_date: date | None = None
    done_date: date | None = None

    @property
    def key(self) -> bytes:
        return f"{self.project_id}/{self.node}/{'done' if self.done_date else 'plan'}".encode()


NODE_COLUMNS: tuple[str, ...] = ("project_id", "node", "planned_date")
PROBLEM_CATEGORIES: tuple[str, ...] = ("征迁", "审批", "资金", "要素保障", "施工组织", "其他")


# --- Dead-letter reasons (code -> what the data owner reads) -------------------------

REJECTION_REASONS: dict[str, str] = {
    "malformed_json": "不是合法的 JSON",
    "not_an_object": "记录不是 JSON 对象",
    "missing_field": "缺少必填字段",
    "wrong_type": "字段类型错误",
    "unknown_type": "未知的记录类型(type)",
    "bad_id": "项目编号或电表编号为空、过长或含控制字符",
    "timestamp_without_offset": "时间戳缺少时区偏移",
    "negative_kwh": "电量为负数",
    "bad_interval": "计量间隔(interval_s)不在 1 秒到 1 天之间",
    "bad_period": "投资期间(period)不是 YYYY-MM 格式",
    "negative_amount": "投资额为负数",
    "wrong_topic": "记录类型与所在主题不符",
    "too_late": "数据迟到超过宽限期, 当日指标已定稿",
    "oversized": "消息超过 64 KiB (批量或序列读数超过 1 MB), 不是一条读数",
    "bad_batch": "批量读数为空或超过 2000 条",
    "bad_series": "序列读数为空、超过 2976 个时段, 或各列长度不一致",
    "future_timestamp": "时间戳超前接收时间 10 分钟以上 (检查采集终端时钟)",
    "future_period": "投资期间晚于当前月份",
    "reported_before_period": "投资报送时间早于所报月份 (检查期间或报送时钟)",
    "unknown_project": "项目不在登记表中",
    "impossible_kwh": "电量超过该项目合同容量在此时段内可能的最大值",
    "missing_signature": "读数缺少签名 (sig)",
    "bad_signature": "签名无效: 不是本项目密钥签发, 或数据被改动",
}


# --- Events (state changes) for alerting and the report ----------------------------

EVENT_KINDS: dict[str, str] = {
    "started": "开工",
    "stalled": "停工",
    "resumed": "复工",
    "offline": "电表离线",
    "online": "电表恢复上报",
    "suspicious": "用电异常(疑似空转或数据造假)",
    "meter_reset": "电表读数回退(换表或清零)",
    "golden_snail": "金蜗牛(连续两期排名末位)",
    "problem_closed": "问题已销号",
    "problem_opened": "问题交办",
    "problem_overdue": "问题逾期未销号",
    "node_overdue": "计划节点逾期",
    "bulletin": "半月调度通报",
}


def event_id(kind: str, *parts: object) -> str:
    """An event's id: its kind and what makes the change the same change when it is
    found again (project, meter, day, rule...), ``None`` parts left out. The one place
    the format is spelled: receivers dedupe on it, problems are opened once by it."""
    return ":".join([kind, *(str(part) for part in parts if part is not None)])


class ProjectEvent(msgspec.Struct, frozen=True):
    """A change worth telling someone about; ``event_id`` is the same every time the
    same change is found again (after a restart or a replay), so receivers can dedupe."""

    event_id: str
    kind: str
    project_id: str
    at: datetime  # event time: the stream's clock when the change was found
    day: date | None = None  # the local day it concerns (day-level changes)
    meter_id: str | None = None
    detail: str = ""
    leader: str | None = None
    district: str | None = None
    data_owner: str | None = None
    since: datetime | None = None  # meter events: the last reading before the change
    problem_id: str | None = None  # problem_opened / _closed / _overdue: the problem
    # problem_opened: what people filed (难账); node_overdue: node carries the node's name
    category: str | None = None
    department: str | None = None  # who must solve it
    measures: str = ""
    due: date | None = None
    node: str | None = None
    owner_person: str | None = None  # the person on site (六个一), paged with the leader
    unit_type: str | None = None  # golden_snail: the ranked unit (district/zone/department)
    unit: str | None = None
    period: str | None = None  # golden_snail: the period label, e.g. 2026-03-H1
    reason: str | None = None  # suspicious: which rule found it (SUSPICION_REASONS)


# What each suspicion rule found (``agents.core.suspicion.Reason``), as supervisors read it.
SUSPICION_REASONS: dict[str, str] = {
    "exact_flat": "读数完全恒定",
    "constant_load": "疑似空转(负荷昼夜恒定)",
    "copied": "疑似重复上报读数",
    "flat_investment": "有用电无投资进展",
    "idle_power": "报投资而用电闲置",
}


# --- InfluxDB measurements ------------------------------------------------------------


# Shard group duration of sitepulse's database. The boards read daily points (one per
# project and day) over ranges up to a year; InfluxDB opens every series in every shard
# the range touches, so with the 7-day default a year of overview panels scans 52 shards
# per series (0.4-0.9 s measured) and with one-year shards a single one (30-50 ms). A
# city's raw readings (~15M a year) sit well within one shard. Used when the database or
# bucket is created (embedded influxd, the worker on 1.x, deploy/influxdb for 2.x).
SHARD_DURATION = "52w"


class Measurement:
    """Measurement and tag names in InfluxDB; boards, export and sink use these."""

    POWER_READING = "power_reading"  # tags: project_id, meter_id; fields: ReadingField
    # tag: project_id; one point per project and local day; fields: DailyField (energy,
    # then the indicators once the day is complete)
    POWER_DAILY = "power_daily"
    # tag: project_id; one point per project and month, its newest revision (boards)
    INVESTMENT = "investment"
    # tag: project_id; one point per report as it arrived (fields amount_wan, period,
    # reported_at), stamped at its reported_at (+ a few ms per month, so months reported
    # together stay apart): every revision kept, so a figure can be made as known on any day
    INVESTMENT_REVISION = "investment_revision"
    PROJECT = "project"  # tags: project_id, district; the registry row
    # tags: unit_type, unit; plan completion of every roll-up, stamped at the newest judged day
    COMPLETION = "completion"
    STOPPAGE = "stoppage"  # tag: project_id; one point per stoppage, stamped at from_day
    # tags: project_id, problem_id; one point per problem, stamped at its opening day
    PROBLEM = "problem"
    EVENT = "event"  # tags: project_id, kind; every published event, for boards and reports
    # tags: project_id, district, leader; the state as of each judged day (alert rules read
    # the newest); fields: StatusField
    PROJECT_STATUS = "project_status"
    # tag: unit_type (city); one point per judged day: the sums of every project's judged
    # day (kwh, baseline_kwh, projects), so the overview's year view reads 365 points
    # instead of every project's days
    ENERGY_DAILY = "energy_daily"
    METER_STATUS = "meter_status"  # tags: project_id, meter_id, data_owner; offline 1/0
    RANKING = "ranking"  # tags: period, unit_type, unit; stamped at the period's first day
    AUDIT = "audit"  # tags: action, operator; one point per operator command, stamped when run
    # tags: project_id, node; planned_date or done_date stamped when recorded (read with
    # last(): a re-plan replaces the plan), and status / days_behind stamped at the
    # newest judged day by the review
    PLAN_NODE = "plan_node"
    # tags: project_id, district, leader; a project's schedule on the newest judged day: behind
    # (0/1), days_behind, node (the one most behind) — the overview counts projects behind
    SCHEDULE = "schedule"
    REPORT_DELIVERY = "report_delivery"  # tag: period; one point per period sent (report --send)

    TAG_PROJECT = "project_id"
    TAG_METER = "meter_id"
    TAG_DISTRICT = "district"
    TAG_LEADER = "leader"


class ReadingField:
    """Fields of ``power_reading`` (tags project_id, meter_id): one point per reading."""

    KWH = "kwh"  # energy of the interval ending at the point's time
    INTERVAL_S = "interval_s"
    KWH_TOTAL = "kwh_total"  # the meter's register, when it sends one
    KW = "kw"


class DailyField:
    """Fields of ``power_daily`` (tag project_id): a project's local day, stamped at its
    midnight. Energy fields are written as readings arrive; indicator fields once the
    day is judged (a day without ``machine_state`` is not judged yet)."""

    # energy
    KWH = "kwh"
    READINGS = "readings"
    METERS = "meters"
    MAX_GAP_S = "max_gap_s"
    INTERVAL_S = "interval_s"
    FLAT_LOAD = "flat_load"
    LOAD_CV = "load_cv"  # coefficient of variation of the day's 24 hourly energies
    DAY_NIGHT = "day_night"  # mean of 08-18 over mean of 22-06
    PROFILE = "profile"  # each whole meter's hours as 16-bit peak shares, ``meter=hex;...``
    DATE = "date"  # the local day spelled out, on energy and indicator points alike
    # indicators
    BASELINE_KWH = "baseline_kwh"
    ACTIVITY_INDEX = "activity_index"  # left out where undefined (offline, no baseline)
    STATE = "state"  # the day's label: DAY_STATE_NAMES
    MACHINE_STATE = "machine_state"
    IDLE_RUN = "idle_run"
    BUSY_RUN = "busy_run"
    STABLE = "stable"
    SUSPICIOUS = "suspicious"
    SUSPICION = "suspicion"  # the rule (SUSPICION_REASONS), empty when none
    SUSPICION_SINCE = "suspicion_since"
    LOOK = "look"
    OPEN_RUNS = "open_runs"  # suspicion runs open after the day, for a rebuilt timeline
    OFFLINE = "offline"
    WORKING_DAY = "working_day"


class StatusField:
    """Fields of ``project_status`` (tags project_id, district, leader): a project's
    state as of each judged day; alert rules read the newest."""

    STATE = "state"
    STALLED = "stalled"  # 1/0
    STALLED_WORKING_DAYS = "stalled_working_days"
    SUSPICIOUS = "suspicious"  # 1/0
    OFFLINE = "offline"  # 1/0
    DATE = "date"


# What a day's ``state`` (DayLabel) reads as, on boards, in the report and in the CLI.
DAY_STATE_NAMES: dict[str, str] = {
    "started": "在建",
    "stalled": "停工",
    "offline": "离线",
    "not_started": "未开工",
    "stoppage": "停工(已备案)",
}
# What a problem's status reads as (问题销号): open until a person closes it.
PROBLEM_STATUS_NAMES: dict[str, str] = {"open": "待解决", "awaiting_confirmation": "待销号", "overdue": "逾期", "closed": "已销号"}
# A problem the stream opened by itself, by the event kind that opened it.
PROBLEM_CATEGORY_NAMES: dict[str, str] = {"stalled": "停工", "suspicious": "用电异常", "node_overdue": "节点逾期"}
# A plan node against its date.
NODE_STATUS_NAMES: dict[str, str] = {"done": "已完成", "on_schedule": "按计划", "behind": "滞后"}
