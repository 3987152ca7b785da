"""The benchmark's ratios and CPU accounts: each ratio derived where both of its
figures were measured, so a run of some phases (``--only``) still reports its own."""

from sitepulse.bench import derive_ratios


def test_a_run_of_one_reading_per_message_alone_reports_its_ratios():
    results = {"single_message_readings_per_s": 4_200.0, "bare_faust_per_s": 5_000.0, "raw_consumer_per_s": 80_000.0}
    derive_ratios(results, readings=0)
    assert results["single_message_ratio_bare"] == 4_200 / 5_000
    assert results["single_message_ratio"] == 4_200 / 80_000
    assert "e2e_ratio" not in results and "replay_year_s" not in results


def test_the_live_capacity_is_set_against_both_bare_agents():
    """The bare agent of its own phase, as the target says, and the one measured right
    after the capacity search, minutes later, on the same broker."""
    results = {"live_capacity_per_s": 4_250.0, "bare_faust_per_s": 6_372.0, "live_bare_faust_per_s": 5_500.0}
    derive_ratios(results, readings=0)
    assert results["live_capacity_ratio_bare"] == 4_250 / 6_372
    assert results["live_capacity_ratio_bare_after"] == 4_250 / 5_500
    results = {"live_capacity_per_s": 4_250.0, "live_bare_faust_per_s": 5_500.0}
    derive_ratios(results, readings=0)
    assert "live_capacity_ratio_bare" not in results and results["live_capacity_ratio_bare_after"] == 4_250 / 5_500


def test_end_to_end_is_divided_by_the_consumer_of_its_own_packed_topic():
    results = {
        "e2e_readings_per_s": 100_000.0,
        "replay_readings_per_s": 100_000.0,
        "raw_consumer_per_s": 80_000.0,
        "raw_consumer_packed_readings_per_s": 1_000_000.0,
        "raw_influx_write_per_s": 250_000.0,
        "e2e_readings": 2_000_000,
    }
    derive_ratios(results, readings=2_000_000)
    assert results["e2e_ratio"] == 0.1 and results["e2e_influx_ratio"] == 0.4
    assert "single_message_ratio_bare" not in results
    assert results["replay_year_s"] == 14_716_800 / 100_000 and results["replay_year_extrapolated_from"] == 2_000_000


def test_the_year_measured_for_real_is_not_extrapolated():
    results = {"year_s": 290.0, "replay_readings_per_s": 100_000.0, "e2e_readings_per_s": 100_000.0}
    derive_ratios(results, readings=0)
    assert "replay_year_s" not in results


def test_two_legs_accounted_together_add_their_cpu_and_the_machine_time():
    from sitepulse.bench import CpuAccount

    first, second = CpuAccount({}), CpuAccount({})
    first.used, first.machine_jiffies = {"agent": 3.0, "broker": 0.5}, (100, 200)  # half busy
    second.used, second.machine_jiffies = {"agent": 1.0, "broker": 0.5}, (300, 400)  # three quarters
    both = CpuAccount.combined([first, second])
    assert both.used == {"agent": 4.0, "broker": 1.0}
    assert both.machine_busy == round(400 / 600, 3)  # weighted by the time each leg took
    assert both.per_million(2_000_000) == {"agent": 2.0, "broker": 0.5}
