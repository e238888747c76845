"""The test tiers: which tests ``bash scripts/test.sh --fast`` leaves out, and why.

``bash scripts/test.sh`` runs the whole suite (what CI runs). ``--fast`` (a pytest option of tests/conftest.py,
so ``pytest --fast`` works too) runs every test that needs no root, no browser, no real time and no long
computation, aiming at under 3 minutes on a 2-core machine. A test is **slow** (and left out) when

1. it is marked ``slow`` or ``root`` in its file;
2. it checks for root: its source, or the source of a fixture of tests/ it uses, calls ``os.geteuid()``, or a
   skip mark's reason says it needs root (it gets the ``root`` mark too, so ``-m root`` finds it);
3. it drives a browser: its source or a fixture's uses Selenium's ``webdriver`` or ``play_browser(``;
4. its module is in ``SLOW_MODULES``, it is in ``SLOW_TESTS``, or it uses a fixture in ``SLOW_FIXTURES``
   (each with the reason: *root*, *browser*, *real time*: its length is set by the clock, as an emulated link,
   a rate-paced sender, a player, a server under timed load, iperf3; *long*: over ~5 s of computation alone
   on a quiet 2-core machine, as a training run, a study, a whole pipeline; the fast tier would not fit in
   3 minutes with them).

Every test module is in ``SLOW_MODULES`` or ``FAST_MODULES``: tests/test_tiers.py fails on a module in neither
(so whoever adds one decides its tier; until then the rules above still apply to it) and on a name here that
no longer exists. In the fast tier each test has ``FAST_TEST_TIMEOUT_S`` (pytest-timeout; a hang guard, not a
measurement): a test that needs longer is slow and belongs in a list here.

Measured (this 2-core machine, with one or two trainings beside it at the lowest priority, their autogroup's
too): the fast tier took 7:30 in one process, 4:37 on 2 workers and 3:42 once the tests over ~6 s joined the long
ones (2026-12-07, 1,045 tests; 3:59 on 2 workers beside two trainings, 2026-12-08). The whole suite from a fresh
clone (`time CI=true bash .ci/run`, 1,282 tests, two trainings beside it at the lowest priority, 2026-12-08):
39:29 of tests (42:17 in all) in one process; 26:42 (29:04) on 2 workers with the clock part on one of them;
25:29 (27:56) once the README's LB block ran on small budgets. There the clock worker ran its 154 tests in
23.5 min, then compute modules; the other ran 1,132 compute tests in 23.6 min: both parts now set the time.
Later that day, with bytecode caches written (scripts/test.sh) and one training beside: the whole suite 23:07
(25:20 in all, 1,283 tests); the fast tier 2:53-2:55 in a work tree, 3:19 on a fresh clone's first run.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
FAST_TEST_TIMEOUT_S = 60

ROOT, BROWSER, REAL_TIME, LONG = "root", "browser", "real time", "long"

# Whole modules left out of the fast tier, and why.
SLOW_MODULES: dict[str, str] = {
    "test_ray_cluster": f"{LONG}, {ROOT}, {REAL_TIME}: a two-node local Ray cluster started and stopped, genet "
                        f"emulate over links on both nodes",
    "test_deploy_campaign": f"{ROOT}: campaigns over an sshd testbed in network namespaces",
    "test_deploy_lb": f"{ROOT}: an LB campaign over an sshd testbed in network namespaces",
    "test_deploy_testbed": f"{ROOT}: sshd hosts in network namespaces",
    "test_deploy_calibrate_testbed": f"{ROOT}, {REAL_TIME}: a CC campaign over an sshd testbed, calibrated and "
                                     f"emulated",
    "test_emulation_fidelity": f"{ROOT}, {REAL_TIME}: iperf3 through emulated links beside the simulator",
    "test_emulation_mininet": f"{ROOT}, {REAL_TIME}: Mininet hosts",
    "test_emulation_netns": f"{ROOT}, {REAL_TIME}: the netns emulator carrying packets",
    "test_emulation_pcap": f"{ROOT}, {REAL_TIME}: captures of an emulated link",
    "test_player_browser": f"{BROWSER}, {ROOT}: Chromium playing over emulated links",
    "test_player_emulate": f"{ROOT}, {REAL_TIME}: players over emulated links",
    "test_sender_emulation": f"{ROOT}, {REAL_TIME}: senders over emulated links",
    "test_balancer_servers": f"{REAL_TIME}: worker servers paced by the clock, the balancer, the client on loopback",
    "test_balancer_emulate": f"{ROOT}, {REAL_TIME}: genet emulate lb: workers, balancer and client over emulated links",
    "test_runtime_install": f"{LONG}: builds the wheel and installs it into fresh virtual environments",
    "test_ray_workers": f"{LONG}: starts a Ray cluster",
    "test_agents_imitation": f"{LONG}: BC, DAgger and A3C training runs, train -> export -> eval commands",
    "test_abr_dt": f"{LONG}, {REAL_TIME}: a Decision Transformer training run, train -> export -> eval commands, a "
                   f"player over loopback (and with root an emulated run) written into experience pools",
    "test_cc_agents": f"{LONG}: CC BC, DAgger and A3C training runs, train -> export -> eval -> fine-tune commands",
}

# Modules whose tests run in the fast tier (except those that SLOW_TESTS, SLOW_FIXTURES or the rules above name).
FAST_MODULES: set[str] = {
    "test_experiment", "test_usecase", "test_executor",
    "test_abr_baselines", "test_abr_env", "test_abr_optimal_cli", "test_abr_policy", "test_abr_runtime",
    "test_abr_sim", "test_abr_sim_bounds", "test_abr_single_env", "test_abr_tf_import", "test_abr_training",
    "test_abr_startup", "test_agents", "test_abr_dqn",
    "test_balancer_units",
    "test_lb_eval", "test_lb_policies", "test_lb_simulator", "test_lb_training", "test_lb_workload", "test_lb_startup",
    "test_allocator", "test_cc_baselines", "test_cc_env", "test_cc_eval", "test_cc_invariants", "test_cc_monitor",
    "test_cc_startup_window", "test_cc_kernel_cache", "test_cc_interval_rule",
    "test_cc_simulator", "test_cc_training", "test_clone_alone", "test_commands", "test_config", "test_layering",
    "test_curriculum_loop",
    "test_deploy_config", "test_deploy_calibrate",
    "test_deploy_robustness", "test_emulation_link_queue", "test_emulation_mahimahi", "test_emulation_robustness",
    "test_journal", "test_player_hardening", "test_player_server", "test_policy_protocol", "test_ppo_algorithm",
    "test_readme_commands", "test_registry",
    "test_result_columns", "test_rollout_workers", "test_run_config", "test_run_config_robustness",
    "test_run_duration", "test_run_costs",
    "test_run_pipeline", "test_run_jobs", "test_run_report", "test_runmeta", "test_runtime_imports", "test_sender", "test_sender_hardening",
    "test_sender_iperf3", "test_setup", "test_shipped_models", "test_stats", "test_study_compare", "test_study_training", "test_tiers",
    "test_traces_atomic", "test_traces_cli", "test_traces_formats", "test_traces_fuzz", "test_traces_generators",
    "test_traces_malformed", "test_train_cli",
    "test_typed_config",
}

# Single tests of fast modules left out, as "module::function" (all parametrizations), and why.
SLOW_TESTS: dict[str, str] = {
    "test_clone_alone::test_the_quickstart_simulates_on_the_shipped_samples":
        f"{LONG}: the quickstart's simulations on the shipped samples",
    "test_curriculum_loop::test_curriculum_with_promotion_distance_promotes_each_region_once":
        f"{LONG}: a curriculum run",
    "test_curriculum_loop::test_resume_continues_exactly": f"{LONG}: two curriculum runs",
    "test_emulation_mahimahi::test_real_mahimahi_shell_sets_mahimahi_base_and_returns_status":
        f"{REAL_TIME}: real Mahimahi",
    "test_emulation_mahimahi::test_real_mahimahi_reports_signals_and_the_end_of_a_once_trace_as_netns":
        f"{REAL_TIME}: real Mahimahi",
    "test_emulation_mahimahi::test_real_mahimahi_refuses_a_command_its_user_cannot_run":
        f"{REAL_TIME}: real Mahimahi",
    "test_player_hardening::test_health_answers_within_1s_with_1000_slow_body_connections":
        f"{REAL_TIME}: 1,000 connections trickle for 10 s",
    "test_player_hardening::test_a_request_trickling_past_the_receive_deadline_is_closed":
        f"{REAL_TIME}: waits for the server's receive deadline",
    "test_player_server::test_player_retries_through_a_server_restart_and_counts_the_wait_as_stall":
        f"{REAL_TIME}: a player through a server outage",
    "test_player_server::test_player_gives_up_with_the_reason_and_a_killed_run_leaves_a_readable_log":
        f"{REAL_TIME}: a player giving up, a player killed mid-video",
    "test_player_server::test_encoded_video_tracks_the_ladder_and_plays": f"{LONG}: ffmpeg encodes a video",
    "test_policy_protocol::test_the_udp_sender_decides_through_act": f"{REAL_TIME}: a sender over loopback",
    "test_rollout_workers::test_local_workers_shared_gradient_files_give_the_in_process_update":
        f"{LONG}: training in worker processes",
    "test_abr_training::test_critic_warmup_with_rollout_workers": f"{LONG}: training in worker processes",
    "test_rollout_workers::test_abr_workers_same_seed_same_run_and_exact_resume":
        f"{LONG}: training in worker processes",
    "test_rollout_workers::test_cc_cli_with_two_workers_resumes_exactly": f"{LONG}: training in worker processes",
    "test_run_pipeline::test_a_killed_run_resumes_to_the_same_result_as_an_uninterrupted_one":
        f"{LONG}: two `genet run`s of a tiny config",
    "test_run_pipeline::test_an_lb_policy_is_trained_exported_simulated_and_reported_and_a_killed_training_resumes":
        f"{LONG}: three `genet run`s of a tiny LB config, one killed in its training",
    "test_run_jobs::test_jobs_2_gives_the_results_of_jobs_1_with_each_items_own_cpu_time":
        f"{LONG}: three `genet run`s of a tiny CC config",
    "test_run_jobs::test_a_failing_item_fails_its_stage_the_others_finish_and_the_rerun_redoes_only_it":
        f"{LONG}: two `genet run`s of a tiny CC config",
    "test_sender::test_run_completes_with_correct_figures_under_10000_malformed_datagrams":
        f"{REAL_TIME}: a sender over loopback",
    "test_sender::test_sender_survives_lost_duplicated_and_reordered_acks": f"{REAL_TIME}: a sender over loopback",
    "test_sender::test_sender_stops_after_the_stated_silence_when_the_receiver_disappears":
        f"{REAL_TIME}: a sender over loopback",
    "test_sender::test_sigterm_and_sigint_stop_both_cleanly_with_the_log_flushed":
        f"{REAL_TIME}: a sender over loopback",
    "test_sender::test_sigkill_leaves_a_readable_log_prefix": f"{REAL_TIME}: a sender over loopback",
    "test_sender::test_an_aurora_model_drives_the_rate_over_loopback": f"{REAL_TIME}: a sender over loopback",
    "test_sender_hardening::test_sender_survives_and_counts_4000_hostile_acks_with_bounded_memory":
        f"{REAL_TIME}: a sender over loopback",
    "test_sender_hardening::test_a_wrong_version_ack_is_malformed_not_an_ack":
        f"{REAL_TIME}: a sender stopping on silence",
    "test_sender_hardening::test_the_sender_log_is_strict_json_with_null_for_undefined_figures":
        f"{REAL_TIME}: a sender stopping on silence",
    "test_sender_iperf3::test_run_and_parse_real_iperf3_on_loopback": f"{REAL_TIME}: iperf3 over loopback",
    "test_sender_iperf3::test_server_report_with_intervals_and_the_listening_probe":
        f"{REAL_TIME}: iperf3 over loopback",
    "test_sender_iperf3::test_malformed_truncated_and_failed_reports_give_clear_errors":
        f"{REAL_TIME}: iperf3 over loopback",
    "test_study_training::test_tiny_study_runs_resumes_and_writes_the_table_and_curves": f"{LONG}: a whole study",
    "test_study_training::test_tiny_lb_study_picks_each_run_checkpoint_on_the_validation_episodes":
        f"{LONG}: an LB study run, its checkpoints evaluated on 20 episodes and the chosen one on 70",
    "test_lb_training::test_a_short_run_learns_to_beat_random_on_two_workers": f"{LONG}: ten PPO updates",
    "test_lb_training::test_genet_train_lb_trains_exports_and_evaluates_and_refuses_unknown_methods":
        f"{LONG}: a genet train lb run, its export and evaluation",
    # over ~6 s each on a quiet 2-core machine (`bash scripts/test.sh --fast`'s slowest list, 2026-12-07)
    "test_study_training::test_tiny_agents_study_builds_the_pool_counts_both_stages_and_reports_speed":
        f"{LONG}: a tiny agents study (an experience pool, an imitation stage and its PPO fine-tune, a Decision "
        f"Transformer; 37 s)",
    "test_study_training::test_ship_models_from_run_ships_a_finished_run_with_its_own_command":
        f"{LONG}: a training run, its export and evaluation (7 s)",
    "test_run_pipeline::test_an_abr_policy_of_another_agent_is_trained_exported_simulated_and_labelled":
        f"{LONG}: two `genet run`s of a tiny config with an imitation-trained policy (17 s)",
    "test_tiers::test_the_fast_tier_selects_no_test_marked_root_or_slow":
        f"{LONG}: collects the whole suite in a pytest subprocess (19 s)",
    "test_tiers::test_the_rules_classify_a_module_nobody_listed_test_by_test":
        f"{LONG}: four pytest subprocesses (10 s)",
    "test_traces_fuzz::test_near_valid_json": f"{LONG}: Hypothesis parses hundreds of near-valid trace files (10 s)",
    "test_traces_fuzz::test_near_valid_csv": f"{LONG}: Hypothesis parses hundreds of near-valid trace files (9 s)",
    "test_traces_fuzz::test_near_valid_pensieve":
        f"{LONG}: Hypothesis parses hundreds of near-valid trace files (6 s)",
    "test_train_cli::test_curriculum_resume_matches_an_uninterrupted_run": f"{LONG}: two curriculum runs (8 s)",
}

# Fixtures (defined under tests/) whose users are left out, and why.
SLOW_FIXTURES: dict[str, str] = {
    "tiny_run": f"{LONG}: `genet run` of a tiny config (training, simulation, report)",
}

_ROOT_SOURCE = re.compile(r"\bgeteuid\(\)")
_BROWSER_SOURCE = re.compile(r"\bwebdriver\b|\bplay_browser\(")
_ROOT_REASON = re.compile(r"\broot\b", re.IGNORECASE)
_source_cache: dict[object, str] = {}


def _source(fn) -> str:
    """The source of a function defined under tests/ ('' for anything else: pytest's own fixtures)."""
    if fn not in _source_cache:
        text = ""
        try:
            inner = inspect.unwrap(fn)
            if Path(inspect.getsourcefile(inner) or "").resolve().is_relative_to(TESTS):
                text = inspect.getsource(inner)
        except (OSError, TypeError, ValueError):
            pass
        _source_cache[fn] = text
    return _source_cache[fn]


def _fixtures(item) -> dict[str, list]:
    info = getattr(item, "_fixtureinfo", None)
    return {name: [d.func for d in defs] for name, defs in getattr(info, "name2fixturedefs", {}).items()}


def slow_reason(item) -> str | None:
    """Why ``item`` is left out of the fast tier (``None``: it runs there). Adds the ``root`` mark to a test
    that rule 2 finds."""
    module = item.path.stem
    fixtures = _fixtures(item)
    sources = [_source(getattr(item, "obj", None))] + [_source(f) for fs in fixtures.values() for f in fs]
    skip_reasons = [str(m.kwargs.get("reason", "")) for name in ("skip", "skipif") for m in item.iter_markers(name)]
    if item.get_closest_marker("root") is None and (any(_ROOT_SOURCE.search(s) for s in sources)
                                                    or any(_ROOT_REASON.search(r) for r in skip_reasons)):
        item.add_marker(pytest.mark.root)
    if module in SLOW_MODULES:
        return SLOW_MODULES[module]
    if item.get_closest_marker("root") is not None:
        return f"{ROOT} (marked, or it checks os.geteuid())"
    if item.get_closest_marker("slow") is not None:
        return "marked slow"
    if any(_BROWSER_SOURCE.search(s) for s in sources):
        return f"{BROWSER} (it drives one)"
    name = f"{module}::{getattr(item, 'originalname', item.name)}"
    if name in SLOW_TESTS:
        return SLOW_TESTS[name]
    for fixture in fixtures:
        if fixture in SLOW_FIXTURES:
            return f"{SLOW_FIXTURES[fixture]} (fixture {fixture})"
    return None


#: The suite's two parts: ``compute`` holds the fast tier and the tests that are slow only for their computation
#: (*long*); ``clock`` the tests that need root, a browser or real time, whose length is mostly waiting (on
#: links, players, servers, sshd) and whose figures need the CPU when they ask for it. ``bash scripts/test.sh``
#: runs them side by side on pytest-xdist workers (:data:`CLOCK_GROUP`); ``--part`` selects one.
PARTS = ("compute", "clock")


#: Modules that run in the clock part although they are slow only for their computation, and why.
CLOCK_PART_MODULES: dict[str, str] = {
    "test_ray_workers": "its teardown's `ray stop --force` stops every Ray cluster on the machine, test_ray_cluster's "
                        "(clock part) too: the two run in one part, one after the other",
}


#: The whole suite on several cores (``bash scripts/test.sh``: pytest-xdist workers, ``--dist loadgroup``): every
#: clock-part test is in one group (:data:`CLOCK_GROUP`), which one worker runs from the start, one test after
#: another as in one process (namespaces, links and timed players never share the machine with another of
#: their kind); the compute part's tests go by module (each module's fixtures and order as in one process) to
#: the other workers, at :data:`COMPUTE_NICE` while a test runs (root only: its priority is restored after),
#: so a clock test beside them gets the CPU its timing needs. The fast tier holds only compute tests: the
#: same grouping, whole modules per worker, at normal priority.
CLOCK_GROUP = "clock"
COMPUTE_NICE = 19


def xdist_group(part: str, module: str) -> str:
    """The pytest-xdist group of a test of ``part`` in ``module`` (see :data:`CLOCK_GROUP`)."""
    return CLOCK_GROUP if part == "clock" else f"module-{module}"


def part_of(reason: str | None, module: str = "", root: bool = False) -> str:
    """The part (:data:`PARTS`) a test runs in, from its slow reason (``None``: fast), its module and whether it
    is marked root: ``compute`` when it is fast or slow only for being *long*; ``clock`` otherwise (root, browser,
    real time, marked slow, or its module in :data:`CLOCK_PART_MODULES`): every test that builds namespaces and
    links runs in the clock part, one at a time."""
    if module in CLOCK_PART_MODULES or root:
        return "clock"
    if reason is None:
        return "compute"
    kinds = [k.strip() for k in reason.split(":")[0].split(",")]
    return "compute" if kinds == [LONG] else "clock"


def classify(items: list) -> dict[str, str]:
    """Mark every slow item ``slow`` (so ``-m "not slow"`` is the fast tier too); returns nodeid -> reason."""
    out = {}
    for item in items:
        reason = slow_reason(item)
        if reason is not None:
            out[item.nodeid] = reason
            if item.get_closest_marker("slow") is None:
                item.add_marker(pytest.mark.slow)
    return out
