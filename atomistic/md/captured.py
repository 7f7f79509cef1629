"""Blocks of MD steps captured once as a CUDA graph and replayed as one launch.

A block of ``check_every`` steps (integrator, thermostat noise, list compaction, model, blow-up
flags) issues a few hundred kernels per step. On a GPU with up to ~10^4 atoms those launches,
not the arithmetic, set the pace (docs/benchmarks.md). :class:`GraphBlocks` records a block once
and replays it:

- a block's :class:`Plan` (its length, the steps that log and those that keep a frame, which
  follow from the start step) names its graph; a run has a few plans, each gets one graph, and
  all of them share one memory pool; each is captured on its own stream (dropping a graph
  clears the cuBLAS workspace of its stream, which must not be another graph's). A run whose
  blocks keep changing plan (log or trajectory intervals that are not multiples or divisors of
  ``check_every``) keeps capturing again the graphs it had to drop: once those recaptures
  outnumber a quarter of its replays, it goes on eagerly, with a message saying so;
- before a replay the state (positions, momenta, cell, forces, energy; the stress under a
  barostat) is copied into fixed input tensors; right after it the outputs are cloned out of
  the graph's memory, so nothing the driver keeps is overwritten by the next replay;
- the neighbour tables are the force field's fixed tensors (its ``static`` mode): a rebuild
  between blocks writes into them. A graph is replayed only with the table layout it was
  captured with (widths and addresses, ``VerletForceField.layout``); when the tables had to
  grow, every graph is dropped and captured again;
- thermostat and barostat noise come from the run's generator, registered with every graph:
  each replay draws new numbers from the generator's device-side state, the numbers an eager
  block would draw, and setting that state (to redo a block) works as it does without graphs;
- a plan runs eagerly the first time it is seen with a layout (lazy initialisations stay
  outside any capture), under CUDA's sync-debug mode, so that a step that synchronises with the
  host in the ways it reports (a copy to the host, ``nonzero``, a host check of values) is
  caught before a capture is tried; it is captured the second time. Blocks and their warm-ups
  run inside :func:`~atomistic.potential.models.without_host_sync`. A capture that fails anyway
  (a synchronisation the mode does not report) leaves the caller's stream current and the run
  goes on eagerly; either way the reason is logged.

Up to :data:`MAX_ATOMS` atoms; larger runs are not launch-bound and stay eager.

A CPU has no graphs. ``emulate=True`` runs the same bookkeeping (plans, fixed inputs, layouts,
cloned outputs, eviction, the switch to eager) eagerly; the test suite checks the graph path
that way, and the CUDA tests check it on a GPU.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from atomistic.md.state import MDState
from atomistic.potential.models import without_host_sync

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """What a block does, by step offset 1..n within it: ``logged`` steps record a thermo row
    (with the pressure when ``stress``), ``framed`` steps keep the state for the trajectory."""

    n: int
    logged: tuple[int, ...]
    framed: tuple[int, ...]
    stress: bool

    @classmethod
    def of(cls, start_step: int, n: int, log_every: int, trajectory_every: int, stress: bool) -> Plan:
        steps = range(start_step + 1, start_step + n + 1)
        return cls(n, tuple(k - start_step for k in steps if log_every and k % log_every == 0),
                   tuple(k - start_step for k in steps if trajectory_every and k % trajectory_every == 0), stress)


#: above this many atoms blocks run eagerly: the kernels then outlast their launches (at 10^4
#: atoms an H200 was busy 2 of 16 ms per step, and its busy time grows with the atoms while the
#: launch time does not), and a graph's private memory pool would add to the peak of a large run
MAX_ATOMS = 2**18

#: what a block returns: the end state, the thermo rows (k, B, 6) or None, the kept frames, and
#: the flags (3,) float64: the smallest list margin (Å), "bad" and "table overflow" (0/1)
BlockResult = tuple[MDState, torch.Tensor | None, list[MDState], torch.Tensor]


class GraphBlocks:
    """Runs blocks through captured CUDA graphs (see the module docstring).

    ``advance(state, plan) -> BlockResult`` is the eager block; ``generator`` the run's random
    generator (its device is the graphs' device); ``input_stress``: the step reads the input
    state's stress (a barostat), else it is not an input; ``max_graphs`` bounds the graphs kept
    (least recently used dropped first).
    """

    def __init__(self, advance: Callable[[MDState, Plan], BlockResult], generator: torch.Generator, *,
                 input_stress: bool = False, emulate: bool = False, max_graphs: int = 8):
        self.advance = advance
        self.generator = generator
        self.device = generator.device
        self.input_stress = input_stress
        self.emulate = emulate
        self.max_graphs = max_graphs
        self.failed: str | None = None  #: why the run went on without graphs (None: it did not)
        self.captures = 0  #: graphs captured
        self.replays = 0  #: blocks replayed from a graph
        self._graphs: OrderedDict = OrderedDict()  # (plan, stress in) -> [graph, outputs, stream]
        self._seen: set = set()  # plans run once with this layout (warmed up)
        self._evicted: set = set()  # plans captured and dropped again with this layout
        self._recaptures = self._layout_replays = 0  # of those, and replays, with this layout
        self._layout = None
        self._inputs: dict[str, torch.Tensor] = {}
        self._pool = None

    def stats(self) -> dict:
        return {"captures": self.captures, "replays": self.replays, "failed": self.failed}

    def run(self, state: MDState, plan: Plan, layout: tuple) -> BlockResult:
        """One block from ``state``; ``layout``: the neighbour tables' (a new one drops every graph)."""
        if self.failed is not None:
            return self.advance(state, plan)
        if layout != self._layout:
            self._drop()
            self._layout = layout
        if not self.input_stress:
            state = replace(state, stress=None)
        key = (plan, state.stress is not None)
        if key not in self._graphs and key not in self._seen:  # first sight: eager, as a warm-up
            self._seen.add(key)
            return self._warm_up(state, plan)
        inputs = self._load(state)
        entry = self._graphs.get(key)
        if entry is None:
            if key in self._evicted:
                self._recaptures += 1
                if self._recaptures > self.max_graphs and 4 * self._recaptures > self._layout_replays:
                    self._give_up(f"its blocks keep changing ({self._recaptures} graphs captured again after "
                                  f"they were dropped, for {self._layout_replays} replays); make md.log_every and "
                                  "md.trajectory_every multiples or divisors of md.check_every")
                    return self.advance(state, plan)
            entry = self._capture(key, inputs, plan)
            if entry is None:
                return self.advance(state, plan)
        else:
            self._graphs.move_to_end(key)
        if self.emulate:
            with without_host_sync():
                entry[1] = self.advance(inputs, plan)
        else:
            entry[0].replay()
        self.replays += 1
        self._layout_replays += 1
        return _copied(entry[1], state.step, plan)

    def _warm_up(self, state: MDState, plan: Plan) -> BlockResult:
        """The eager block; on CUDA under sync-debug mode: a host synchronisation in the step
        (which no capture survives) switches graphs off before any capture is tried."""
        if self.emulate:
            with without_host_sync():
                return self.advance(state, plan)
        rng, mode = self.generator.get_state(), torch.cuda.get_sync_debug_mode()
        torch.cuda.set_sync_debug_mode("error")
        try:
            with without_host_sync():
                return self.advance(state, plan)
        except RuntimeError as exc:
            if "synchronizing CUDA operation" not in str(exc):
                raise
            reason = str(exc).splitlines()[0][:200]
        finally:
            torch.cuda.set_sync_debug_mode(mode)
        self._give_up(f"its step synchronises with the host ({reason})")
        self.generator.set_state(rng)
        return self.advance(state, plan)

    def _give_up(self, reason: str) -> None:
        self.failed = reason
        log.warning("MD blocks run without CUDA graphs from here: %s", reason)
        self._drop()

    def _load(self, state: MDState) -> MDState:
        """``state`` copied into the fixed input tensors (made at the first call)."""
        fields = {"positions": state.positions, "momenta": state.momenta, "cell": state.cell,
                  "forces": state.forces, "energy": state.energy}
        if state.stress is not None:
            fields["stress"] = state.stress
        for name, value in fields.items():
            fixed = self._inputs.get(name)
            if fixed is None or fixed.shape != value.shape or fixed.dtype != value.dtype:
                if fixed is not None:  # graphs read the old tensors: they cannot be replayed
                    self._drop()
                fixed = self._inputs[name] = torch.empty_like(value)
            fixed.copy_(value)
        return MDState(positions=self._inputs["positions"], momenta=self._inputs["momenta"],
                       cell=self._inputs["cell"], forces=self._inputs["forces"], energy=self._inputs["energy"],
                       stress=self._inputs["stress"] if state.stress is not None else None, step=state.step)

    def _capture(self, key, inputs: MDState, plan: Plan):
        if self.emulate:
            entry = [None, None, None]
        else:
            entry = self._record(inputs, plan)
            if entry is None:
                return None
        self.captures += 1
        self._graphs[key] = entry
        while len(self._graphs) > self.max_graphs:
            self._evicted.add(self._graphs.popitem(last=False)[0])
        log.debug("captured an MD block: %s", key[0])
        return entry

    def _record(self, inputs: MDState, plan: Plan):
        """Capture one block: [graph, outputs, stream], or None (graphs then off, reason logged)."""
        rng = self.generator.get_state()
        failure = body_error = None
        # the outer stream context restores the caller's stream even when a capture fails
        # inside torch.cuda.graph (whose own exit then skips that)
        with torch.cuda.device(self.device), torch.cuda.stream(torch.cuda.current_stream(self.device)):
            try:
                if self._pool is None:
                    self._pool = torch.cuda.graph_pool_handle()
                stream, graph = torch.cuda.Stream(self.device), torch.cuda.CUDAGraph()
                graph.register_generator_state(self.generator)
                with torch.cuda.graph(graph, pool=self._pool, stream=stream):
                    try:
                        with without_host_sync():
                            outputs = self.advance(inputs, plan)
                    except Exception as exc:
                        body_error = exc
                        raise
            except Exception as exc:  # noqa: BLE001 - any failure: the run goes on without graphs
                failure = body_error or exc  # the body's error, not capture_end's that follows it
        self.generator.set_state(rng)  # the capture drew nothing; the replay draws
        if failure is not None:
            text = str(failure).splitlines()[0][:200] if str(failure) else ""
            self._give_up(f"a capture failed ({type(failure).__name__}: {text})")
            return None
        return [graph, outputs, stream]

    def _drop(self) -> None:
        """Forget every graph (and the pool: torch cannot reuse a pool whose graphs are all gone)
        and what was warmed up or evicted with the layout."""
        self._graphs.clear()
        self._pool = None
        self._seen.clear()
        self._evicted.clear()
        self._recaptures = self._layout_replays = 0


def _copied(result: BlockResult, start_step: int, plan: Plan) -> BlockResult:
    """The block's outputs cloned out of the graph's memory, with their step counts."""
    end, rows, frames, flags = result
    return (_clone(end, start_step + plan.n), None if rows is None else rows.clone(),
            [_clone(f, start_step + k) for f, k in zip(frames, plan.framed)], flags.clone())


def _clone(state: MDState, step: int) -> MDState:
    return MDState(positions=state.positions.clone(), momenta=state.momenta.clone(), cell=state.cell.clone(),
                   forces=state.forces.clone(), energy=state.energy.clone(),
                   stress=None if state.stress is None else state.stress.clone(), step=step)
