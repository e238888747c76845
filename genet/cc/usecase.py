"""CC (congestion control), declared once: :func:`declare` returns its :class:`foundation.usecase.UseCase`.
Cheap to import: every part is named by its import path."""

from __future__ import annotations

from foundation.usecase import UseCase


def declare() -> UseCase:
    from genet.cc.metrics import COLUMNS  # the one CC column list (Table 7)
    return UseCase(
        name="cc",
        title="Congestion control (Aurora's setting)",
        columns=COLUMNS,
        reward="genet.cc.reward:packet_level_reward",
        reward_fields=("throughput_mbps", "p90_rtt_ms", "loss_rate"),
        space="cc",
        environment="genet.cc.env:AuroraEnv",
        gym_id="genet/Aurora-v0",
        policies="genet.cc.registry:POLICIES",
        baselines=("bbr", "cubic"),
        curriculum_baseline="bbr",
        schemes="sender.schemes:runner",
        emulate=("emulate", "cc"),
        table_name="Table 7 (CC)",
        key_columns=("policy", "trace"),
        extra={"training": "genet.cc.training:build_use_case"},
    )
