"""Shared by the fuzz tests (`from fuzzing import Fuzz, ...`): damaged copies of a file, and a
recorder that runs a reader on each and keeps every outcome that is neither a clean read nor the
project's own one-line error naming the input.

Damage is deterministic (fixed seeds), so a failure names a case that can be re-run.
"""

from __future__ import annotations

import random
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from edges2shoes_utils.util.errors import Edges2ShoesError

RANDOM_SIZES = (1, 2, 7, 8, 64, 511, 4096, 65536)


def random_blobs(prefixes: dict[str, bytes], seeds: Iterable[int] = (0, 1)) -> dict[str, bytes]:
    """Random bytes of several sizes, bare and behind each magic prefix (so that a reader gets past
    its first check and into the parser), keyed by a readable case name."""
    blobs = {}
    for seed in seeds:
        rng = random.Random(seed)
        for size in RANDOM_SIZES:
            body = rng.randbytes(size)
            blobs[f"random{size}-seed{seed}"] = body
            for name, prefix in prefixes.items():
                blobs[f"{name}+random{size}-seed{seed}"] = prefix + body
    return blobs


def truncation_offsets(data: bytes, boundaries: Iterable[int], count: int = 40) -> list[int]:
    """About `count` offsets to cut `data` at: 0, 1 and len-1; half the rest at structural boundaries
    (and one byte either side), sampled evenly from first to last; the other half spread evenly over
    the file."""
    size = len(data)
    near = sorted({b + d for b in boundaries for d in (-1, 0, 1) if 1 < b + d < size - 1})
    room = count // 2 - 3
    step = max(1, -(-len(near) // room))
    chosen = {0, 1, size - 1, *near[::step], *near[-1:]}
    spread = count - len(chosen)
    chosen |= {round(i * (size - 1) / (spread + 1)) for i in range(1, spread + 1)}
    return sorted(chosen)


def flipped(data: bytes, positions: Iterable[int], seed: int) -> dict[str, bytes]:
    """One copy of `data` per position, with one random bit set to its opposite there."""
    rng = random.Random(seed)
    copies = {}
    for position in positions:
        bit = rng.randrange(8)
        damaged = bytearray(data)
        damaged[position] ^= 1 << bit
        copies[f"flip@{position}:bit{bit}"] = bytes(damaged)
    return copies


def spread_positions(start: int, stop: int, count: int, seed: int) -> list[int]:
    """`count` distinct random positions in [start, stop)."""
    return sorted(random.Random(seed).sample(range(start, stop), min(count, stop - start)))


@dataclass
class Fuzz:
    """Runs readers on damaged inputs, counting cases per reader and recording problems: any
    exception that is not `expected` (an Edges2ShoesError subclass), an error message that does not
    name the input or spans several lines, a read that returned something broken (`check` raised),
    or an outcome other than `must` when the case demands one."""

    expected: tuple[type[Edges2ShoesError], ...]
    cases: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def run(self, reader: str, case: str, call: Callable[[], Any], names: str,
            check: Callable[[Any], None] = lambda _: None, must: str | None = None) -> str:
        """'read' or 'refused' (or 'bug'); `names` is what an error message must mention."""
        self.cases[reader] += 1
        where = f"{reader} on {case}"
        try:
            result = call()
        except self.expected as error:
            outcome = "refused"
            message = str(error)
            if names not in message:
                self.problems.append(f"{where}: the message does not name {names}: {message[:300]!r}")
            if "\n" in message.strip():
                self.problems.append(f"{where}: a message of several lines: {message[:300]!r}")
        except Exception as error:  # noqa: BLE001 - anything else is the bug this test looks for
            last = traceback.extract_tb(error.__traceback__)[-1]
            self.problems.append(f"{where}: {type(error).__name__} at {last.filename}:{last.lineno}: {str(error)[:200]}")
            outcome = "bug"
        else:
            outcome = "read"
            try:
                check(result)
            except Exception as error:  # noqa: BLE001
                self.problems.append(f"{where}: read, but the result is broken: {type(error).__name__}: {str(error)[:200]}")
                outcome = "bug"
        if must and outcome not in (must, "bug"):
            self.problems.append(f"{where}: {outcome}, but must be {must}")
        self.outcomes[outcome] += 1
        return outcome

    def report(self) -> str:
        """Cases per reader and outcomes, for the log (`pytest -s`), then the problems."""
        lines = [f"{reader}: {n} cases" for reader, n in sorted(self.cases.items())]
        lines.append("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())))
        return "\n".join(lines + self.problems)

    def assert_clean(self) -> None:
        print("\n" + self.report())
        assert not self.problems, f"{len(self.problems)} problem(s):\n" + "\n".join(self.problems[:60])
