"""`netpulse up`'s restart rule: doubling back-off, reset after a stable life, give-up window."""

from __future__ import annotations

import signal

from netpulse.cli.supervisor import RestartPolicy, describe_exit


def test_delays_double_up_to_the_cap() -> None:
    policy = RestartPolicy(max_restarts=100, window=600)
    delays = [policy.died(now=float(i), ran_for=0.5) for i in range(8)]
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30]


def test_a_stable_life_resets_the_back_off() -> None:
    policy = RestartPolicy(max_restarts=100, window=600)
    assert [policy.died(float(i), 0.5) for i in range(3)] == [1, 2, 4]
    assert policy.died(100.0, ran_for=60.0) == 1
    assert policy.died(101.0, ran_for=0.5) == 2


def test_one_death_more_than_allowed_within_the_window_gives_up() -> None:
    policy = RestartPolicy(max_restarts=2, window=60)
    assert policy.died(0.0, 0.5) is not None
    assert policy.died(10.0, 0.5) is not None
    assert policy.died(20.0, 0.5) is None


def test_deaths_older_than_the_window_are_forgotten() -> None:
    policy = RestartPolicy(max_restarts=2, window=60)
    assert policy.died(0.0, 0.5) is not None
    assert policy.died(10.0, 0.5) is not None
    assert policy.died(61.0, 0.5) is not None  # the first death left the window
    assert policy.died(65.0, 0.5) is None  # three within 60 s: 10, 61, 65


def test_exit_descriptions_name_the_signal() -> None:
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(3) == "exit status 3"
    assert describe_exit(0) == "exit status 0"
