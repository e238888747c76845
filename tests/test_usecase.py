"""Each use case is one description (foundation/usecase.py), and the parts it names exist and agree."""

from __future__ import annotations

import importlib

import pytest

from foundation.errors import BadInputError
from foundation.metrics import Column
from foundation.registry import RegistryError
from foundation.usecase import USE_CASES, UseCase, all_use_cases, load, use_case


@pytest.mark.parametrize("name", USE_CASES.names())
def test_every_declared_use_case_names_parts_that_exist(name):
    uc = use_case(name)
    assert uc.name == name
    registry = uc.policy_registry()
    for b in uc.baselines:
        registry.resolve(b)  # every baseline is a policy name of its registry
    assert uc.curriculum_baseline in uc.baselines
    space = uc.config_space()
    assert space.use_case == name and space.dimensions
    assert callable(load(uc.environment)) and callable(uc.reward_function())
    if uc.schemes:
        assert callable(load(uc.schemes))
    for path in uc.extra.values():
        assert callable(load(path))
    # the one column list: the description's columns are the use case's module's own list
    module = importlib.import_module(uc.columns[0].__class__.__module__)
    assert module.__name__ == "foundation.metrics" and uc.table_columns and uc.column_names


def test_the_cc_and_abr_columns_are_the_modules_one_list():
    from genet.abr.qoe import COLUMNS as ABR
    from genet.cc.metrics import COLUMNS as CC
    assert use_case("abr").columns is ABR and use_case("cc").columns is CC
    assert {u.name for u in all_use_cases()} >= {"abr", "cc"}


def test_an_unknown_use_case_lists_the_known_ones():
    with pytest.raises(BadInputError, match="unknown use case 'video'; known: abr, cc"):
        use_case("video")


def _col(name):
    return Column(name, "", name, "a column")


def test_a_bad_description_is_refused_in_one_line():
    good = dict(name="x", title="X", columns=(_col("reward"),), reward="m:f", reward_fields=("reward",), space="x",
                environment="m:Env", policies="m:P", baselines=("b",), curriculum_baseline="b")
    UseCase(**good)
    for change, msg in (({"reward_fields": ("tput",)}, "reward fields"),
                        ({"columns": (_col("a"), _col("a"))}, "duplicate result columns"),
                        ({"environment": "no colon"}, "import path"),
                        ({"curriculum_baseline": "c"}, "curriculum baseline")):
        with pytest.raises(RegistryError, match=msg):
            UseCase(**{**good, **change})


def test_deploy_takes_its_scheme_runner_from_the_use_case():
    from deploy.config import Scheme
    from deploy.schemes import runner_for
    from player.schemes import PlayerRunner
    from sender.schemes import IperfRunner, SenderRunner
    assert isinstance(runner_for(Scheme("cubic", "kernel", "cubic"), "cc"), IperfRunner)
    assert isinstance(runner_for(Scheme("c5", "const", "5"), "cc"), SenderRunner)
    assert isinstance(runner_for(Scheme("bba", "abr-baseline", "bba"), "abr"), PlayerRunner)
