"""Monthly investment figures loaded by hand from a CSV (``project_id,period,amount_wan``):
last year's months for year-on-year growth, or history a site never sent. Each row is
checked like a site's report and must name a registered project; the file loads whole
or not at all, as one investment report per row arriving now, and the load is audited
like ``registry load``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from ..runtime.settings import Settings
from .audit import record_audit
from .contract import REJECTION_REASONS, InvestmentReport
from .publisher import SitePublisher
from .registry import numbered_rows, read_registry_topic
from .topics import ensure_topics
from .validation import Rejection, check_record

COLUMNS = ("project_id", "period", "amount_wan")


class InvestmentFileError(ValueError):
    """The file cannot be loaded; the message lists every bad line (Chinese, for operators)."""


def read_investment_csv(path: Path, registered: set[str], now: datetime) -> list[InvestmentReport]:
    """Every row as a report arriving ``now``, or InvestmentFileError naming each bad row."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reports, problems, seen = [], [], {}
        for line_number, row in numbered_rows(handle, COLUMNS, "投资数据表", InvestmentFileError):
            project_id, period = (row.get("project_id") or "").strip(), (row.get("period") or "").strip()
            try:
                amount = float((row.get("amount_wan") or "").strip())
            except ValueError:
                problems.append(f"第 {line_number} 行: amount_wan 应为数字, 实为「{row.get('amount_wan') or ''}」")
                continue
            outcome = check_record(InvestmentReport(project_id, period, amount, now), now)
            if isinstance(outcome, Rejection):
                problems.append(f"第 {line_number} 行: {REJECTION_REASONS[outcome.reason]} ({outcome.detail})")
                continue
            if project_id not in registered:
                problems.append(f"第 {line_number} 行: 项目 {project_id} 不在登记表中")
                continue
            if (project_id, period) in seen:
                problems.append(f"第 {line_number} 行: {project_id} {period} 与第 {seen[(project_id, period)]} 行重复")
                continue
            seen[(project_id, period)] = line_number
            reports.append(outcome)
    if problems:
        raise InvestmentFileError("投资数据表有误, 未加载:\n" + "\n".join(problems))
    if not reports:
        raise InvestmentFileError("投资数据表没有数据行, 未加载")
    return reports


def load_investment_file(settings: Settings, path: Path, reason: str) -> int:
    registered = {entry.project_id for entry in read_registry_topic(settings)}
    reports = read_investment_csv(path, registered, datetime.now(settings.tz))
    ensure_topics(settings)
    with SitePublisher(settings) as publisher:
        for report in reports:
            publisher.publish(report)
        periods = sorted({report.period for report in reports})
        subject = f"{path.name}: {len(reports)} 条, {periods[0]}..{periods[-1]}"
        record_audit(settings, publisher, "investment_load", subject, reason)
    return len(reports)
