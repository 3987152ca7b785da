"""The seeds' 总账 and 开工 figures, reproduced through the real broker, the worker and
influxd from registries and reports made for the purpose, read back with the commands a
supervisor runs (``export investment``, ``export starts``, ``report``):

- Ningbo, end of February 2022 (seed 002): 253亿 = 15.4 %, February's reports arriving
  in March, one of them revised; ``--known-on`` gives what was known on a day;
- Ganzhou, end of June 2017 (seed 004): 53.6亿 = 54.76 %, 41 of 44 projects started,
  six of them stalled on the day, two back at work after a stall;
- Yinzhou, H1 2017 (seed 000): town-level new and continuing projects 80 % and 97 %; 1–5
  月 growth 9.3 %, 4 points above the city, against last year's figures loaded by hand.
Each seed is a district of its own, so the district rows are the seeds' figures."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sitepulse.streams.contract import REGISTRY_COLUMNS
from tests.conftest import poll

pytestmark = pytest.mark.integration

SHANGHAI = ZoneInfo("Asia/Shanghai")
NINGBO, GANZHOU, YINZHOU = "宁波市区", "赣州经开区", "鄞州区"
NINGBO_PLAN = 2_530_000 / 0.154  # 万元: 253亿 is 15.4 % of it
GANZHOU_PLAN = 536_000 / 0.5476
GANZHOU_STALLED = range(35, 41)  # six of the 41 started projects idle from June 19
GANZHOU_RESUMED = range(3, 5)  # two stall June 5-9 and come back
CAPACITY_KVA = 630.0
# Yinzhou's town-level projects: five new (plan 10,000 each) and five continuing (20,000).
YINZHOU_NEW_H1, YINZHOU_CONTINUING_H1 = 40_000.0, 97_000.0


def registry_row(project_id: str, district: str, level: str, kind: str, plan: float, planned_start: str) -> dict:
    return {
        "project_id": project_id, "name": f"{district}{project_id}", "district": district, "zone": f"{district}片区",
        "department": "发改委", "level": level, "kind": kind, "leader": "王伟", "leader_phone": "13800000000",
        "data_owner": "计量中心", "annual_plan_wan": repr(plan), "planned_start": planned_start, "capacity_kva": repr(CAPACITY_KVA),
        "total_investment_wan": "",
    }


def investment(project_id: str, period: str, amount: float, reported: datetime) -> dict:
    return {"type": "investment", "project_id": project_id, "period": period, "amount_wan": amount, "reported_at": reported.isoformat()}


def ganzhou_hourly_kwh(index: int, day: date, hour: int) -> float:
    """What a Ganzhou project's meter draws in an hour of ``day``: three never start,
    six stop on June 19, two stop June 5-9; the rest work (weekends lighter)."""
    noise = 1 + ((index * 31 + day.day * 7 + hour) % 11 - 5) / 100
    idle = index < 3 or (index in GANZHOU_STALLED and day >= date(2017, 6, 19))
    idle = idle or (index in GANZHOU_RESUMED and date(2017, 6, 5) <= day <= date(2017, 6, 9))
    if idle:
        return round(1.5 * noise, 3)
    working_hours = 8 <= hour < 18
    load = CAPACITY_KVA * (0.3 if working_hours else 0.05) * (0.5 if day.weekday() >= 5 else 1.0)
    return round(load * noise, 3)


def build_city(tmp_path):
    rows, records = [], []
    # Ningbo 2022: four continuing city-level projects; January reported in February,
    # February in March; NB-1's February first wrong (March 5), revised (March 12).
    for n in range(1, 5):
        pid = f"NB-{n}"
        rows.append(registry_row(pid, NINGBO, "city", "continuing", NINGBO_PLAN / 4, "2021-03-01"))
        records.append(investment(pid, "2022-01", 300_000.0, datetime(2022, 2, 3, 10, tzinfo=SHANGHAI)))
        first_february = 300_000.0 if n == 1 else 332_500.0
        records.append(investment(pid, "2022-02", first_february, datetime(2022, 3, 5, 10, tzinfo=SHANGHAI)))
    records.append(investment("NB-1", "2022-02", 332_500.0, datetime(2022, 3, 12, 16, tzinfo=SHANGHAI)))
    # Ganzhou 2017: 44 new district-level projects due March 1; January–June reported
    # evenly, each month early in the next (June's in July).
    for n in range(44):
        pid = f"GZ-{n:02d}"
        rows.append(registry_row(pid, GANZHOU, "district", "new", GANZHOU_PLAN / 44, "2017-03-01"))
        for month in range(1, 7):
            records.append(investment(pid, f"2017-{month:02d}", 536_000 / 44 / 6, datetime(2017, month + 1, 5, 10, tzinfo=SHANGHAI)))
    # Yinzhou 2017: town-level projects, half-year plans reported evenly over January–June.
    for n in range(5):
        for kind, plan, h1 in (("new", 10_000.0, YINZHOU_NEW_H1 / 5), ("continuing", 20_000.0, YINZHOU_CONTINUING_H1 / 5)):
            pid = f"YZ-{kind[0].upper()}{n}"
            rows.append(registry_row(pid, YINZHOU, "town", kind, plan, "2016-06-01" if kind == "continuing" else "2017-01-01"))
            for month in range(1, 7):
                records.append(investment(pid, f"2017-{month:02d}", h1 / 6, datetime(2017, month + 1, 8, 10, tzinfo=SHANGHAI)))
    # Ganzhou's meters, hourly, June 1 to July 1 noon (so June 30 completes).
    day = date(2017, 6, 1)
    while day <= date(2017, 7, 1):
        for hour in range(24 if day < date(2017, 7, 1) else 12):
            ts = datetime(day.year, day.month, day.day, hour, tzinfo=SHANGHAI) + timedelta(hours=1)
            for n in range(44):
                records.append({"type": "power", "project_id": f"GZ-{n:02d}", "meter_id": "M1", "ts": ts.isoformat(),
                                "kwh": ganzhou_hourly_kwh(n, day, hour), "interval_s": 3600})
        day += timedelta(days=1)
    registry_csv = tmp_path / "registry.csv"
    with registry_csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*REGISTRY_COLUMNS])
        writer.writeheader()
        writer.writerows(rows)
    investment_lines = [r for r in records if r["type"] == "investment"]
    power_lines = [r for r in records if r["type"] == "power"]
    records_file = tmp_path / "city.jsonl"
    records_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in investment_lines + power_lines), encoding="utf-8")
    return registry_csv, records_file


def last_year_csv(tmp_path) -> tuple:
    """2016 January–May of Yinzhou and Ganzhou, so that 1–5月 2017 grows 9.3 % in Yinzhou
    and 5.3 % in the city (4 points less)."""
    yinzhou_this = (YINZHOU_NEW_H1 + YINZHOU_CONTINUING_H1) * 5 / 6
    ganzhou_this = 536_000 * 5 / 6
    yinzhou_last = yinzhou_this / 1.093
    ganzhou_last = (yinzhou_this + ganzhou_this) / 1.053 - yinzhou_last
    path = tmp_path / "2016.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["project_id", "period", "amount_wan"])
        for n in range(5):
            for kind, h1 in (("N", YINZHOU_NEW_H1), ("C", YINZHOU_CONTINUING_H1)):
                for month in range(1, 6):
                    writer.writerow([f"YZ-{kind}{n}", f"2016-{month:02d}", repr(yinzhou_last * h1 / (YINZHOU_NEW_H1 + YINZHOU_CONTINUING_H1) / 5 / 5)])
        for n in range(44):
            for month in range(1, 6):
                writer.writerow([f"GZ-{n:02d}", f"2016-{month:02d}", repr(ganzhou_last / 44 / 5)])
    return path


@pytest.fixture(scope="module")
def city(module_sitepulse, tmp_path_factory):
    sitepulse = module_sitepulse
    work = tmp_path_factory.mktemp("ledger_figures")
    registry_csv, records_file = build_city(work)
    sitepulse.run("registry", "load", str(registry_csv), "--reason", "种子数据项目登记")
    sitepulse.run("replay", str(records_file))
    sitepulse.start_worker(SITEPULSE_REVIEW_INTERVAL_S="1")
    loaded = sitepulse.run("investment", "load", str(last_year_csv(work)), "--reason", "上年同期数据 (统计局年报)")
    assert "已加载 270 条" in loaded

    def june_judged():
        rows = csv_rows(sitepulse, "export", "daily", "--start", "2017-06-30", "--end", "2017-06-30")
        return len([r for r in rows if r["state"]]) == 44

    poll(june_judged, 180, "June 30 2017 to be judged for all 44 Ganzhou projects", interval_s=1)
    poll(lambda: len(sitepulse.query("SELECT amount_wan FROM investment_revision WHERE period = '2016-05'")) == 54, 60, "last year's figures stored")
    return sitepulse


def csv_rows(sitepulse, *args: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(sitepulse.run(*args))))


def district_row(sitepulse, *args: str, district: str) -> dict[str, str]:
    return next(r for r in csv_rows(sitepulse, *args, "--by", "district") if r["unit"] == district)


def test_ningbo_253_yi_is_15_4_percent_at_the_end_of_february_with_february_reported_in_march(city):
    row = district_row(city, "export", "investment", "--date", "2022-02-28", district=NINGBO)
    assert float(row["completed_wan"]) == 2_530_000 and float(row["completion_pct"]) == pytest.approx(15.4, abs=0.005)
    assert row["months"] == "2022-01..2022-02" and float(row["time_elapsed_pct"]) == pytest.approx(100 * 59 / 365, abs=0.005)
    # Mid-March, before March is reported, the figure still covers January–February.
    march = district_row(city, "export", "investment", "--date", "2022-03-15", district=NINGBO)
    assert march["months"] == "2022-01..2022-02" and march["completed_wan"] == row["completed_wan"]


def test_known_on_reproduces_what_was_known_and_revisions_are_kept(city):
    before_revision = district_row(city, "export", "investment", "--date", "2022-02-28", "--known-on", "2022-03-06", district=NINGBO)
    assert float(before_revision["completed_wan"]) == 2_497_500
    before_february = district_row(city, "export", "investment", "--date", "2022-02-28", "--known-on", "2022-03-04", district=NINGBO)
    assert float(before_february["completed_wan"]) == 1_200_000 and before_february["months"] == "2022-01"
    revisions = [r for r in csv_rows(city, "export", "investment", "--revisions") if r["project_id"] == "NB-1" and r["period"] == "2022-02"]
    assert [(float(r["amount_wan"]), r["revision"], r["current"]) for r in revisions] == [(300_000.0, "1", "false"), (332_500.0, "2", "true")]
    assert revisions[1]["reported_at"].startswith("2022-03-12T16:00:00")
    # The bulletin made on March 6 comes out with the same investment section when made
    # again with --known-on, though a later revision has arrived since.
    out_a, out_b = city.tmp_path / "b1", city.tmp_path / "b2"
    for out in (out_a, out_b):
        city.run("report", "--period", "2022-03-H1", "--known-on", "2022-03-06", "--no-pdf", "--out", str(out))
    section = lambda out: (out / "report.html").read_text(encoding="utf-8").split("一、总体情况")[1].split("二、开工情况")[0]  # noqa: E731
    assert section(out_a) == section(out_b)
    assert 'data-value="2497500.0"' in section(out_a) and "1—2月累计完成投资 249.75 亿元" in section(out_a)
    city.run("report", "--period", "2022-03-H1", "--no-pdf", "--out", str(out_b))
    assert "1—2月累计完成投资 253.00 亿元" in section(out_b)


def test_ganzhou_53_6_yi_is_54_76_percent_and_41_of_44_started_with_six_stalled_on_the_day(city):
    row = district_row(city, "export", "investment", "--date", "2017-06-30", district=GANZHOU)
    assert round(float(row["completed_wan"]) / 10_000, 1) == 53.6 and float(row["completion_pct"]) == pytest.approx(54.76, abs=0.005)
    assert row["months"] == "2017-01..2017-06"
    starts = district_row(city, "export", "starts", "--date", "2017-06-30", district=GANZHOU)
    assert (starts["due"], starts["started"], starts["start_rate"]) == ("44", "41", str(round(41 / 44, 4)))
    assert (starts["active"], starts["stalled"], starts["resumed"]) == ("35", "6", "2")
    kinds = {r["unit"]: r for r in csv_rows(city, "export", "starts", "--date", "2017-06-30", "--by", "level_kind")}
    assert kinds["district/new"]["started"] == "41" and kinds["town/continuing"]["start_rate"] == "1.0"


def test_yinzhou_town_level_new_and_continuing_80_and_97_percent(city):
    rows = {r["unit"]: r for r in csv_rows(city, "export", "investment", "--date", "2017-06-30", "--by", "level_kind")}
    assert float(rows["town/new"]["completion_pct"]) == pytest.approx(80.0, abs=0.005)
    assert float(rows["town/continuing"]["completion_pct"]) == pytest.approx(97.0, abs=0.005)
    projects = {r["unit"]: r for r in csv_rows(city, "export", "investment", "--date", "2017-06-30", "--by", "project")}
    assert float(projects["YZ-N0"]["completion_pct"]) == pytest.approx(80.0, abs=0.005) and projects["YZ-N0"]["unit_type"] == "project"


def test_yinzhou_grows_9_3_percent_4_points_above_the_city(city):
    yinzhou = district_row(city, "export", "investment", "--date", "2017-05-31", district=YINZHOU)
    (whole,) = csv_rows(city, "export", "investment", "--date", "2017-05-31", "--by", "city")
    assert float(yinzhou["yoy_pct"]) == pytest.approx(9.3, abs=0.005) and float(whole["yoy_pct"]) == pytest.approx(5.3, abs=0.005)
    assert district_row(city, "export", "investment", "--date", "2017-05-31", district=NINGBO)["yoy_pct"] == ""
    out = city.tmp_path / "may"
    city.run("report", "--period", "2017-05", "--no-pdf", "--out", str(out))
    page = (out / "report.html").read_text(encoding="utf-8")
    yinzhou_row = next(row for row in page.split("<tr>") if f"<td>{YINZHOU}</td>" in row and "+9.3%" in row)
    assert "高于全市 4.0 个百分点" in yinzhou_row
    audit = csv_rows(city, "export", "audit")
    assert any(r["action"] == "investment_load" and r["reason"] == "上年同期数据 (统计局年报)" for r in audit)
