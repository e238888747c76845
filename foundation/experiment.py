"""The one experiment runner: a matrix of (policy, environment, repetition) cells, run on a tier, through
one journal.

Every place that measures rows uses it — ``genet eval abr`` and ``genet eval cc`` (the simulator),
``genet emulate cc`` and ``genet emulate abr`` (an emulated link: netns, Mahimahi, Mininet), ``genet deploy
run`` (SSH hosts) — and through them the stages of ``genet run`` and the study. What they share lives here:

* the matrix (:func:`matrix`: every policy on every environment, ``repetitions`` times, in a stated order);
* the journal (:class:`foundation.journal.Journal`: whole lines, fsynced, torn tail cut away, under the run
  folder's lock held by the caller): a row is appended the moment its cell finishes, so a crash loses nothing
  and a rerun with the same settings reuses every finished cell (:meth:`Tier.reuse`) and runs only the rest;
* the order of the rows (the matrix's, whatever order the cells finished in), and the account of what was
  reused, run and skipped (:class:`Outcome`).

What differs between tiers is a :class:`Tier`: how a cell runs (``run_one``, or ``run`` for a tier that runs
cells in parallel or in batches, yielding each as it finishes, or a batch finished together as a list), what identifies a cell's row in the journal
(``key`` / ``record_key``), when a journaled row can stand for a cell (``reuse``) and when a cell is not to be
tried again (``skip``: a deploy run past its retry limit). Rows carry the use case's result columns
(:attr:`foundation.usecase.UseCase.columns`), and emulated and remote rows the simulator's figures beside them
(``sim_*``).

::

    class Simulated(Tier):
        name = "simulator"
        def run_one(self, cell):
            return {"policy": cell.policy, "trace": cell.environment, **simulate(cell.policy, cell.data)}

    with run_folder_lock(out, "genet eval cc"):
        outcome = Experiment(Simulated(), Journal(out / "results.jsonl")).run(
            matrix(["bbr", "cubic"], traces, repetitions=1, data=trace_objects))
    outcome.rows       # one row per cell, in the matrix's order

Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Hashable, Iterable, Iterator, Sequence

from foundation.journal import Journal

if TYPE_CHECKING:
    from foundation.executor import Executor


@dataclass(frozen=True)
class Cell:
    """One (policy, environment, repetition) of a matrix. ``data``: what the tier needs to run it (a trace
    object, link settings, a planned run); not part of the cell's identity."""

    policy: str
    environment: str
    repetition: int = 0
    data: Any = field(default=None, compare=False, hash=False, repr=False)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.policy, self.environment, self.repetition)


def matrix(policies: Sequence[str], environments: Sequence[str], repetitions: int = 1, *,
           order: str = "policy", data: Callable[[str, int, int], Any] | None = None, seed: int = 0) -> list[Cell]:
    """Every policy on every environment, ``repetitions`` times.

    order: ``"policy"`` (each policy's environments and repetitions together: policy, environment,
    repetition), ``"repetition"`` (a whole round of policies x environments per repetition: repetition,
    policy, environment), or ``"shuffled"`` (round by round, each round's (policy, environment) pairs in an
    order drawn afresh from ``random.Random(f"{seed}/{repetition}")``: policies interleaved in time, as Puffer
    and ``genet deploy run`` do, so a slow drift of the machine or the path does not favour one policy; the
    same seed plans the same order). data: ``data(policy, environment_index, repetition)`` -> the cell's data.
    """
    if repetitions < 1:
        raise ValueError(f"repetitions must be >= 1, got {repetitions}")
    if order not in ("policy", "repetition", "shuffled"):
        raise ValueError(f"order must be 'policy', 'repetition' or 'shuffled', got {order!r}")
    if order == "policy":
        triples = [(p, i, r) for p in policies for i in range(len(environments)) for r in range(repetitions)]
    elif order == "repetition":
        triples = [(p, i, r) for r in range(repetitions) for p in policies for i in range(len(environments))]
    else:
        import random
        triples = []
        for r in range(repetitions):
            pairs = [(p, i, r) for p in policies for i in range(len(environments))]
            random.Random(f"{seed}/{r}").shuffle(pairs)
            triples += pairs
    return [Cell(p, environments[i], r, data(p, i, r) if data is not None else None) for p, i, r in triples]


class Tier:
    """Where a cell's row is measured (the simulator, an emulated link, an SSH host). Override ``run_one``
    (one cell at a time) or ``run`` (several at once, yielding each cell with its row as it finishes)."""

    #: what the tier is, for messages ("simulator", "emulated link", "ssh host")
    name = "tier"
    #: the row fields that hold a cell's environment and repetition (the policy is in "policy")
    environment_field = "trace"
    repetition_field = "repeat"

    #: the journal's records of this experiment, grouped by key (oldest first); set by :meth:`begin`
    journaled: dict = {}

    def begin(self, journaled: dict) -> None:
        """Called once before the cells are planned, with the journal's records of this experiment grouped by
        key (for a tier whose reuse looks beyond one cell). Default: keeps them as :attr:`journaled`."""
        self.journaled = journaled

    def key(self, cell: Cell) -> Hashable:
        """What identifies the cell's row in the journal."""
        return cell.key

    def record_key(self, record: dict) -> Hashable | None:
        """The key of a journaled record (as :meth:`key` gives for its cell); None: the record is not a row of
        this experiment (other settings, another layout), and is ignored."""
        try:
            return (record["policy"], record[self.environment_field], record.get(self.repetition_field, 0))
        except (KeyError, TypeError):
            return None

    def reuse(self, cell: Cell, records: list[dict]) -> dict | None:
        """The row that stands for ``cell`` from its journaled records (oldest first), or None to run it.
        Default: the newest."""
        return records[-1] if records else None

    def skip(self, cell: Cell, records: list[dict]) -> str | None:
        """Why a cell not reused is not to be run now (None: run it)."""
        return None

    def record(self, cell: Cell, row: dict) -> dict | None:
        """What the journal keeps of a finished cell (None: nothing). Default: the row."""
        return row

    def run(self, cells: list[Cell]) -> Iterator[tuple[Cell, Any] | list[tuple[Cell, Any]]]:
        """Run ``cells``, yielding each (cell, row) as it finishes, or a list of them for cells that finished
        together (journaled in one write)."""
        for cell in cells:
            yield cell, self.run_one(cell)

    def run_one(self, cell: Cell) -> dict:
        raise NotImplementedError(f"{type(self).__name__} runs no cell: define run_one or run")


@dataclass
class Outcome:
    """What an :meth:`Experiment.run` did: ``rows`` in the matrix's order (one per cell that has one),
    how many cells were reused from the journal and run now, and the skipped ones with the reason."""

    rows: list[dict]
    reused: int = 0
    ran: int = 0
    skipped: dict = field(default_factory=dict)

    @property
    def planned(self) -> int:
        return self.reused + self.ran + len(self.skipped)


class Experiment:
    """Run a matrix of cells on ``tier``, journaling each finished cell in ``journal`` (None: keep nothing,
    reuse nothing). ``on_row(cell, row, reused)`` is called for every cell's row as it is settled (reused ones
    first, in order; then as they finish), for progress bars and lines."""

    def __init__(self, tier: Tier, journal: Journal | None = None, *,
                 on_row: Callable[[Cell, dict, bool], None] | None = None) -> None:
        self.tier, self.journal, self.on_row = tier, journal, on_row

    def journaled(self) -> dict[Hashable, list[dict]]:
        """The journal's records grouped by key (oldest first), records of other experiments left out."""
        grouped: dict[Hashable, list[dict]] = {}
        if self.journal is None:
            return grouped
        for rec in self.journal:
            k = self.tier.record_key(rec)
            if k is not None:
                grouped.setdefault(k, []).append(rec)
        return grouped

    def plan(self, cells: Sequence[Cell]) -> tuple[dict[Hashable, dict], list[Cell], dict[Hashable, str]]:
        """(reused rows by key, cells to run, skipped keys with the reason)."""
        journaled = self.journaled()
        self.tier.begin(journaled)
        reused: dict[Hashable, dict] = {}
        todo: list[Cell] = []
        skipped: dict[Hashable, str] = {}
        seen: set = set()
        for cell in cells:
            k = self.tier.key(cell)
            if k in seen:
                raise ValueError(f"{self.tier.name}: two cells of the matrix have the same key {k!r}")
            seen.add(k)
            records = journaled.get(k, [])
            row = self.tier.reuse(cell, records)
            if row is not None:
                reused[k] = row
                continue
            reason = self.tier.skip(cell, records)
            if reason is not None:
                skipped[k] = reason
            else:
                todo.append(cell)
        return reused, todo, skipped

    def run(self, cells: Sequence[Cell]) -> Outcome:
        cells = list(cells)
        reused, todo, skipped = self.plan(cells)
        if self.on_row is not None:
            for cell in cells:
                k = self.tier.key(cell)
                if k in reused:
                    self.on_row(cell, reused[k], True)
        fresh: dict[Hashable, dict] = {}
        for item in self.tier.run(todo):
            batch = item if isinstance(item, list) else [item]  # cells that finished together: one write
            for cell, row in self.settle(batch):
                fresh[self.tier.key(cell)] = row
        rows = []
        for cell in cells:
            k = self.tier.key(cell)
            row = fresh.get(k, reused.get(k))
            if row is not None:
                rows.append(row)
        return Outcome(rows, reused=len(reused), ran=len(fresh), skipped=skipped)


    def settle(self, batch: list[tuple[Cell, Any]]) -> list[tuple[Cell, Any]]:
        """Journal cells that finished together (one write) and report each to ``on_row``; returns the batch.
        :meth:`run` does this for every cell its tier yields; a tier's owner calls it for cells that finish
        after an interruption ended :meth:`run` (a deploy run whose end was already under way)."""
        records = [rec for cell, row in batch if (rec := self.tier.record(cell, row)) is not None]
        if records and self.journal is not None:
            self.journal.extend(records)
        if self.on_row is not None:
            for cell, row in batch:
                self.on_row(cell, row, False)
        return batch


def in_parallel(cells: Iterable[Cell], run_one: Callable[[Cell], Any], jobs: int = 1,
                executor: "Executor | None" = None) -> Iterator[tuple[Cell, Any]]:
    """Run ``run_one`` on every cell, yielding (cell, row) as each finishes: on ``executor``
    (:mod:`foundation.executor`), else ``jobs`` at a time in threads (in order when ``jobs`` is 1), for a
    :meth:`Tier.run` whose cells wait on processes or links. An error in one cell is raised here once the
    cells already running have ended; cells not started are cancelled."""
    from foundation.executor import make_executor
    owned = executor is None
    executor = executor or make_executor(jobs, kind="thread")
    try:
        yield from executor.map_unordered(run_one, list(cells))
    finally:
        if owned:
            executor.close()


__all__ = ["Cell", "Tier", "Experiment", "Outcome", "matrix", "in_parallel"]
