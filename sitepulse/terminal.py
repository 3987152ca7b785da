"""Tables for the terminal, drawn with ``rich`` (it measures Chinese characters as two
columns wide, so the columns line up)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from .agents.core.problems import Problem
from .streams.contract import PROBLEM_CATEGORY_NAMES, PROBLEM_STATUS_NAMES
from .reports import Attention

_CLOSED_BY = {"auto": "复工自动销号", "manual": "人工销号"}


def _console() -> Console:
    # Wide enough for a table of Chinese names when stdout is a pipe, not a terminal.
    console = Console()
    return console if console.is_terminal else Console(width=200, soft_wrap=False)


def _print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], when_empty: str) -> None:
    console = _console()
    if not rows:
        console.print(when_empty)
        return
    table = Table(title=f"{title} ({len(rows)})")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def attention_table(rows: Sequence[Attention]) -> None:
    _print_table(
        "需要关注的项目",
        ("项目编号", "项目名称", "区县", "责任领导", "最新状态", "日期", "活跃指数", "原因"),
        [
            (r.project_id, r.name, r.district, r.leader, r.state, r.day, "" if r.activity_index is None else f"{min(r.activity_index, 1.5):.2f}", "; ".join(r.reasons))
            for r in rows
        ],
        "当前没有需要关注的项目。",
    )


def problems_table(problems: Sequence[tuple[Problem, str]]) -> None:
    """Problems with their status on the ledger's day (open, 待销号, 逾期, closed)."""

    def state(p: Problem, status: str) -> str:
        if status == "closed":
            return f"{_CLOSED_BY.get(p.closed_by or '', '已销号')} {p.closed_at:%m-%d}"
        return PROBLEM_STATUS_NAMES[status] + (f" (限期 {p.due:%m-%d})" if p.due else "")

    _print_table(
        "问题台账",
        ("问题编号", "项目编号", "类别", "责任部门", "区县", "责任领导", "发现日期", "状态", "说明"),
        [
            (p.problem_id, p.project_id, p.category or PROBLEM_CATEGORY_NAMES.get(p.kind, p.kind), p.department or "", p.district or "", p.leader or "",
             p.opened_day.isoformat(), state(p, status), p.note or p.detail)
            for p, status in problems
        ],
        "问题台账为空。",
    )


def _cpu_shares(seconds_by_process: dict[str, float]) -> str:
    return ", ".join(f"{name} {seconds:.1f}" for name, seconds in seconds_by_process.items())


def bench_table(results: dict) -> None:
    """The benchmark's figures beside the targets of docs/performance.md."""
    r = results

    def rate(value: float) -> str:
        return f"{value:,.0f}/s"

    # A run of some phases only (--only, no earlier results) lacks the others' figures.
    row_makers = [
        lambda: ("raw kafka-python consumer, one reading per message", rate(r["raw_consumer_per_s"]), "baseline", ""),
        lambda: ("raw consumer, batch messages (readings)", rate(r["raw_consumer_packed_readings_per_s"]), "baseline", f"{r['raw_consumer_packed_records_per_s']:,.0f} messages/s"),
        lambda: ("raw line-protocol writes to influxd (points)", rate(r["raw_influx_write_per_s"]), "baseline", ""),
        lambda: ("raw aiokafka getmany, batch messages (readings)", rate(r["raw_aiokafka_packed_per_s"]), "baseline", "the client Faust sits on"),
        lambda: ("bare Faust agent, take_events only, one reading per message", rate(r["bare_faust_per_s"]), "baseline", ""),
        lambda: ("end to end, batch replay, 1 worker (readings)", rate(r["e2e_readings_per_s"]), "≥ 20,000/s", _met(r["e2e_readings_per_s"] >= 20_000)),
        lambda: ("  ÷ raw consumer (the same batch messages)", f"{r['e2e_ratio']:.2f}", "", ""),
        lambda: ("  ÷ raw influxd writes", f"{r['e2e_influx_ratio']:.2f}", "≥ 0.40", _met(r["e2e_influx_ratio"] >= 0.4)),
        lambda: ("  worker CPU s per million readings", f"{r['worker_cpu_s_per_million']:.1f} s", "≤ 9 s", _met(r["worker_cpu_s_per_million"] <= 9)),
        lambda: ("  CPU s per million, every process of the leg", _cpu_shares(r["e2e_cpu_s_per_million"]), "", f"machine busy {r['e2e_machine_busy']:.0%}"),
        lambda: ("end to end, series replay (power_series), 1 worker", rate(r["e2e_series_readings_per_s"]), "", f"{r['e2e_series_ratio_batch']:.2f} × the batch replay"),
        lambda: ("  ÷ raw influxd writes", f"{r['e2e_series_influx_ratio']:.2f}", "≥ 0.40", _met(r["e2e_series_influx_ratio"] >= 0.4)),
        lambda: ("  worker CPU s per million readings", f"{r['e2e_series_worker_cpu_s_per_million']:.1f} s", "≤ 9 s", _met(r["e2e_series_worker_cpu_s_per_million"] <= 9)),
        lambda: ("  CPU s per million, every process of the leg", _cpu_shares(r["e2e_series_cpu_s_per_million"]), "", f"machine busy {r['e2e_series_machine_busy']:.0%}"),
        lambda: ("  raw aiokafka getmany, series messages (readings)", rate(r["raw_aiokafka_series_per_s"]), "baseline", ""),
        lambda: ("one reading per message, 1 worker", rate(r["single_message_readings_per_s"]), "", f"{r['single_message_ratio']:.2f} of raw consumer"),
        lambda: ("  ÷ bare Faust agent", f"{r['single_message_ratio_bare']:.2f}", "≥ 0.85", _met(r["single_message_ratio_bare"] >= 0.85)),
        lambda: (
            "  each round (bare then worker, worker then bare)",
            " / ".join(f"{found['ratio']:.2f}" for found in r["single_message_rounds"]),
            "",
            ", ".join(f"{found['bare_per_s']:,}/s ÷ {found['worker_per_s']:,}/s" for found in r["single_message_rounds"]),
        ),
        lambda: ("  CPU s per million, bare agent's leg", _cpu_shares(r["single_cpu_s_per_million"]["bare"]), "", f"machine busy {r['single_machine_busy']['bare']:.0%}"),
        lambda: ("  CPU s per million, worker's leg", _cpu_shares(r["single_cpu_s_per_million"]["worker"]), "", f"machine busy {r['single_machine_busy']['worker']:.0%}"),
        lambda: ("freshness p50 / p99 (publish → daily point)", f"{r['freshness_p50_s']:.2f} s / {r['freshness_p99_s']:.2f} s", "p99 < 2 s", _met(r["freshness_p99_s"] < 2)),
        lambda: ("  at a steady rate of", rate(r["freshness_rate_per_s"]), "2,000/s", ""),
        lambda: (
            "live capacity: highest steady rate with p99 < 2 s",
            rate(r["live_capacity_per_s"]),
            "≥ 0.7 × bare Faust",
            f"{_met(r['live_capacity_ratio_bare'] >= 0.7)}: {r['live_capacity_ratio_bare']:.2f} × bare Faust",
        ),
        lambda: (
            "  ÷ a bare Faust agent right after it (the phase's own readings)",
            f"{r['live_capacity_ratio_bare_after']:.2f}",
            "",
            f"bare agent {rate(r['live_bare_faust_per_s'])}: the machine's speed drifts within minutes",
        ),
        lambda: ("  the worker's share of one core at that rate", f"{r['live_capacity_worker_core']:.0%}", "", "its event loop runs on one core"),
        lambda: ("  CPU s per million at a steady 2,000/s", _cpu_shares(r["freshness_cpu_s_per_million"]), "", f"machine busy {r['freshness_machine_busy']:.0%}"),
        lambda: (
            f"the year for real: {r['year_projects']} projects, {r['year_readings']:,} readings streamed",
            f"{r['year_s'] / 60:.1f} min",
            f"14.7M in < 5 min (≥ {r['year_target_per_s']:,.0f}/s)",
            f"{_met(r['year_readings_per_s'] >= r['year_target_per_s'])}: {r['year_readings_per_s']:,.0f} readings/s, worker {r['year_worker_cpu_s_per_million']:.0f} s CPU per million",
        ),
        lambda: ("year replay, 14.7M readings", f"{r['replay_year_s'] / 60:.1f} min", "< 15 min", _met(r["replay_year_s"] < 900)),
        lambda: ("  extrapolated from", f"{r['replay_year_extrapolated_from']:,} readings", "", ""),
        lambda: (
            "  with full windows (estimate)",
            f"{r['replay_year_window_adjusted_s'] / 60:.1f} min",
            "< 15 min",
            f"{_met(r['replay_year_window_adjusted_s'] < 900)}: + 420 × 365 judgements × "
            f"({r['judgement_ms_full_window']:.2f} − {r['judgement_ms_replayed_days']:.2f} ms)",
        ),
        lambda: ("2 workers ÷ 1 worker (8 partitions)", f"{r['scaling_2_workers']:.2f}×", "≥ 1.7×", _met(r["scaling_2_workers"] >= 1.7)),
        lambda: (
            "  readings per worker (keyed partitions)",
            " / ".join(f"{share:.0%}" for share in r["scaling_2_worker_shares"]),
            "",
            f"bound: {1 / max(r['scaling_2_worker_shares']):.2f}× with cores to spare",
        ),
        lambda: ("  machine busy, 1 worker / 2 workers", f"{r['scaling_1_machine_busy']:.0%} / {r['scaling_2_machine_busy']:.0%}", "", "both cores: 100 %"),
        lambda: (
            "  bound with every core busy",
            f"{r['scaling_2_workers_core_bound']:.2f}×",
            "",
            "the cores ÷ the two workers' leg's CPU per reading, ÷ one worker's rate",
        ),
        lambda: ("  CPU s per million readings, 1 worker", _cpu_shares(r["scaling_1_cpu_s_per_million"]), "", ""),
        lambda: ("  CPU s per million readings, 2 workers", _cpu_shares(r["scaling_2_cpu_s_per_million"]), "", ""),
        lambda: (
            "  judging after the last reading stored, 1 / 2 workers",
            f"{r['scaling_1_judging_after_stored_s']:.1f} s / {r['scaling_2_judging_after_stored_s']:.1f} s",
            "",
            "inside the timed leg",
        ),
        lambda: (f"worker peak RSS, {r['memory_projects']:,} projects in state", f"{r['peak_rss_mb']:.0f} MB", "< 500 MB (100k)", _met(r["peak_rss_mb"] < 500)),
        lambda: (
            f"  state per project: first day / {r['full_window_days']} days",
            f"{r['state_bytes_per_project_first_day']:,.0f} B / {r['state_bytes_per_project_full_window']:,.0f} B",
            "",
            "",
        ),
        lambda: (
            f"  the same {r['memory_projects']:,} projects, each with {r['full_window_days']} days (estimate)",
            f"{r['peak_rss_full_window_estimate_mb']:.0f} MB",
            "< 500 MB (100k)",
            f"estimate: measured peak + the difference for the {r.get('timelines_held', r['memory_projects']):,} timelines held"
            f" + the review's {r.get('review_span_days', 1)} days",
        ),
        lambda: ("slowest board query, replayed days", f"{r['board_query_max_ms']:.0f} ms", "< 300 ms", _met(r["board_query_max_ms"] < 300)),
        lambda: ("slowest board query, a year of daily points", f"{r['board_query_year_max_ms']:.0f} ms", "< 300 ms", _met(r["board_query_year_max_ms"] < 300)),
    ]
    rows = []
    for make in row_makers:
        try:
            rows.append(make())
        except KeyError:
            continue
    table = Table(title=f"sitepulse bench{' --quick (CI: small data, figures not comparable to targets)' if r.get('quick') else ''}")
    for column in ("figure", "measured", "target", ""):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    _console().print(table)


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"
