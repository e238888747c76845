"""LB (load balancing), declared once: :func:`declare` returns its :class:`foundation.usecase.UseCase`.
Cheap to import: every part is named by its import path."""

from __future__ import annotations

from foundation.usecase import UseCase


def declare() -> UseCase:
    from genet.lb.metrics import COLUMNS  # the one LB column list
    return UseCase(
        name="lb",
        title="Load balancing (Park's / Genet's LB setting)",
        columns=COLUMNS,
        reward="genet.lb.metrics:reward",
        reward_fields=("reward", "mean_completion_time_s"),
        space="lb",
        environment="genet.lb.env:LoadBalanceEnv",
        gym_id="genet/LoadBalance-v0",
        policies="genet.lb.registry:POLICIES",
        baselines=("least_work", "sed", "jsq", "power_of_two", "round_robin", "random"),
        curriculum_baseline="least_work",
        schemes="balancer.schemes:runner",
        emulate=("emulate", "lb"),
        table_name="LB table (Genet's Figures 9-11 metrics)",
        key_columns=("policy", "workload"),
        extra={"training": "genet.lb.training:build_use_case"},
    )
