"""The ``sitepulse`` command (click). Every sub-command reads one Settings object from
the environment / ``.env`` and passes it down."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO

import click
import msgspec
from tqdm import tqdm

from .agents.core.problems import RATE_GROUPS, STATUSES
from .agents.core.project import INVESTMENT_UNIT_TYPES, ROLLUP_TYPES
from .streams.contract import PROBLEM_CATEGORIES
from .runtime.settings import Settings


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj


class SitepulseGroup(click.Group):
    """Turns a refused or unreachable InfluxDB into one clear line for the operator
    instead of a traceback."""

    def invoke(self, ctx: click.Context):
        from .sink.influx import InfluxRejected, InfluxUnavailable

        try:
            return super().invoke(ctx)
        except InfluxRejected as exc:
            raise click.ClickException(f"InfluxDB 拒绝了请求: {exc}") from None
        except InfluxUnavailable as exc:
            raise click.ClickException(f"无法连接 InfluxDB ({_settings(ctx).influx_url}): {exc}") from None


@click.group(cls=SitepulseGroup)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """sitepulse: 重大项目动态监测用电 — 实时流处理。"""
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # kafka-python logs every connection at INFO; keep its warnings only.
    logging.getLogger("kafka").setLevel(logging.WARNING)
    ctx.obj = settings


@cli.command()
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run the Faust worker in the foreground (Ctrl-C stops it)."""
    import faust

    from .agents.app import build_app, tune_garbage_collector
    from .sink.influx import InfluxClient
    from .streams.registry import read_registry_topic
    from .streams.contract import POWER_TOPIC
    from .streams.topics import ensure_topics, partition_count

    settings = _settings(ctx)
    ensure_topics(settings)

    async def prepare_database() -> None:
        async with InfluxClient(settings) as client:
            await client.create_database()

    asyncio.run(prepare_database())
    # Not kept in a local: the registry agent replaces these entries as it reads the
    # topic, and a second copy of 100k registry rows would stay alive for nothing.
    app = build_app(settings, read_registry_topic(settings), partition_count(settings, POWER_TOPIC))
    tune_garbage_collector()
    faust.Worker(app, loglevel=settings.log_level, quiet=True).execute_from_commandline()


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--pack/--no-pack",
    default=True,
    show_default=True,
    help="send power readings as one batch message per project and local day (fast; the file must be in time order)",
)
@click.option(
    "--series",
    is_flag=True,
    help="with --pack, send each meter's day as one power_series message (its readings as columns: the fastest form)",
)
@click.pass_context
def replay(ctx: click.Context, file: Path, pack: bool, series: bool) -> None:
    """Publish a JSON-lines file of power and investment records (history backfill)."""
    from .streams.contract import PowerReading
    from .streams.publisher import DayPacker, SitePublisher
    from .streams.topics import ensure_topics
    from .streams.validation import decode_accepted_readings, decode_record

    if series and not pack:
        raise click.UsageError("--series 只能与 --pack 一起使用: 读数按项目和日打包后才组成序列")
    settings = _settings(ctx)
    ensure_topics(settings)
    published, rejected = 0, Counter()
    with SitePublisher(settings) as publisher, file.open("rb") as lines, tqdm(
        total=file.stat().st_size, unit="B", unit_scale=True, desc="回放", file=sys.stderr
    ) as progress:
        # The packer takes readings that decode_record accepted: they are not checked again.
        packer = DayPacker(publisher, settings.tz, as_series=series, checked=True) if pack else None
        name, number = file.name, 0
        for block in line_blocks(lines):
            progress.update(len(block))
            # The clock that refuses readings from the future, read once per block: a
            # new one per line made every reading's check miss its cache.
            now = datetime.now(timezone.utc)
            # A block of readings that all pass is packed at once; one that does not is
            # taken line by line, each refused line dead-lettered with its number.
            readings = decode_accepted_readings(block, now) if packer is not None else None
            if readings is not None:
                packer.add_all(readings)  # accepted: nothing of it is dead-lettered, so no source is named
                published += len(readings)
                number += block.count(b"\n")
                continue
            for line in block.split(b"\n")[:-1]:
                number += 1
                line = line.strip()
                if not line:
                    continue
                if packer is not None and isinstance(record := decode_record(line, now), PowerReading):
                    packer.add(record)
                    published += 1
                    continue
                outcome = publisher.publish_raw(line, source=f"replay:{name}:{number}")
                if outcome.rejection is None:
                    published += 1
                else:
                    rejected[outcome.rejection.reason] += 1
        if packer is not None:
            packer.flush()
    click.echo(f"已发布 {published} 条, 拒收 {sum(rejected.values())} 条 (已转入死信主题)")
    for reason, count in rejected.most_common():
        click.echo(f"  {reason}: {count}")


def line_blocks(file: BinaryIO, size: int = 1 << 20) -> Iterator[bytes]:
    """The file as blocks of about ``size`` bytes, each of whole lines and ending in a
    newline (one is added to a last line without)."""
    while block := file.read(size):
        if not block.endswith(b"\n"):
            block += file.readline()
            if not block.endswith(b"\n"):
                block += b"\n"
        yield block


@cli.group()
def export() -> None:
    """Export data read back from InfluxDB as CSV on stdout."""


@export.command("daily")
@click.option("--start", required=True, type=click.DateTime(["%Y-%m-%d"]), help="first local day, YYYY-MM-DD")
@click.option("--end", required=True, type=click.DateTime(["%Y-%m-%d"]), help="last local day, YYYY-MM-DD")
@click.pass_context
def export_daily(ctx: click.Context, start: datetime, end: datetime) -> None:
    """Daily kWh per project and local day."""
    from .export import daily_rows, write_daily_csv

    if end < start:
        raise click.BadParameter("--end 不能早于 --start")
    rows = asyncio.run(daily_rows(_settings(ctx), start.date(), end.date()))
    write_daily_csv(rows, sys.stdout)


@export.command("dlq")
@click.pass_context
def export_dlq(ctx: click.Context) -> None:
    """Dead letters as CSV (received_at,reason,topic,key,raw, then the reason in Chinese,
    the detail and the exact source) for the data owners to act on."""
    from .deadletters import read_dead_letters, write_dead_letters_csv

    count = write_dead_letters_csv(read_dead_letters(_settings(ctx)), sys.stdout)
    click.echo(f"死信 {count} 条", err=True)


@export.command("ranking")
@click.option("--period", required=True, help="2026-03-H1, 2026-03-H2, 2026-03 or 2026-03-01..2026-03-10")
@click.option("--bottom", type=int, help="金蜗牛: the last N places in two consecutive periods [default: SITEPULSE_SNAIL_BOTTOM]")
@click.pass_context
def export_ranking(ctx: click.Context, period: str, bottom: int | None) -> None:
    """Districts, zones and departments ranked for a period, with the 金蜗牛 marks."""
    from .agents.core.periods import PeriodError, parse_period
    from .reports import ranking, write_ranking_csv

    try:
        parsed = parse_period(period)
    except PeriodError as exc:
        raise click.BadParameter(str(exc), param_hint="--period") from None
    settings = _settings(ctx)
    if bottom is not None and bottom < 1:
        raise click.BadParameter("应为正整数", param_hint="--bottom")
    write_ranking_csv(asyncio.run(ranking(settings, parsed, bottom or settings.snail_bottom)), sys.stdout)


@cli.command()
@click.option("--period", help="2026-03-H1, 2026-03-H2, 2026-03 or 2026-03-01..2026-03-10")
@click.option("--from", "from_day", type=click.DateTime(["%Y-%m-%d"]), help="first day of a free period (with --to)")
@click.option("--to", "to_day", type=click.DateTime(["%Y-%m-%d"]), help="last day of a free period (with --from)")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="directory for report.html and report.pdf")
@click.option("--no-pdf", is_flag=True, help="write report.html only (no Chromium needed)")
@click.option("--bottom", type=int, help="金蜗牛: the last N places in two consecutive periods [default: SITEPULSE_SNAIL_BOTTOM]")
@click.option("--known-on", type=click.DateTime(["%Y-%m-%d"]), help="investment as known at the end of this day: the bulletin made then, made again")
@click.option("--send", is_flag=True, help="post the headline, 金蜗牛 and 推进较慢 list to the robot (SITEPULSE_NOTIFY_URL), once per period")
@click.option("--resend", is_flag=True, help="with --send: post again a period already sent")
@click.pass_context
def report(
    ctx: click.Context, period: str | None, from_day: datetime | None, to_day: datetime | None, out: Path, no_pdf: bool, bottom: int | None,
    known_on: datetime | None, send: bool, resend: bool,
) -> None:
    """The half-monthly scheduling bulletin (半月调度通报): report.html and report.pdf, and
    with --send the message to the leaders' group (@-mentioning those who must act)."""
    from .agents.core.periods import PeriodError, day_range, parse_period
    from .bulletin import ReportError, load_bulletin, write_report

    if (period is None) == (from_day is None and to_day is None) or (from_day is None) != (to_day is None):
        raise click.UsageError("请给出 --period, 或同时给出 --from 和 --to")
    try:
        parsed = parse_period(period) if period else day_range(from_day.date(), to_day.date())
    except PeriodError as exc:
        raise click.BadParameter(str(exc), param_hint="--period / --from --to") from None
    if bottom is not None and bottom < 1:
        raise click.BadParameter("应为正整数", param_hint="--bottom")
    if (send or resend) and no_pdf:
        raise click.UsageError("--send 推送的是 PDF 的位置: 不能与 --no-pdf 同用")
    settings = _settings(ctx)
    try:
        bulletin = asyncio.run(load_bulletin(settings, parsed, bottom or settings.snail_bottom, known_on.date() if known_on else None))
        written = write_report(bulletin, out, datetime.now(settings.tz), settings.chromium, pdf=not no_pdf)
    except ReportError as exc:
        raise click.ClickException(str(exc)) from None
    for path in written:
        click.echo(f"已生成 {path}")
    if send or resend:
        from .delivery import DeliveryRefused, send_bulletin
        from .streams.registry import read_registry_topic
        from .streams.topics import ensure_topics

        ensure_topics(settings)
        try:
            click.echo(send_bulletin(settings, bulletin, out / "report.pdf", read_registry_topic(settings), resend=resend))
        except DeliveryRefused as exc:
            raise click.ClickException(str(exc)) from None


@export.command("audit")
@click.pass_context
def export_audit(ctx: click.Context) -> None:
    """The audit trail: who loaded the registry, filed a stoppage or closed a problem, and why."""
    from .reports import AUDIT_COLUMNS, audit_rows, write_rows_csv

    write_rows_csv(asyncio.run(audit_rows(_settings(ctx))), AUDIT_COLUMNS, sys.stdout)


@export.command("investment")
@click.option("--date", "as_of", type=click.DateTime(["%Y-%m-%d"]), help="figures as of this day: every month of its year up to its month")
@click.option("--by", "unit_types", multiple=True, type=click.Choice(INVESTMENT_UNIT_TYPES), help="roll-up (repeatable) [default: all but project]")
@click.option("--known-on", type=click.DateTime(["%Y-%m-%d"]), help="as known at the end of this day (regenerates an old bulletin's figures) [default: everything stored]")
@click.option("--revisions", is_flag=True, help="every report as it arrived, with its revision number, instead of the roll-up")
@click.pass_context
def export_investment(ctx: click.Context, as_of: datetime | None, unit_types: tuple[str, ...], known_on: datetime | None, revisions: bool) -> None:
    """Annual-plan completion (完成率) as of a date per city, district, zone, department,
    level, kind, level × kind or project, with the months covered, 序时进度 and growth."""
    from .reports import INVESTMENT_COLUMNS, REVISION_COLUMNS, investment_revisions, investment_rollup, write_rows_csv

    settings = _settings(ctx)
    known = known_on.date() if known_on else None
    if revisions:
        write_rows_csv(asyncio.run(investment_revisions(settings, known)), REVISION_COLUMNS, sys.stdout)
        return
    if as_of is None:
        raise click.UsageError("请给出 --date (或用 --revisions 列出每次报送)")
    chosen = unit_types or tuple(t for t in INVESTMENT_UNIT_TYPES if t != "project")
    write_rows_csv(asyncio.run(investment_rollup(settings, as_of.date(), chosen, known)), INVESTMENT_COLUMNS, sys.stdout)


@export.command("starts")
@click.option("--date", "as_of", required=True, type=click.DateTime(["%Y-%m-%d"]), help="as of this day")
@click.option("--by", "unit_types", multiple=True, type=click.Choice(ROLLUP_TYPES), help="roll-up (repeatable) [default: all]")
@click.pass_context
def export_starts(ctx: click.Context, as_of: datetime, unit_types: tuple[str, ...]) -> None:
    """开工率 (cumulative: started ever ÷ due) with 在建, 停工 and 复工 on the day."""
    from .reports import STARTS_COLUMNS, start_rows, write_rows_csv

    write_rows_csv(asyncio.run(start_rows(_settings(ctx), as_of.date(), unit_types or ROLLUP_TYPES)), STARTS_COLUMNS, sys.stdout)


@export.command("schedule")
@click.option("--date", "as_of", required=True, type=click.DateTime(["%Y-%m-%d"]), help="as of this day")
@click.pass_context
def export_schedule(ctx: click.Context, as_of: datetime) -> None:
    """Plan nodes against the day: status done, on_schedule or behind, and days behind
    (a node done late keeps how late it was)."""
    from .reports import SCHEDULE_COLUMNS, schedule_rows, write_rows_csv

    write_rows_csv(asyncio.run(schedule_rows(_settings(ctx), as_of.date())), SCHEDULE_COLUMNS, sys.stdout)


@cli.group()
def investment() -> None:
    """Investment figures loaded by hand (上年同期数据, history)."""


@investment.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--reason", required=True, help="why these figures are loaded (recorded in the audit trail with who ran it)")
@click.pass_context
def investment_load(ctx: click.Context, file: Path, reason: str) -> None:
    """Load monthly figures from a CSV (project_id,period,amount_wan), e.g. last year's,
    for year-on-year growth. The file loads whole or not at all."""
    from .streams.investment_history import InvestmentFileError, load_investment_file

    count = _load_audited(ctx, file, reason, load_investment_file, InvestmentFileError)
    click.echo(f"已加载 {count} 条月度投资数据 ({file.name})")


def _load_audited(ctx: click.Context, file: Path, reason: str, load, refused: type[Exception]) -> int:
    """A file loaded whole or not at all, with why in the audit trail."""
    if not reason.strip():
        raise click.ClickException("变更原因(--reason)不能为空")
    try:
        return load(_settings(ctx), file, reason.strip())
    except refused as exc:
        raise click.ClickException(str(exc)) from None


@cli.group()
def registry() -> None:
    """The project registry (登记表)."""


@registry.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--stoppages",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV of approved stoppages: project_id,from_day,to_day,reason",
)
@click.option("--reason", required=True, help="why the registry changes (recorded in the audit trail with who ran it)")
@click.pass_context
def registry_load(ctx: click.Context, file: Path, stoppages: Path | None, reason: str) -> None:
    """Check a registry CSV (and stoppages) and publish them to their compacted topics."""
    from .streams.audit import record_audit
    from .streams.publisher import SitePublisher
    from .streams.registry import RegistryError, publish_registry, publish_stoppages, read_registry_csv, read_stoppages_csv
    from .streams.topics import ensure_topics

    try:
        entries = read_registry_csv(file)
        stoppage_records = read_stoppages_csv(stoppages) if stoppages else []
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from None
    unknown = sorted({r.project_id for r in stoppage_records} - {e.project_id for e in entries})
    if unknown:
        raise click.ClickException(f"停工备案表中的项目不在登记表中: {', '.join(unknown)}")
    settings = _settings(ctx)
    ensure_topics(settings)
    if not reason.strip():
        raise click.ClickException("变更原因(--reason)不能为空")
    with SitePublisher(settings) as publisher:
        count = publish_registry(entries, publisher)
        stopped = publish_stoppages(stoppage_records, publisher)
        subject = f"{file.name}: {count} 个项目" + (f", 停工备案 {stopped} 条" if stoppages else "")
        record_audit(settings, publisher, "registry_load", subject, reason.strip())
    click.echo(f"已加载 {count} 个项目到登记表" + (f", 停工备案 {stopped} 条" if stoppages else ""))


@cli.group()
def stoppage() -> None:
    """Approved stoppages (停工备案): days that are neither stalls nor ranked."""


@stoppage.command("add")
@click.argument("project")
@click.argument("from_day", metavar="FROM")
@click.argument("to_day", metavar="TO")
@click.option("--reason", required=True, help="why the halt was approved (force majeure, ordered halt ...)")
@click.pass_context
def stoppage_add(ctx: click.Context, project: str, from_day: str, to_day: str, reason: str) -> None:
    """Record an approved stoppage of PROJECT from FROM to TO (YYYY-MM-DD, inclusive).
    Adding one with the same FROM again amends it."""
    from .streams.audit import record_audit
    from .streams.publisher import SitePublisher
    from .streams.registry import publish_stoppages, stoppage_record
    from .streams.topics import ensure_topics

    try:
        record = stoppage_record(project, from_day, to_day, reason)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    settings = _settings(ctx)
    ensure_topics(settings)
    with SitePublisher(settings) as publisher:
        publish_stoppages([record], publisher)
        subject = f"{record.project_id} {record.from_day} 至 {record.to_day}"
        record_audit(settings, publisher, "stoppage_add", subject, record.reason)
    click.echo(f"已备案停工: {record.project_id} {record.from_day} 至 {record.to_day} ({record.reason})")


@cli.group()
def problem() -> None:
    """The problem ledger (问题销号)."""


@problem.command("close")
@click.argument("problem_id")
@click.option("--note", required=True, help="how it was resolved (销号说明)")
@click.pass_context
def problem_close(ctx: click.Context, problem_id: str, note: str) -> None:
    """Close a problem by hand, with a note saying how it was resolved."""
    from .reports import all_problems
    from .streams.problem_filing import closing_event, publish_ledger_events

    settings = _settings(ctx)
    if not note.strip():
        raise click.ClickException("销号说明(--note)不能为空")
    found = asyncio.run(all_problems(settings, problem_id=problem_id))
    if not found:
        raise click.ClickException(f"没有编号为 {problem_id} 的问题")
    target = found[0]
    if not target.is_open:
        raise click.ClickException(f"问题 {problem_id} 已于 {target.closed_at:%Y-%m-%d %H:%M} 销号: {target.note}")
    event = closing_event(problem_id, target.project_id, note.strip(), datetime.now(settings.tz), target.leader, target.district)
    publish_ledger_events(settings, [event], "problem_close", f"{problem_id} ({target.project_id})", note.strip())
    click.echo(f"已提交销号: {problem_id} ({note.strip()})")


@problem.command("open")
@click.argument("project")
@click.option("--category", required=True, type=click.Choice(PROBLEM_CATEGORIES), help="问题类别")
@click.option("--department", required=True, help="the department that must solve it (责任部门)")
@click.option("--measures", required=True, help="what will be done (整改措施)")
@click.option("--due", required=True, type=click.DateTime(["%Y-%m-%d"]), help="deadline (限期), YYYY-MM-DD")
@click.option("--detail", default="", help="what the problem is (defaults to the measures)")
@click.option("--opened", type=click.DateTime(["%Y-%m-%d"]), help="the day it was found, for a paper ledger entered late [default: today]")
@click.pass_context
def problem_open(
    ctx: click.Context, project: str, category: str, department: str, measures: str, due: datetime, detail: str, opened: datetime | None
) -> None:
    """File a problem for PROJECT (问题交办); prints the new problem's id. It pages the
    person on site and the leader, and is 逾期 once its deadline has passed."""
    from .streams.problem_filing import filed_problem, publish_filed_problem
    from .streams.registry import read_registry_topic

    settings = _settings(ctx)
    entry = next((e for e in read_registry_topic(settings) if e.project_id == project), None)
    if entry is None:
        raise click.ClickException(f"项目 {project} 不在登记表中")
    now = datetime.now(settings.tz)
    found_at = now if opened is None else datetime.combine(opened.date(), now.timetz())
    try:
        event = filed_problem(entry, category, department, measures, due.date(), detail, found_at)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    publish_filed_problem(settings, event, detail.strip() or measures.strip())
    click.echo(event.problem_id)


@problem.command("list")
@click.option("--all", "show_all", is_flag=True, help="closed problems too")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES), help="only these (repeatable)")
@click.pass_context
def problem_list(ctx: click.Context, show_all: bool, statuses: tuple[str, ...]) -> None:
    """The problems of the ledger, oldest first (not closed ones unless --all or --status):
    open, awaiting_confirmation (power back, 待销号), overdue (逾期) or closed."""
    from .reports import all_problems, ledger_day
    from .terminal import problems_table

    settings = _settings(ctx)
    problems, day = asyncio.run(all_problems(settings)), asyncio.run(ledger_day(settings))
    shown = [(p, p.status_now(day)) for p in problems]
    if statuses:
        shown = [(p, s) for p, s in shown if s in statuses]
    elif not show_all:
        shown = [(p, s) for p, s in shown if s != "closed"]
    problems_table(shown)


@problem.command("rates")
@click.option("--by", type=click.Choice(RATE_GROUPS), default="district", show_default=True)
@click.option("--period", help="only problems opened in this period (e.g. 2026-03-H1)")
@click.pass_context
def problem_rates(ctx: click.Context, by: str, period: str | None) -> None:
    """销号率 per district, department, category or leader, as CSV: of the problems
    opened, the share a person closed (power coming back closes nothing)."""
    from .agents.core.periods import PeriodError, parse_period
    from .agents.core.problems import resolution_rates
    from .reports import all_problems, write_rows_csv

    try:
        window = parse_period(period) if period else None
    except PeriodError as exc:
        raise click.BadParameter(str(exc), param_hint="--period") from None
    problems = asyncio.run(all_problems(_settings(ctx)))
    rates = resolution_rates(problems, by, window.first if window else None, window.last if window else None)
    rows = [{by: r.group, "opened": r.opened, "closed": r.closed, "rate": "" if r.rate is None else round(r.rate, 4)} for r in rates]
    write_rows_csv(rows, (by, "opened", "closed", "rate"), sys.stdout)


@cli.group()
def nodes() -> None:
    """Plan nodes (细账, 一图五表)."""


@nodes.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--reason", required=True, help="why the plan changes (recorded in the audit trail with who ran it)")
@click.pass_context
def nodes_load(ctx: click.Context, file: Path, reason: str) -> None:
    """Load plan nodes from a CSV (project_id,node,planned_date), all or none. Loading a
    node again with a new date re-plans it; a node done stays done."""
    from .streams.nodes import NodeFileError, load_nodes_file

    count = _load_audited(ctx, file, reason, load_nodes_file, NodeFileError)
    click.echo(f"已加载 {count} 个计划节点 ({file.name})")


@cli.group()
def node() -> None:
    """One plan node."""


@node.command("done")
@click.argument("project")
@click.argument("node_name", metavar="NODE")
@click.argument("done_day", metavar="DATE")
@click.option("--reason", default="", help="a note for the audit trail [default: the node and date]")
@click.pass_context
def node_done(ctx: click.Context, project: str, node_name: str, done_day: str, reason: str) -> None:
    """Report that PROJECT finished NODE on DATE (YYYY-MM-DD)."""
    from .streams.nodes import report_node_done

    settings = _settings(ctx)
    try:
        record = report_node_done(settings, project, node_name, done_day, reason.strip() or "报送节点完成")
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"已报送: {record.project_id} 「{record.node}」于 {record.done_date} 完成")


@cli.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """The projects that need attention now: stalled, offline, or with open problems."""
    from .sink.influx import InfluxUnavailable
    from .reports import attention
    from .streams.contract import REJECTION_REASONS
    from .terminal import attention_table
    from .runtime.worker_status import read_status

    settings = _settings(ctx)
    worker = read_status(settings.state_dir)
    if worker is None:
        click.echo(f"工作进程: 本机未找到状态文件 ({settings.state_dir})")
    else:
        state = "运行中" if worker.alive else f"未运行 (状态更新于 {worker.age_s:.0f} 秒前)"
        sink = "正常" if worker.degraded_for_s is None else f"中断已 {worker.degraded_for_s:.0f} 秒, 数据暂存 Kafka 待重试 ({worker.error})"
        click.echo(f"工作进程: {state}; 写入 InfluxDB: {sink}")
        rejected = {k.split(".", 1)[1]: v for k, v in worker.counts.items() if k.startswith("rejected.")}
        names = {"power": "读数", "investment": "投资", "registry": "登记", "stoppages": "停工备案", "events": "事件", "duplicates": "重复读数(已去重)"}
        handled = {names.get(k, k): v for k, v in worker.counts.items() if not k.startswith("rejected.")}
        click.echo("已处理: " + (", ".join(f"{k} {v}" for k, v in sorted(handled.items())) or "无"))
        if rejected:
            click.echo("已拒收 (死信): " + ", ".join(f"{REJECTION_REASONS.get(k, k)} [{k}] {v}" for k, v in sorted(rejected.items())))
    try:
        attention_table(asyncio.run(attention(settings)))
    except InfluxUnavailable as exc:
        raise click.ClickException(f"InfluxDB 不可用, 无法列出项目: {exc}") from None


@cli.command()
@click.option("--quick", is_flag=True, help="the CI variant: small data, seconds not minutes")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("bench/results.json"), show_default=True)
@click.option("--only", multiple=True, type=click.Choice(["raw_influx", "single_messages", "end_to_end", "end_to_end_series", "freshness", "scaling", "memory", "year"]),
              help="run these phases only (repeatable); their figures replace theirs in OUT, the rest are kept; "
              "'year' (a simulated city's year, 26M readings, each meter's day as one series, streamed from the generator while one worker takes it) runs only when named")
@click.option("--memory-projects", type=int, help="projects in the memory phase [default: 100000, --quick 2000]")
@click.option("--keep-logs", is_flag=True, help="keep every phase's logs (worker.log, the memory phase's rss.csv) and say where")
@click.pass_context
def bench(ctx: click.Context, quick: bool, out: Path, only: tuple[str, ...], memory_projects: int | None, keep_logs: bool) -> None:
    """Measure throughput, freshness, scaling, memory and board queries against the raw
    consumer and raw InfluxDB writes, on the embedded broker and influxd."""
    from .bench import run_bench
    from .terminal import bench_table

    results = run_bench(_settings(ctx), quick, out, lambda line: click.echo(line, err=True), only, memory_projects, keep_logs)
    bench_table(results)
    click.echo(f"written to {out}")


@cli.command()
@click.option("--projects", default=20, show_default=True, help="number of projects")
@click.option("--days", default=7, show_default=True, help="days of history")
@click.option("--seed", default=1, show_default=True, help="random seed (same seed, same scenario)")
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), help="first day [default: DAYS days ago]")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="JSON-lines file to write")
@click.option("--live", is_flag=True, help="publish to the broker as time passes instead of writing a file")
@click.option("--speed", default=1.0, show_default=True, help="with --live: history runs this many times faster")
@click.option(
    "--year-to-date",
    is_flag=True,
    help="also this year's investment reports before the start (some revised), delayed new projects, and last year's figures (.lastyear.csv)",
)
@click.option(
    "--new-signing-keys",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write a new key per simulated project to this CSV (point SITEPULSE_SIGNING_KEYS at it to sign and verify)",
)
@click.option("--fake-constant", default=0, show_default=True, help="projects whose idle machines draw a constant load")
@click.option("--fake-copied", default=0, show_default=True, help="projects that send the previous day's readings again")
@click.option("--fake-flat-investment", default=0, show_default=True, help="projects that report no investment while working")
@click.option("--fake-days", default=5, show_default=True, help="days each power fake lasts")
@click.pass_context
def simulate(
    ctx: click.Context, projects: int, days: int, seed: int, start: datetime | None, out: Path | None, live: bool, speed: float,
    year_to_date: bool, new_signing_keys: Path | None, fake_constant: int, fake_copied: int, fake_flat_investment: int, fake_days: int,
) -> None:
    """Simulated sites: a file of records (plus registry CSV and ground truth), or live."""
    from .streams.registry import write_registry_csv
    from .streams.signing import KeyStore
    from .streams.simulator import Fakes, build_scenario, generate_records, ground_truth, last_year_figures, write_last_year_csv

    settings = _settings(ctx)
    first_day = start.date() if start else datetime.now(settings.tz).date() - timedelta(days=days)
    try:
        fakes = Fakes(fake_constant, fake_copied, fake_flat_investment, fake_days)
        scenario = build_scenario(projects, days, seed, first_day, settings.tz, year_to_date=year_to_date, fakes=fakes)
    except ValueError as exc:
        raise click.UsageError(f"无法注入造假项目: {exc}") from None
    if new_signing_keys:
        KeyStore.generate([p.entry.project_id for p in scenario.projects], new_signing_keys)
        click.echo(f"项目密钥已写入 {new_signing_keys} (仅属主可读)")
    if live:
        _simulate_live(settings, scenario, speed)
        return
    if out is None:
        raise click.UsageError("--out FILE.jsonl is required without --live")
    encoder = msgspec.json.Encoder()
    count = 0
    with out.open("wb") as handle:
        for record in generate_records(scenario, until=scenario.end):
            handle.write(encoder.encode(record) + b"\n")
            count += 1
    registry_path = out.with_suffix(".registry.csv")
    truth_path = out.with_suffix(".truth.json")
    write_registry_csv([p.entry for p in scenario.projects], registry_path)
    truth_path.write_text(json.dumps(ground_truth(scenario), ensure_ascii=False, indent=1))
    click.echo(f"已生成 {count} 条记录: {out}\n登记表: {registry_path}\n场景真值: {truth_path}")
    if year_to_date:
        last_year_path = out.with_suffix(".lastyear.csv")
        write_last_year_csv(last_year_figures(scenario), last_year_path)
        click.echo(f"上年同期数据: {last_year_path} (用 sitepulse investment load 加载)")


@cli.command("check-suspicion")
@click.option("--projects", default=200, show_default=True, help="number of projects")
@click.option("--days", default=75, show_default=True, help="days simulated (two reported months need 60 or more)")
@click.option("--seed", default=7, show_default=True, help="random seed")
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), default="2026-03-02", show_default=True, help="first day")
@click.option("--fakes", default=10, show_default=True, help="projects faking each way")
@click.option("--fake-days", default=5, show_default=True, help="days each power fake lasts")
@click.pass_context
def check_suspicion_command(ctx: click.Context, projects: int, days: int, seed: int, start: datetime, fakes: int, fake_days: int) -> None:
    """Precision and recall of the suspicion rules on simulated sites with injected fakes."""
    from .streams.simulator import Fakes
    from .suspicion_check import check_suspicion, score_table

    settings = _settings(ctx)
    try:
        scores = check_suspicion(projects, days, seed, start.date(), Fakes(fakes, fakes, fakes, fake_days), settings.tz)
    except ValueError as exc:
        raise click.UsageError(f"无法注入造假项目: {exc}") from None
    click.echo(score_table(scores))


def _simulate_live(settings: Settings, scenario, speed: float) -> None:
    import time

    from .streams.publisher import SitePublisher
    from .streams.registry import publish_registry
    from .streams.simulator import generate_records
    from .streams.topics import ensure_topics

    ensure_topics(settings)
    log = logging.getLogger("sitepulse.simulate")
    with SitePublisher(settings) as publisher:
        publish_registry([p.entry for p in scenario.projects], publisher)
        sim_origin = datetime.combine(scenario.start, datetime.min.time(), settings.tz)
        wall_origin = time.time()
        pending_ts = None
        sent = 0
        for record in generate_records(scenario, until=None):
            ts = getattr(record, "ts", None) or record.reported_at
            if ts != pending_ts:
                publisher.flush()
                # History runs `speed` times faster; nothing is published before it happens.
                due = max(wall_origin + (ts - sim_origin).total_seconds() / speed, ts.timestamp())
                time.sleep(max(0.0, due - time.time()))
                pending_ts = ts
                if sent and ts.minute == 0 and ts.hour == 0:
                    log.info("published %d records, simulated clock at %s", sent, ts.isoformat())
            publisher.publish(record)
            sent += 1


@cli.command()
@click.option("--projects", default=20, show_default=True)
@click.option("--days", default=7, show_default=True, help="days of history replayed before going live")
@click.option("--speed", default=7200.0, show_default=True, help="how much faster than real time history runs")
@click.option("--seed", default=1, show_default=True)
@click.option("--duration", type=float, help="stop by itself after this many seconds")
@click.pass_context
def demo(ctx: click.Context, projects: int, days: int, speed: float, seed: int, duration: float | None) -> None:
    """Embedded broker + InfluxDB + Faust worker + simulated sites, until Ctrl-C."""
    from .demo import run_demo

    sys.exit(run_demo(_settings(ctx), projects=projects, days=days, speed=speed, seed=seed, duration=duration))


@cli.command()
@click.pass_context
def notify(ctx: click.Context) -> None:
    """Page leaders from sitepulse.events through a DingTalk / WeCom robot (Ctrl-C stops)."""
    import signal

    from .notify import run_notify

    stopping = []
    # SIGTERM (docker stop, systemd) ends the loop so the consumer leaves its group cleanly.
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        run_notify(_settings(ctx), stop=lambda: bool(stopping))
    except KeyboardInterrupt:
        pass


@cli.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Check the broker, topics, InfluxDB and (if configured) Grafana; exit 1 if any fails."""
    from .doctor import run_checks

    checks = run_checks(_settings(ctx))
    for check in checks:
        click.echo(f"{'✓' if check.ok else '✗'} {check.name}: {check.message}")
    if not all(check.ok for check in checks):
        sys.exit(1)


@cli.group()
def dashboards() -> None:
    """Grafana boards as code."""


@dashboards.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=Path("deploy/grafana/provisioning"))
@click.option(
    "--registry",
    "registry_csv",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="also write contact points, policies and holiday mute timings for this registry (not committed: it names people)",
)
@click.pass_context
def dashboards_export(ctx: click.Context, directory: Path, registry_csv: Path | None) -> None:
    """Write the boards and alert rules as Grafana file provisioning under DIRECTORY."""
    from .dashboards.provisioning_files import export_provisioning
    from .streams.registry import RegistryError, read_registry_csv

    settings = _settings(ctx)
    try:
        registry = read_registry_csv(registry_csv) if registry_csv else None
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from None
    this_year = datetime.now(settings.tz).year
    for path in export_provisioning(directory, registry, settings.notify_kind, (this_year, this_year + 1)):
        click.echo(f"已写入 {path}")


@cli.command()
@click.option("--grafana-url", required=True, help="Grafana base URL, e.g. http://grafana:3000")
@click.option("--registry", "registry_csv", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="registry CSV: also contact points, mute timing and policy tree")
@click.option("--influx-url", help="InfluxDB as Grafana reaches it [default: SITEPULSE_INFLUX_URL]")
@click.option("--replace-policy", is_flag=True, help="replace a notification policy tree that sitepulse did not write")
@click.option("--routing-only", is_flag=True, help="only contact points, mute timing and policies (boards come from file provisioning)")
@click.pass_context
def provision(
    ctx: click.Context, grafana_url: str, registry_csv: Path | None, influx_url: str | None, replace_policy: bool, routing_only: bool
) -> None:
    """Create or update sitepulse's datasource, folder, boards and alerting in Grafana (idempotent)."""
    from grafana_client import GrafanaApi
    from grafana_client.client import GrafanaException

    from .dashboards.provision import DatasourceTarget, PolicyNotOurs
    from .dashboards.provision import provision as apply
    from .streams.registry import RegistryError, read_registry_csv

    settings = _settings(ctx)
    if settings.grafana_token is None or not settings.grafana_token.get_secret_value():
        raise click.ClickException("未设置 SITEPULSE_GRAFANA_TOKEN (Grafana 服务账号令牌)")
    if routing_only and registry_csv is None:
        raise click.UsageError("--routing-only 需要 --registry")
    try:
        registry = read_registry_csv(registry_csv) if registry_csv else None
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from None
    api = GrafanaApi.from_url(grafana_url, credential=settings.grafana_token.get_secret_value())
    # Grafana's own read-only account: the worker's token or password never goes to Grafana.
    secret = lambda value: value.get_secret_value() if value else None  # noqa: E731
    target = DatasourceTarget(
        influx_url or settings.influx_url,
        settings.influx_db,
        token=secret(settings.grafana_influx_token),
        user=settings.grafana_influx_username,
        password=secret(settings.grafana_influx_password),
    )
    this_year = datetime.now(settings.tz).year
    try:
        outcome = apply(api, target, registry, settings.notify_kind, (this_year, this_year + 1), replace_policy, routing_only)
    except PolicyNotOurs as exc:
        raise click.ClickException(str(exc)) from None
    except GrafanaException as exc:
        raise click.ClickException(f"Grafana 拒绝了请求 ({exc.status_code}): {exc.message}") from None
    for label, names in (("新建", outcome.created), ("更新", outcome.updated)):
        for name in names:
            click.echo(f"{label}: {name}")
    if outcome.changed:
        click.echo(f"完成: 新建 {len(outcome.created)}, 更新 {len(outcome.updated)}, 未变 {len(outcome.unchanged)}")
    else:
        click.echo(f"无变化: {len(outcome.unchanged)} 项均已是最新")


def main() -> None:
    cli(prog_name="sitepulse")
