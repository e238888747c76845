"""foundation/registry.py: the one registry class (validation on registration, names listed on a miss, name forms,
lazy import-path factories), both use cases' registries as instances of it, and no registration by import
(policies or Gymnasium ids)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from foundation.errors import BadInputError, GenetRuntimeError
from foundation.registry import Registry, RegistryEntry, RegistryError, UnknownNameError


def _factory(**options):
    return ("made", options)


def _with_argument(arg, **options):
    return ("arg", arg, options)


def test_register_returns_the_entry_and_make_passes_argument_and_options():
    reg = Registry("test policy")
    entry = reg.register("bba", _factory, description="a baseline", causal=True)
    assert isinstance(entry, RegistryEntry) and entry.name == "bba" and entry.attributes["causal"] is True
    reg.register("const", _with_argument, argument="MBPS", description="constant rate")
    reg.register("onnx", _with_argument, suffix=".onnx", description="a model file")
    assert reg.names() == ["bba", "const", "onnx"]
    assert reg.forms() == ["bba", "const:MBPS", "PATH.onnx"]
    assert "bba" in reg and len(reg) == 3 and list(reg) == reg.names()
    assert reg.make("bba", x=1) == ("made", {"x": 1})
    assert reg.make("const:5", x=2) == ("arg", "5", {"x": 2})
    assert reg.make("dir/model:v2.onnx") == ("arg", "dir/model:v2.onnx", {})
    assert reg.get("const") is reg.entries()[1]
    assert reg.describe().splitlines()[1].startswith("const:MBPS  constant rate")


@pytest.mark.parametrize("name, factory, kwargs, message", [
    ("BBA", _factory, {}, "lowercase identifier"),
    ("b b", _factory, {}, "lowercase identifier"),
    ("", _factory, {}, "lowercase identifier"),
    ("x" * 40, _factory, {}, "lowercase identifier"),
    ("bba", 42, {}, "factory must be a callable or an import path"),
    ("bba", "no import path", {}, "must be a callable or an import path"),
    ("bba", "genet.abr.optimal", {}, "must be a callable or an import path"),
    ("bba", _factory, {"description": "two\nlines"}, "one non-empty line"),
    ("bba", _factory, {"description": " "}, "one non-empty line"),
    ("bba", _factory, {"argument": "mbps"}, "argument placeholder 'mbps'"),
    ("bba", _factory, {"suffix": "onnx"}, "suffix 'onnx'"),
    ("bba", _factory, {"argument": "N", "suffix": ".onnx"}, "not both"),
])
def test_registration_is_validated_with_one_line_errors(name, factory, kwargs, message):
    reg = Registry("test policy")
    kwargs = {"description": "d", **kwargs}
    with pytest.raises(RegistryError, match=message) as err:
        reg.register(name, factory, **kwargs)
    assert "\n" not in str(err.value) and str(err.value).startswith("test policy registry: ")
    assert len(reg) == 0  # nothing half-registered


def test_duplicate_names_and_suffixes_are_refused():
    reg = Registry("test policy")
    reg.register("bba", _factory, description="first")
    with pytest.raises(RegistryError, match="'bba' is already registered \\(first\\)"):
        reg.register("bba", _factory, description="second")
    reg.register("onnx", _with_argument, suffix=".onnx", description="model")
    with pytest.raises(RegistryError, match="suffix .onnx is already 'onnx'"):
        reg.register("model", _with_argument, suffix=".onnx", description="model again")
    assert reg.get("bba").description == "first"


def test_a_miss_lists_the_known_forms_in_one_line():
    reg = Registry("CC policy")
    reg.register("bbr", _factory, description="d")
    reg.register("const", _with_argument, argument="MBPS", description="d")
    reg.register("onnx", _with_argument, suffix=".onnx", description="d")
    for text in ("vegas", "bbr:2", "onnx", ".onnx", "model.pt"):
        with pytest.raises(UnknownNameError) as err:
            reg.resolve(text)
        assert str(err.value) == f"unknown CC policy {text!r}; known: bbr, const:MBPS, PATH.onnx"
        assert isinstance(err.value, BadInputError)
    with pytest.raises(UnknownNameError, match="unknown CC policy 'const:5'; known: bbr, const:MBPS"):
        reg.get("const:5")  # get() takes entry names; resolve() takes what a user typed
    for text in ("const", "const:"):
        with pytest.raises(BadInputError, match=r"'const.*' needs an argument: const:MBPS"):
            reg.resolve(text)


def test_import_path_factories_resolve_on_first_use_only():
    code = ("import sys\n"
            "from foundation.registry import Registry\n"
            "reg = Registry('t')\n"
            "reg.register('x', 'json.decoder:JSONDecoder', description='lazy')\n"
            "assert 'json.decoder' not in sys.modules\n"
            "assert type(reg.make('x')).__name__ == 'JSONDecoder' and 'json.decoder' in sys.modules\n"
            "import genet.abr.registry as r\n"
            "assert 'genet.abr.optimal' not in sys.modules and 'numba' not in sys.modules\n"
            "assert r.POLICIES.get('optimal').factory == 'genet.abr.optimal:plan_policy'\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    reg = Registry("test policy")
    reg.register("gone", "genet.no_such_module:make", description="d")
    reg.register("typo", "foundation.registry:no_such_factory", description="d")
    with pytest.raises(GenetRuntimeError, match="gone: its factory genet.no_such_module:make cannot be loaded "
                                                "\\(ModuleNotFoundError"):
        reg.make("gone")
    with pytest.raises(GenetRuntimeError, match="typo: its factory .* cannot be loaded \\(AttributeError"):
        reg.make("typo")


def test_both_use_cases_keep_their_policies_in_the_one_registry_class():
    from genet.abr import registry as abr
    from genet.cc import registry as cc
    assert type(abr.POLICIES) is Registry and type(cc.POLICIES) is Registry
    assert abr.POLICIES.forms() == ["bba", "mpc", "optimal", "PATH.onnx"]
    assert cc.POLICIES.forms() == ["bbr", "cubic", "tcp:NAME", "const:MBPS", "PATH.onnx"]
    assert [e.attributes["causal"] for e in abr.POLICIES.entries()] == [True, True, False, True]
    # register_builtins fills a fresh registry the same way, and refuses to run twice on one
    fresh = abr.register_builtins(Registry("ABR policy"))
    assert fresh.forms() == abr.POLICIES.forms()
    with pytest.raises(RegistryError, match="'bba' is already registered"):
        abr.register_builtins(fresh)
    with pytest.raises(abr.UnknownPolicyError, match="unknown ABR policy 'bola'; known: bba, mpc, optimal, "
                                                     "PATH.onnx"):
        abr.make_policy("bola")
    with pytest.raises(UnknownNameError, match="--policy 'bola': unknown CC policy; known: bbr, cubic, tcp:NAME"):
        cc.parse_policy("bola")
    with pytest.raises(BadInputError, match="--policy 'const:': CC policy needs an argument: const:MBPS"):
        cc.parse_policy("const:")
    assert cc.parse_policy("tcp:cubic") == cc.parse_policy("cubic")
    assert cc.parse_policy("tcp:reno", real_packets=True).label == "tcp:reno"
    with pytest.raises(BadInputError, match="run only on real packets"):
        cc.parse_policy("tcp:reno")


def test_make_policy_refuses_objects_that_are_not_policies():
    from genet.abr.registry import make_policy
    with pytest.raises(BadInputError, match="object is not a policy \\(genet.policy.Policy\\): it lacks spec, "
                                            "name, bind, reset, act"):
        make_policy(object())


def test_importing_genet_registers_nothing_with_gymnasium():
    """The Gym ids come from the explicit register_envs() functions, never from an import."""
    code = ("import gymnasium\n"
            "import genet.abr.registry, genet.cc.registry, genet.abr.env, genet.cc.env\n"
            "import genet.abr.evaluate, genet.cc.evaluate, genet.abr.training, genet.cc.training\n"
            "ids = ('genet/Abr-v0', 'genet/Aurora-v0')\n"
            "assert not [i for i in ids if i in gymnasium.registry], 'registered on import'\n"
            "genet.abr.env.register_envs(); genet.cc.env.register_envs(); genet.abr.env.register_envs()\n"
            "assert all(i in gymnasium.registry for i in ids)\n"
            "assert gymnasium.spec('genet/Abr-v0').vector_entry_point == 'genet.abr.env:AbrVectorEnv'\n"
            "assert gymnasium.make('genet/Aurora-v0').observation_space.shape == (30,)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
