"""Which package modules a TrainConfig passes through between `train(config)` and the first
`train_step`: a tiny CPU run (64x64, ngf 8, one step; with --resume, the second step of a run
resumed from its last.pt) under sys.setprofile.

    PYTHONPATH=. python tools/trace_config.py [--resume]

From the moment `training/loop.py`'s `train` is entered until `training/step.py`'s `train_step` is
first called, every Python function call into a file of edges2shoes_utils (main thread; the run
loads its data in-process) is recorded:
  - receive: the modules of the functions one of whose arguments (`self` included) is a TrainConfig;
  - run: the modules of all the functions that ran.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

import edges2shoes_utils
from edges2shoes_utils.data.synthetic import make_synthetic
from edges2shoes_utils.training import TrainConfig, train

ROOT = Path(edges2shoes_utils.__file__).resolve().parent


class Tracer:
    """A sys.setprofile callback recording module files between `train` and the first `train_step`."""

    def __init__(self) -> None:
        self.receive: dict[str, set[str]] = {}
        self.run: set[str] = set()
        self.started = self.finished = False

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "call" or self.finished:
            return
        code = frame.f_code
        path = Path(code.co_filename).resolve()
        if ROOT not in path.parents:
            return
        module = path.relative_to(ROOT).as_posix()
        if not self.started:
            self.started = code.co_name == "train" and module == "training/loop.py"
            if not self.started:
                return
        if code.co_name == "train_step" and module == "training/step.py":
            self.finished = True
            return
        self.run.add(module)
        arguments = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        if any(isinstance(frame.f_locals.get(name), TrainConfig) for name in arguments):
            self.receive.setdefault(module, set()).add(code.co_name)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = make_synthetic(Path(tmp) / "data", n=8, size=64, seed=0, n_val=2)
        config = TrainConfig(data=str(data), out=str(Path(tmp) / "run"), image_size=64, ngf=8, ndf=8, batch_size=2,
                             epochs=1, max_steps=1, device="cpu", num_workers=0, progress=False, sample_count=0)
        if "--resume" in sys.argv:
            train(config)
            config = TrainConfig.from_run(config.out, max_steps=2)
        tracer = Tracer()
        sys.setprofile(tracer)
        try:
            train(config)
        finally:
            sys.setprofile(None)
    print(f"modules whose functions receive a TrainConfig: {len(tracer.receive)}")
    for module, functions in sorted(tracer.receive.items()):
        print(f"  {module}: {', '.join(sorted(functions))}")
    print(f"modules whose functions run between train() and the first train_step: {len(tracer.run)}")
    print("  " + ", ".join(sorted(tracer.run)))


if __name__ == "__main__":
    main()
