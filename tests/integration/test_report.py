"""The half-monthly bulletin, end to end: a simulated month and a half goes through the
broker and the worker into InfluxDB; ``sitepulse report`` turns it into report.html and
report.pdf. Its headline figures must equal what ``sitepulse export`` says for the same
period, and both files must render Chinese text (headless Chromium, pdftoppm)."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import NamedTuple

import pytest
from fontTools.ttLib import TTCollection, TTFont
from PIL import Image

from tests.conftest import poll

pytestmark = pytest.mark.integration

# Seed 42: one project stalled at the end of 2026-04-H1, one stalled and resumed within
# it; March's investment reports arrive in April.
START, DAYS, SEED, PROJECTS = date(2026, 3, 2), 50, 42, 16
PERIOD, FIRST, LAST = "2026-04-H1", date(2026, 4, 1), date(2026, 4, 15)
TITLE = "重大项目半月调度通报"


class ReportRun(NamedTuple):
    sitepulse: object
    daily: list[dict[str, str]]  # export daily for the period
    out: Path
    printed: str
    registry_csv: Path


class Figures(HTMLParser):
    """``data-figure`` elements of the page: their shown text and their exact value."""

    def __init__(self) -> None:
        super().__init__()
        self.shown: dict[str, str] = {}
        self.exact: dict[str, str] = {}
        self.text: list[str] = []
        self._open: str | None = None
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        if tag in ("style", "script"):
            self._skip += 1
        if "data-figure" in found:
            self._open = found["data-figure"]
            self.shown[self._open] = ""
            if "data-value" in found:
                self.exact[self._open] = found["data-value"]

    def handle_endtag(self, tag):
        if tag in ("style", "script"):
            self._skip -= 1
        self._open = None

    def handle_data(self, data):
        if self._skip:
            return
        self.text.append(data)
        if self._open:
            self.shown[self._open] += data.strip()


def chromium() -> str:
    found = shutil.which("chromium")
    assert found, "Debian's chromium is installed by ./run.sh test"
    return found


def ink_share(png: Path) -> float:
    """Share of pixels that are not (near) white."""
    image = Image.open(png).convert("L")
    histogram = image.histogram()
    return 1.0 - sum(histogram[245:]) / (image.width * image.height)


def cjk_font_file() -> Path:
    out = subprocess.run(["fc-match", "-f", "%{file}", "Noto Sans CJK SC"], capture_output=True, text=True, check=True).stdout
    return Path(out)


def covered_characters(font_file: Path) -> set[str]:
    fonts = TTCollection(str(font_file)).fonts if font_file.suffix.lower() == ".ttc" else [TTFont(str(font_file))]
    return {chr(code) for font in fonts for code in font.getBestCmap()}


@pytest.fixture(scope="module")
def report(tmp_path_factory, module_sitepulse):
    sitepulse = module_sitepulse
    work = tmp_path_factory.mktemp("report")
    scenario = work / "scenario.jsonl"
    sitepulse.run("simulate", "--projects", str(PROJECTS), "--days", str(DAYS), "--seed", str(SEED), "--start", START.isoformat(), "--out", str(scenario))
    sitepulse.run("registry", "load", str(scenario.with_suffix(".registry.csv")), "--reason", "测试项目登记")
    sitepulse.run("stoppage", "add", "NB-0004", "2026-04-02", "2026-04-03", "--reason", "台风防汛停工令")
    sitepulse.run("replay", str(scenario))
    sitepulse.start_worker(SITEPULSE_REVIEW_INTERVAL_S="1")

    def judged():
        rows = list(csv.DictReader(io.StringIO(sitepulse.run("export", "daily", "--start", FIRST.isoformat(), "--end", LAST.isoformat()))))
        return rows if sum(1 for r in rows if r["state"]) == PROJECTS * ((LAST - FIRST).days + 1) else None

    daily = poll(judged, 180, "every day of the period to be judged", interval_s=1)
    out = work / "out"
    printed = sitepulse.run("report", "--period", PERIOD, "--out", str(out))
    return ReportRun(sitepulse, daily, out, printed, scenario.with_suffix(".registry.csv"))


def test_the_headline_equals_what_export_says_for_the_period(report):
    sitepulse, daily, out, printed, registry_csv = report
    assert "report.html" in printed and "report.pdf" in printed
    page = Figures()
    page.feed((out / "report.html").read_text(encoding="utf-8"))

    last_state: dict[str, tuple[str, str]] = {}
    for row in daily:
        if row["state"] and (row["project_id"] not in last_state or row["date"] > last_state[row["project_id"]][0]):
            last_state[row["project_id"]] = (row["date"], row["state"])
    states = [state for _, state in last_state.values()]
    assert int(page.shown["projects"]) == PROJECTS
    for state in ("started", "stalled", "offline", "not_started", "stoppage"):
        assert int(page.shown[state]) == states.count(state), state
    assert states.count("stalled") >= 1, "the scenario has a project stalled at the end of the period"

    (city,) = csv.DictReader(io.StringIO(sitepulse.run("export", "investment", "--date", LAST.isoformat(), "--by", "city")))
    assert float(city["completed_wan"]) > 0
    assert page.exact["completed_wan"] == f"{float(city['completed_wan']):.1f}"
    assert page.exact["completion_pct"] == city["completion_pct"]
    assert page.shown["completed_wan"] == f"{float(city['completed_wan']) / 10_000:,.2f}"
    assert page.shown["completion_pct"] == f"{float(city['completion_pct']):.1f}%"

    text = "".join(page.text)
    assert TITLE in text and "2026年4月上半月" in text
    # Every project export shows stalled on a day of the period is listed, with its leader.
    flagged_section = text[text.index("四、推进较慢、停工及异常项目") : text.index("五、问题销号")]
    leaders = {row["project_id"]: row["leader"] for row in csv.DictReader(io.StringIO(registry_csv.read_text(encoding="utf-8")))}
    stalled_in_period = {row["project_id"] for row in daily if row["state"] == "stalled"}
    assert len(stalled_in_period) >= 2
    for project_id in stalled_in_period:
        assert project_id in flagged_section and leaders[project_id] in flagged_section, project_id
    assert "台风防汛停工令" in text, "the stoppage granted in the period is aired with its reason"
    ranking = list(csv.DictReader(io.StringIO(sitepulse.run("export", "ranking", "--period", PERIOD))))
    first_district = next(r for r in ranking if r["unit_type"] == "district" and r["rank"] == "1")
    assert first_district["unit"] in text


def test_the_html_renders_chinese_in_headless_chromium(report, tmp_path):
    out = report.out
    font = cjk_font_file()
    assert "NotoSansCJK" in font.name, f"the page's first font is installed (fonts-noto-cjk), fc-match gave {font}"
    page = Figures()
    page.feed((out / "report.html").read_text(encoding="utf-8"))
    chinese = {ch for ch in "".join(page.text) if "\u4e00" <= ch <= "\u9fff"}
    assert len(chinese) > 100
    missing = chinese - covered_characters(font)
    assert not missing, f"characters the font lacks would show as boxes: {sorted(missing)[:20]}"

    png = tmp_path / "report.png"
    subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}",
         "--window-size=900,2400", f"--screenshot={png}", (out / "report.html").as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    share = ink_share(png)
    assert 0.03 < share < 0.6, f"the page is laid out with text and charts, not blank: {share:.3f} of pixels inked"
    assert len(Image.open(png).convert("RGB").getcolors(1 << 20) or []) > 50, "charts and coloured cards, not flat text"


def test_the_pdf_embeds_a_cjk_font_and_is_a4(report, tmp_path):
    out = report.out
    pdf = out / "report.pdf"
    # Chromium embeds the CFF-flavoured Noto CJK as Type 3 fonts (glyph outlines): every
    # font must be embedded and map back to Unicode, or a reader without the font shows
    # boxes or cannot search the text.
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout.splitlines()[2:]
    assert fonts
    for line in fonts:
        emb, sub, uni = line.split()[-5:-2]
        assert emb == "yes" and uni == "yes", line
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    width, height = (float(v) for v in re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", info).groups())
    assert abs(width - 595.3) < 2 and abs(height - 841.9) < 2, f"A4: {width} x {height} pts"
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert TITLE in text and "停工及异常项目" in text and "问题销号" in text
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")], check=True)
    (first_page,) = tmp_path.glob("page*.png")
    assert 0.03 < ink_share(first_page) < 0.6


def test_a_report_needs_a_period(report, tmp_path):
    sitepulse = report.sitepulse
    refused = sitepulse.attempt("report", "--out", str(tmp_path))
    assert refused.exit_code != 0 and "--period" in refused.output
    refused = sitepulse.attempt("report", "--period", "2026-13-H1", "--out", str(tmp_path))
    assert refused.exit_code != 0 and "期间" in refused.output
