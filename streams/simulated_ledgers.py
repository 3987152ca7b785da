"""The simulated sites' other two ledgers, for the demo (year-to-date mode): plan nodes
(细账), a few of them behind, and problems filed by people (难账) of several categories,
some past their deadline, some closed. Seeded like the scenario, so the same seed gives
the same ledgers."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from .contract import PROBLEM_CATEGORIES, NodeRecord
from .simulator import Scenario

_DEPARTMENTS_SOLVING = {"征迁": "区征收办", "审批": "市行政审批局", "资金": "市财政局", "要素保障": "市自然资源和规划局", "施工组织": "市住建局", "其他": "重大项目专班"}
_ISSUES = {
    "征迁": ("红线内 3 户未签约, 影响进场", "约谈征迁主体, 倒排签约时间表"),
    "审批": ("施工许可证办理滞后", "并联审批, 专人代办"),
    "资金": ("专项债资金未到位", "协调财政提前拨付"),
    "要素保障": ("用地指标未落实", "调剂年度用地指标"),
    "施工组织": ("劳动力不足, 夜间施工受限", "增加作业班组, 办理夜间施工许可"),
    "其他": ("管线迁改协调不畅", "召开专题协调会"),
}


@dataclass(frozen=True)
class SimulatedProblem:
    project_id: str
    category: str
    department: str
    detail: str
    measures: str
    opened: date
    due: date
    closed: date | None  # closed by a person that day, or still open
    note: str = ""


def plan_nodes(scenario: Scenario) -> tuple[list[NodeRecord], list[NodeRecord]]:
    """(plan, done): every project's 主体结构封顶 and 竣工, a new project's 开工; about one
    封顶 in three still undone after its date (behind), the others done within days."""
    rng = random.Random(scenario.seed * 7919 + 5)
    end = scenario.start + timedelta(days=scenario.days)
    plan, done = [], []
    for project in scenario.projects:
        pid = project.entry.project_id
        if project.entry.kind == "new":
            start = project.entry.planned_start
            plan.append(NodeRecord(pid, "开工", planned_date=start))
            if start < end and not project.delayed:
                done.append(NodeRecord(pid, "开工", done_date=start))
        topping = scenario.start + timedelta(days=rng.randint(-20, max(scenario.days - 1, 1)))
        plan.append(NodeRecord(pid, "主体结构封顶", planned_date=topping))
        finished = topping + timedelta(days=rng.randint(-2, 4))
        if rng.random() > 0.35 and finished < end:
            done.append(NodeRecord(pid, "主体结构封顶", done_date=finished))
        plan.append(NodeRecord(pid, "竣工", planned_date=date(scenario.start.year + 1, rng.randint(6, 12), 28)))
    return plan, done


def filed_problems(scenario: Scenario) -> list[SimulatedProblem]:
    """About one project in three has a problem filed in the weeks before the start:
    every category appears; some are closed with a note, the rest are open, and those
    whose deadline has passed are 逾期."""
    rng = random.Random(scenario.seed * 7919 + 6)
    chosen = [p for p in scenario.projects if rng.random() < 0.35] or scenario.projects[:1]
    problems = []
    for n, project in enumerate(chosen):
        category = PROBLEM_CATEGORIES[n % len(PROBLEM_CATEGORIES)]
        detail, measures = _ISSUES[category]
        opened = scenario.start - timedelta(days=rng.randint(5, 25))
        due = opened + timedelta(days=rng.randint(7, 30))
        closed = opened + timedelta(days=rng.randint(3, 20)) if rng.random() < 0.45 else None
        if closed is not None and closed >= scenario.start + timedelta(days=scenario.days):
            closed = None  # not yet: the scenario's last day is today
        if closed is None and n % 2 == 0:
            due = opened + timedelta(days=3)  # a short deadline, already missed: 逾期
        note = "问题已协调解决, 现场核实" if closed else ""
        problems.append(SimulatedProblem(project.entry.project_id, category, _DEPARTMENTS_SOLVING[category], detail, measures, opened, due, closed, note))
    return problems
