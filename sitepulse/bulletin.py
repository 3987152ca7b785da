"""``sitepulse report``: the half-monthly scheduling bulletin as a self-contained HTML
page (inline CSS, charts as inline SVG images) and an A4 PDF printed from it by headless
Chromium. The figures come from ``agents.core.bulletin_figures`` over the facts stored in
InfluxDB, the same facts the rankings and ``export`` read."""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from .agents.core.bulletin_figures import Bulletin, compile_bulletin, facts_from
from .agents.core.investment import PACE_NAMES, Completion
from .agents.core.periods import Period
from .sink.stored import load_facts, problems_stored
from .sink.influx import InfluxClient
from .streams.contract import DAY_STATE_NAMES, PROBLEM_STATUS_NAMES, SUSPICION_REASONS
from .runtime.settings import Settings

# The page asks for these in order; Debian's fonts-noto-cjk provides the first, the
# supervisors' Windows and macOS machines the others.
CJK_FONTS = ("Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", "WenQuanYi Micro Hei")
UNIT_NAMES = {"district": "区县(市)", "zone": "功能区", "department": "责任部门"}
BULLETIN_STATE_NAMES = {**DAY_STATE_NAMES, "not_judged": "暂无判定"}
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


class ReportError(RuntimeError):
    """The report could not be made; the message is for operators (Chinese)."""


LEVEL_NAMES = {"city": "市级", "district": "区级", "town": "镇(街道)级"}
START_NAMES = {"new": "新建项目", "continuing": "续建项目", "全市": "合计"}
PACE_CLASSES = {"on_pace": "good", "behind": "warn", "far_behind": "bad"}


async def load_bulletin(settings: Settings, period: Period, bottom: int, known_on: date | None = None) -> Bulletin:
    """The bulletin of ``period``, its investment as known at the end of ``known_on``
    (default: everything stored), so the bulletin made that day can be made again."""
    async with InfluxClient(settings) as client:
        facts = await load_facts(client.query, facts_from(period), period.last, settings.tz, known_on=known_on)
        problems = await problems_stored(client.query)
    if not facts:
        raise ReportError("InfluxDB 中没有项目登记信息: 请先 `sitepulse registry load`, 并确认处理进程在运行")
    # A bulletin made again --known-on D2 stands where the one made on D2 stood.
    today = datetime.now(settings.tz).date()
    if known_on is not None:
        today = min(today, known_on + timedelta(days=1))
    return compile_bulletin(facts, problems, period, bottom, today=today)


def period_title(period: Period) -> str:
    first, last = period.first, period.last
    if period.label.endswith("-H1") or period.label.endswith("-H2"):
        half = "上半月" if period.label.endswith("-H1") else "下半月"
        return f"{first.year}年{first.month}月{half}"
    if first.day == 1 and len(period.label) == 7:
        return f"{first.year}年{first.month}月"
    return f"{first.year}年{first.month}月{first.day}日至{last.year}年{last.month}月{last.day}日"


def yi(wan: float) -> str:
    """万元 as 亿元, the unit of the bulletin's headline."""
    return f"{wan / 10_000:,.2f}"


def pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}%"


def share(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def signed(value: float | None, digits: int = 1, suffix: str = "") -> str:
    if value is None:
        return "—"
    return f"{value:+.{digits}f}{suffix}"


def versus_city(unit_yoy: float | None, city_yoy: float | None) -> str:
    """"高于全市 4.0 个百分点", as the seeds put a district's growth beside the city's."""
    if unit_yoy is None or city_yoy is None:
        return "—"
    gap = unit_yoy - city_yoy
    if abs(gap) < 0.05:
        return "与全市持平"
    return f"{'高于' if gap > 0 else '低于'}全市 {abs(gap):.1f} 个百分点"


def pace_class(pace: str | None) -> str:
    return PACE_CLASSES.get(pace or "", "")


@dataclass(frozen=True)
class LevelRow:
    new: Completion | None
    continuing: Completion | None

    @property
    def total_pct(self) -> float | None:
        parts = [c for c in (self.new, self.continuing) if c is not None]
        plan = sum(c.plan_wan for c in parts)
        return 100.0 * sum(c.completed_wan for c in parts) / plan if plan > 0 else None


def level_kind_rows(completions: list[Completion]) -> list[tuple[str, LevelRow]]:
    """The 完成率 table: a row per level (市, 区, 镇), new and continuing side by side."""
    by_unit = {c.unit: c for c in completions}
    levels = [level for level in LEVEL_NAMES if any(unit.startswith(f"{level}/") for unit in by_unit)]
    levels += sorted({unit.split("/")[0] for unit in by_unit} - set(levels))
    return [(level, LevelRow(by_unit.get(f"{level}/new"), by_unit.get(f"{level}/continuing"))) for level in levels]


def rank_change(value: int | None) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "持平"
    return f"↑{value}" if value > 0 else f"↓{-value}"


def _chart_module():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.family": "sans-serif",
            "font.sans-serif": [*CJK_FONTS, "DejaVu Sans"],
            "axes.unicode_minus": False,
            # Text stays text: the page's font draws it, in the HTML and in the PDF.
            "svg.fonttype": "none",
            "svg.hashsalt": "sitepulse",
            "font.size": 9,
        }
    )
    return plt


def _svg_data_uri(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def charts(bulletin: Bulletin) -> dict[str, str]:
    plt = _chart_module()
    from matplotlib.ticker import MaxNLocator

    made = {}

    rows = sorted(bulletin.completion_by_district, key=lambda c: c.pct or 0.0)
    figure, axes = plt.subplots(figsize=(7.0, 0.32 * max(len(rows), 4) + 0.8))
    axes.barh([c.unit for c in rows], [c.pct or 0.0 for c in rows], color="#3b7dd8")
    for position, c in enumerate(rows):
        axes.text((c.pct or 0.0) + 0.5, position, pct(c.pct), va="center", fontsize=8)
    elapsed = bulletin.headline.city.time_elapsed_pct
    if elapsed is not None:
        axes.axvline(elapsed, color="#d9534f", linestyle="--", linewidth=1)
        axes.text(elapsed, len(rows) - 0.4, f" 序时进度 {elapsed:.1f}%", color="#d9534f", fontsize=8)
    axes.set_xlabel("年度计划完成率 (%)")
    axes.spines[["top", "right"]].set_visible(False)
    made["completion"] = _svg_data_uri(figure)
    plt.close(figure)

    days = bulletin.city_days
    figure, axes = plt.subplots(figsize=(7.0, 2.8))
    labels = [f"{d.day.month}/{d.day.day}" for d in days]
    axes.bar(labels, [d.kwh / 1000 for d in days], color="#5cb85c", label="当日用电")
    axes.plot(labels, [d.baseline_kwh / 1000 for d in days], color="#f0ad4e", marker="o", markersize=3, label="基线用电")
    axes.set_ylabel("全市项目用电 (MWh)")
    axes.legend(loc="upper left", frameon=False, fontsize=8)
    axes.tick_params(axis="x", labelsize=7)
    axes.spines[["top", "right"]].set_visible(False)
    made["city_power"] = _svg_data_uri(figure)
    plt.close(figure)

    figure, axes = plt.subplots(figsize=(7.0, 3.0))
    labels = [period_title(p) for p in bulletin.trend_periods]
    most = 1
    for district, ranks in sorted(bulletin.rank_trend.items()):
        values = [rank if rank is not None else float("nan") for _, rank in ranks]
        most = max([most, *(r for _, r in ranks if r is not None)])
        axes.plot(labels, values, marker="o", markersize=3, label=district)
    axes.set_ylim(most + 0.5, 0.5)  # first place on top
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("名次")
    axes.tick_params(axis="x", labelsize=7, rotation=20)
    axes.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=7)
    axes.spines[["top", "right"]].set_visible(False)
    made["rank_trend"] = _svg_data_uri(figure)
    plt.close(figure)
    return made


def render_html(bulletin: Bulletin, generated_at: datetime) -> str:
    environment = Environment(
        loader=PackageLoader("sitepulse", "templates"), autoescape=select_autoescape(["html", "j2"]), undefined=StrictUndefined
    )
    environment.filters.update(yi=yi, pct=pct, share=share, signed=signed, rank_change=rank_change)
    environment.globals.update(pace_class=pace_class, versus_city=versus_city)
    template = environment.get_template("bulletin.html.j2")
    head, before = bulletin.headline, bulletin.previous
    return template.render(
        b=bulletin,
        head=head,
        before=before,
        title=period_title(bulletin.period),
        previous_title=period_title(before.period),
        generated_at=generated_at,
        level_kind_rows=level_kind_rows(bulletin.completion_by_level_kind),
        level_names=LEVEL_NAMES,
        start_names=START_NAMES,
        pace_names=PACE_NAMES,
        problem_status_names=PROBLEM_STATUS_NAMES,
        completion_change=None if head.completion_pct is None or before.completion_pct is None else head.completion_pct - before.completion_pct,
        state_names=BULLETIN_STATE_NAMES,
        suspicion_reasons=SUSPICION_REASONS,
        unit_names=UNIT_NAMES,
        fonts=", ".join(f'"{f}"' for f in CJK_FONTS),
        charts=charts(bulletin),
    )


def find_chromium(explicit: str | None = None) -> str:
    for name in ([explicit] if explicit else CHROMIUM_NAMES):
        found = shutil.which(name)
        if found:
            return found
    raise ReportError("未找到 Chromium, 无法打印 PDF: 请安装 Debian 的 chromium 软件包 (./run.sh demo 会自动安装), 或设置 SITEPULSE_CHROMIUM")


def print_pdf(html_path: Path, pdf_path: Path, chromium: str | None = None, timeout_s: float = 180) -> None:
    """A4 PDF of the page, printed by headless Chromium (it embeds the fonts it used)."""
    binary = find_chromium(chromium)
    with tempfile.TemporaryDirectory(prefix="sitepulse-chromium-") as profile:
        command = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-pdf-header-footer",
            f"--user-data-dir={profile}",
            f"--print-to-pdf={pdf_path}",
            html_path.resolve().as_uri(),
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise ReportError(f"Chromium 打印 PDF 超时 ({timeout_s:.0f} 秒)") from None
    if done.returncode != 0 or not pdf_path.exists() or pdf_path.stat().st_size == 0:
        raise ReportError(f"Chromium 打印 PDF 失败 (退出码 {done.returncode}): {done.stderr.strip()[-500:]}")


def write_report(bulletin: Bulletin, out_dir: Path, generated_at: datetime, chromium: str | None = None, pdf: bool = True) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / "report.html"
    html_path.write_text(render_html(bulletin, generated_at), encoding="utf-8")
    written = [html_path]
    if pdf:
        pdf_path = out_dir / "report.pdf"
        print_pdf(html_path, pdf_path, chromium)
        written.append(pdf_path)
    return written

