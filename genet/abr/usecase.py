"""ABR (adaptive bitrate video streaming), declared once: :func:`declare` returns its
:class:`foundation.usecase.UseCase`. Cheap to import: every part is named by its import path."""

from __future__ import annotations

from foundation.usecase import UseCase


def declare() -> UseCase:
    from genet.abr.qoe import COLUMNS  # the one ABR column list (Table 6)
    return UseCase(
        name="abr",
        title="Adaptive bitrate video streaming (Pensieve's setting)",
        columns=COLUMNS,
        reward="genet.abr.qoe:chunk_qoe",
        reward_fields=("bitrate_mbps", "rebuffer_s", "bitrate_change_mbps"),
        space="abr",
        environment="genet.abr.env:AbrEnv",
        gym_id="genet/Abr-v0",
        policies="genet.abr.registry:POLICIES",
        baselines=("bba", "mpc"),
        curriculum_baseline="mpc",
        schemes="player.schemes:runner",
        emulate=("emulate", "abr"),
        table_name="Table 6 (ABR)",
        key_columns=("policy", "trace"),
        extra={"training": "genet.abr.training:build_use_case"},
    )
