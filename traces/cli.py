"""``genet traces ...``: convert, generate, summarise, plot and fetch traces."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from foundation.commands import Command, Group

FORMAT_HELP = ("pensieve: two columns 'time_s bandwidth_mbps'; mahimahi: one ms timestamp per 1500-byte "
               "delivery opportunity (loops); json: Genet Trace JSON (Pantheon CC traces); "
               "csv: header with timestamp_s,bandwidth_mbps[,delay_ms,loss_rate,queue_packets]")


def _progress(desc: str):
    def wrap(items):
        from tqdm import tqdm
        return tqdm(items, desc=desc, unit="trace", disable=not sys.stderr.isatty(), leave=False)
    return wrap


def cmd_convert(args: argparse.Namespace) -> int:
    from traces.io import convert
    written = convert(args.input, args.output, args.to, args.from_format, progress=_progress("convert"))
    print(f"wrote {len(written)} {args.to} trace(s) to {args.output}")
    return 0


def cmd_gen(args: argparse.Namespace) -> int:
    from traces.generators import generate_set
    from traces.io import SUFFIXES, write_trace
    out = Path(args.output)
    traces = generate_set(args.use_case, args.range, args.n, args.seed)
    for t in _progress("generate")(traces):
        write_trace(t, out / f"{t.name}{SUFFIXES[args.format]}", args.format)
    print(f"wrote {len(traces)} {args.use_case} traces (range {args.range}, seed {args.seed}) to {out} "
          f"as {args.format}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from traces.io import load_traces
    from traces.stats import dataset_stats
    path = Path(args.path)
    stats = dataset_stats(load_traces(path, args.from_format), name=path.name)
    print(json.dumps(stats.as_dict(), indent=1) if args.json else stats.format())
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from foundation.extras import require
    require("plots", "genet traces plot")
    from traces.io import load_traces
    from traces.plot import plot_dataset_cdf, plot_trace
    path = Path(args.path)
    traces = load_traces(path, args.from_format)
    if path.is_dir():
        out = plot_dataset_cdf(traces, args.output, name=path.name)
    else:
        out = plot_trace(traces[0], args.output)
    print(f"wrote {out}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from traces.datasets import fetch_archive, fetch_dataset, load_manifest
    if args.list or not args.name:
        for name, ds in sorted(load_manifest().items()):
            print(f"{name:18s} {len(ds.files):4d} files  {ds.description}")
        return 0 if args.list else 2
    if args.name.startswith(("http://", "https://", "file://")):
        out = fetch_archive(args.name, args.dest, sha256=args.sha256, timeout_s=args.timeout_s)
    else:
        out = fetch_dataset(args.name, args.dest, base_url=args.base_url, timeout_s=args.timeout_s,
                            progress=_progress(f"fetch {args.name}"))
    print(f"{args.name}: verified and stored in {out}")
    return 0


def cmd_space(args: argparse.Namespace) -> int:
    from traces.config_space import load_space
    space = load_space(args.use_case)
    if args.json:
        print(Path(space.path).read_text())
        return 0
    print(f"{space.use_case} config space ({space.path})\n{space.description}\n")
    print(f"{'dimension':30s} {'default':>9s} {'scale':>13s}   rl1 / rl2 / rl3")
    for d in space.dimensions:
        rng = " / ".join(f"[{lo:g}, {hi:g}]" for lo, hi in d.ranges.values())
        print(f"{d.name:30s} {d.default:>9g} {d.scale:>13s}   {rng}")
    print("fixed: " + ", ".join(f"{k}={v}" for k, v in space.fixed.items()))
    return 0


def _convert_arguments(c: argparse.ArgumentParser) -> None:
    from traces.io import FORMATS  # (numpy) when this command's parser is built; declaring imports nothing
    c.add_argument("input", help="trace file or directory")
    c.add_argument("output", help="output file (for a file) or directory (for a directory)")
    c.add_argument("--to", required=True, choices=FORMATS, help="output format")
    c.add_argument("--from", dest="from_format", choices=FORMATS, default=None,
                   help="input format (default: detected from suffix and content)")


def _gen_arguments(g: argparse.ArgumentParser) -> None:
    from traces.io import FORMATS
    g.add_argument("use_case", choices=["abr", "cc"], help="which config space")
    g.add_argument("--range", default="rl3", choices=["rl1", "rl2", "rl3"], help="UDR range to sample from")
    g.add_argument("-n", type=int, default=100, help="number of traces")
    g.add_argument("--seed", type=int, default=0, help="random seed")
    g.add_argument("-o", "--output", required=True, help="output directory")
    g.add_argument("--format", default="json", choices=FORMATS,
                   help="file format (json keeps the config and link properties)")


def _stats_arguments(s: argparse.ArgumentParser) -> None:
    from traces.io import FORMATS
    s.add_argument("path", help="trace file or directory")
    s.add_argument("--from", dest="from_format", choices=FORMATS, default=None, help="input format (default: detect)")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _plot_arguments(pl: argparse.ArgumentParser) -> None:
    from traces.io import FORMATS
    pl.add_argument("path", help="trace file (time series) or directory (CDF)")
    pl.add_argument("-o", "--output", required=True, help="PNG file to write")
    pl.add_argument("--from", dest="from_format", choices=FORMATS, default=None, help="input format (default: detect)")


def _fetch_arguments(f: argparse.ArgumentParser) -> None:
    f.add_argument("name", nargs="?", help="dataset name (see --list) or archive URL")
    f.add_argument("--dest", default="traces-data", help="directory to store datasets in")
    f.add_argument("--base-url", default=None, help="mirror URL replacing the published location")
    f.add_argument("--sha256", default=None, help="expected SHA-256 of an archive URL")
    f.add_argument("--timeout-s", type=float, default=30.0, help="per-download timeout in seconds")
    f.add_argument("--list", action="store_true", help="list the known datasets")


def _space_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("use_case", help="abr, cc, or a path to a config-space JSON file")
    sp.add_argument("--json", action="store_true", help="print the raw JSON file")


COMMANDS = (
    Group(("traces",), help="read, convert, generate, summarise, plot and fetch network traces",
          description="Network traces: bandwidth over time (s, Mbps) plus optional link "
                      "properties (one-way delay ms, loss rate, queue packets).\n" + FORMAT_HELP,
          metavar="ACTION"),
    Command(("traces", "convert"), help="convert a trace file or a directory of traces to another format",
            description="Convert IN (file or directory) to OUT in --to format. Directories are "
                        "converted file by file, keeping sub-directories.\n" + FORMAT_HELP,
            arguments=_convert_arguments, run=cmd_convert),
    Command(("traces", "gen"), help="generate a seeded synthetic trace set from a Genet config space",
            description="Draw N configs uniformly from a range (rl1, rl2, rl3) of the use case's config "
                        "space (see `genet traces space abr|cc`) and generate one trace per config. "
                        "Each bandwidth value holds for the configured change interval. Trace i depends "
                        "only on (seed, i).",
            arguments=_gen_arguments, run=cmd_gen),
    Command(("traces", "stats"), help="print count, duration and bandwidth percentiles of a trace set",
            description="Count, total duration (s), time-weighted mean/median/p10/p90 bandwidth (Mbps) "
                        "of a trace file or directory.",
            arguments=_stats_arguments, run=cmd_stats),
    Command(("traces", "plot"), help="draw one trace's bandwidth over time, or a set's bandwidth CDF, as PNG",
            arguments=_plot_arguments, run=cmd_plot),
    Command(("traces", "fetch"), help="download a public trace set (FCC, Norway, Pantheon) and verify checksums",
            description="Download NAME from its published location (the Genet repository, pinned "
                        "commit), verify every file's SHA-256 and store it in DEST/NAME. Files already "
                        "present and correct are skipped, so an interrupted fetch resumes. NAME may also "
                        "be an archive URL (.tar.gz/.zip), unpacked into DEST after the --sha256 check. "
                        "Needs internet, or --base-url pointing at a mirror laid out as "
                        "BASE/abr/fcc-val/..., BASE/cc/pantheon-cellular/...",
            arguments=_fetch_arguments, run=cmd_fetch),
    Command(("traces", "space"), help="show a use case's environment config space (dimensions, units, ranges)",
            arguments=_space_arguments, run=cmd_space),
)
