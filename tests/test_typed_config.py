"""The typed config layer (foundation/config.py config_class/freeze/thaw): a checked `genet run` config is frozen
dataclasses made from its declaration (app/run/schema.py RunConfig): assigning raises, lists are tuples, a key that
is a Python keyword is reachable, named tables are read-only mappings, bad input is still one ConfigError line, and
freeze/thaw round-trip (also through the run folder's config.json)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

import pytest

from conftest import REPO
from foundation.config import ConfigError, Key, Table, config_class, field_name, fill, freeze, thaw
from app.run import engine, plan, schema

MINIMAL = """
[traces.t]
gen = "cc"
n = 2
[traces.u]
from = "t"
n = 1
[cc]
[cc.policies.p]
method = "udr"
extra_args = ["--entropy-rate", "0.002"]
[cc.simulate]
traces = ["t", "u"]
"""


@pytest.fixture
def cfg(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text(MINIMAL)
    return schema.load(p)[0]


def test_a_checked_config_is_frozen_dataclasses(cfg):
    assert isinstance(cfg, schema.RunConfig) and dataclasses.is_dataclass(cfg)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.run.seed = 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.cc.emulate.delay_ms = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.cc = None
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.traces["t"].n = 3
    assert cfg.run.seed == 0 and cfg.cc.emulate.delay_ms is None


def test_lists_are_tuples(cfg):
    assert cfg.cc.baselines == ("bbr", "cubic") and isinstance(cfg.cc.baselines, tuple)
    assert cfg.cc.simulate.traces == ("t", "u") and cfg.cc.emulate.traces == ()
    assert cfg.cc.policies["p"].extra_args == ("--entropy-rate", "0.002")
    assert isinstance(cfg.deploy.run_args, tuple)


def test_a_keyword_key_is_reachable_with_a_trailing_underscore(cfg):
    assert field_name("from") == "from_" and field_name("delay_ms") == "delay_ms"
    assert cfg.traces["u"].from_ == "t" and cfg.traces["t"].from_ == ""
    assert thaw(cfg.traces["u"])["from"] == "t" and "from_" not in thaw(cfg.traces["u"])


def test_named_tables_are_read_only_mappings(cfg):
    for named in (cfg.traces, cfg.cc.policies):
        assert isinstance(named, Mapping)
        with pytest.raises(TypeError):
            named["x"] = named[next(iter(named))]
        with pytest.raises(TypeError):
            del named[next(iter(named))]
    assert list(cfg.traces) == ["t", "u"] and cfg.traces["t"].gen == "cc"
    assert cfg.cc.policies["p"].method == "udr" and cfg.abr is None  # an optional table left out


def test_one_class_per_table_with_the_tables_help(cfg, tmp_path):
    p = tmp_path / "d.toml"
    p.write_text(MINIMAL.replace("n = 2", "n = 3"))
    other = schema.load(p)[0]
    assert type(other.cc.emulate) is type(cfg.cc.emulate) and type(other) is schema.RunConfig
    assert config_class(schema.SCHEMA) is schema.RunConfig
    assert type(cfg).__doc__.startswith(schema.SCHEMA.help)
    doc = type(cfg.cc.emulate).__doc__
    assert doc.startswith(schema.SCHEMA.keys["cc"].keys["emulate"].help)
    assert "delay_ms (float, ms): one-way propagation delay" in doc
    assert [f.name for f in dataclasses.fields(cfg.traces["t"])][-1] == "from_"


@pytest.mark.parametrize("text, needles", [
    (MINIMAL + "[cc.emulate]\nbackend = 'ns3'\n", ["[cc.emulate] backend", "allowed: 'netns', 'mahimahi', 'mininet'"]),
    (MINIMAL + "[cc.emulate]\ndelay_ms = -1\n", ["[cc.emulate] delay_ms", ">= 0", "(ms)"]),
    (MINIMAL.replace('from = "t"', 'from = "nope"'), ["[traces.u] from", "'nope'", "sets: t, u"]),
])
def test_a_bad_value_is_still_one_config_error_line(tmp_path, text, needles):
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as info:
        schema.load(p)
    msg = str(info.value)
    assert msg.startswith(str(p)) and "\n" not in msg
    for n in needles:
        assert n in msg, (n, msg)


@pytest.mark.parametrize("name", ["quickstart", "paper", "remote"])
def test_freeze_and_thaw_round_trip_through_json(name, monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)
    cfg, _ = schema.load(REPO / "examples" / f"{name}.toml")
    data = thaw(cfg)
    assert type(data) is dict and type(data["cc"]["baselines"]) is list and type(data["traces"]) is dict
    assert freeze(schema.SCHEMA, data, "RunConfig") == cfg
    saved = tmp_path / "config.json"  # as `genet run` writes it into the run folder, and the report reads it
    saved.write_text(json.dumps({"source": "x", "config": thaw(cfg)}, indent=1))
    assert schema.load_saved(saved) == cfg
    from app.run.report import Report
    (tmp_path / "run").mkdir()
    saved.rename(tmp_path / "run" / "config.json")
    assert Report(tmp_path / "run").cfg == cfg


def test_thaw_gives_what_fill_gave():
    data = fill(schema.SCHEMA, {"traces": {"t": {"gen": "cc"}, "u": {"from": "t"}}, "cc": {}}, "c.toml")
    assert thaw(freeze(schema.SCHEMA, data, "RunConfig")) == data


def test_a_saved_config_of_another_shape_is_none(tmp_path, cfg):
    p = tmp_path / "config.json"
    assert schema.load_saved(p) is None  # missing
    for bad in ("not json", "[]", json.dumps({"config": {"run": {}}}), json.dumps({"cfg": thaw(cfg)})):
        p.write_text(bad)
        assert schema.load_saved(p) is None, bad
    data = thaw(cfg)
    data["run"]["colour"] = "red"
    with pytest.raises(ConfigError, match=r"^saved.json: \[run\]: unknown key 'colour'"):
        freeze(schema.SCHEMA, data, "RunConfig", "saved.json")
    del data["run"]["colour"], data["cc"]["emulate"]["delay_ms"]
    with pytest.raises(ConfigError, match=r"^saved.json: \[cc.emulate\]: key 'delay_ms' missing"):
        freeze(schema.SCHEMA, data, "RunConfig", "saved.json")
    from app.run.report import Report
    p.write_text(json.dumps({"config": data}))  # a key missing: an older run folder; the key takes its default
    assert schema.load_saved(p).cc.emulate.delay_ms is None
    data["run"]["colour"] = "red"
    p.write_text(json.dumps({"config": data}))  # the report of a run folder of another shape: as without a config
    report = Report(tmp_path)
    assert report.cfg is None and report.build().is_file()
    assert (tmp_path / "report" / "report.md").read_text().startswith("# genet run: genet run\n")


SMALL = Table(help="A small test table.", keys={
    "n": Key("int", 3, "a count", unit="count"),
    "link": Key("float|path", 2.0, "a rate or a file"),
    "part": Table(help="partial", partial=True, keys={"z": Key("int", 7, "z"), "w": Key("list[str]", [], "w")}),
    "opt": Table(help="optional", optional=True, keys={"y": Key("int", 0, "y")}),
    "named": Table(help="named", named=True, keys={"v": Key("list[str]", [], "v"), "import": Key("str", "", "i")}),
})


def test_the_engine_on_any_table():
    data = fill(SMALL, {"link": "trace.txt", "part": {"z": 1}, "named": {"a": {"v": ["x"], "import": "m"}}}, "f.toml")
    c = freeze(SMALL, data, "Small")
    assert type(c).__name__ == "Small" and type(c.part).__name__ == "SmallPart"
    assert c.link == "trace.txt" and c.part.z == 1 and c.part.w is None  # a partial table's key left out: None
    assert c.opt is None and c.named["a"].v == ("x",) and c.named["a"].import_ == "m"
    assert thaw(c) == {"n": 3, "link": "trace.txt", "part": {"z": 1, "w": None}, "opt": None,
                       "named": {"a": {"v": ["x"], "import": "m"}}}
    assert "n (int, count): a count" in type(c).__doc__ and type(c).__doc__.startswith("A small test table.")


def test_the_plan_hashes_plain_data(cfg, tmp_path):
    """The items keep typed config sections as inputs; their input hashes see the same JSON as before."""
    items = plan.build(cfg, tmp_path / "o")
    sim = items["simulate"][0]
    (u,) = [i for i in items["traces"] if i.name == "u"]
    assert u.inputs["config"] is cfg.traces["u"]
    assert engine._jsonable(u.inputs, tmp_path / "o")["config"] == thaw(cfg.traces["u"])
    assert sim.inputs["config"] == {"delay_ms": None, "queue_packets": None}
    for stage in items.values():
        for item in stage:
            json.dumps(engine._jsonable(item.inputs, tmp_path / "o"))  # no default=str needed: plain data only


def test_a_run_folder_saved_before_a_key_existed_still_loads(tmp_path):
    """A run's config.json written by a version without a key (here `[traces.*] pick`) loads with the key's
    default, so reports of older run folders keep their headline; an unknown key still fails (returns None)."""
    import json

    from app.run.schema import load, load_saved
    from foundation.config import thaw
    (tmp_path / "src").mkdir()
    (tmp_path / "x.toml").write_text('[run]\nname = "old"\n[traces.src]\npath = "src"\n[traces.few]\nfrom = "src"\n'
                                     'n = 2\n[cc]\n[cc.simulate]\ntraces = ["few"]\n')
    cfg, text = load(tmp_path / "x.toml")
    saved = thaw(cfg)
    for t in saved["traces"].values():
        del t["pick"]
    (tmp_path / "config.json").write_text(json.dumps({"source": text, "config": saved}))
    old = load_saved(tmp_path / "config.json")
    assert old is not None and old.run.name == "old" and old.traces["few"].pick == "spread"
    saved["traces"]["few"]["no_such_key"] = 1
    (tmp_path / "config.json").write_text(json.dumps({"source": text, "config": saved}))
    assert load_saved(tmp_path / "config.json") is None
