"""Write notebooks/train_kaggle.ipynb (outputs stripped) from the cells below.

    .venv/bin/python notebooks/build_train_kaggle.py

The notebook is committed; this script is how it is edited, so that its cells stay reviewable as
plain text and the committed file never carries outputs or execution counts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
SKIP = {"tags": ["skip-execution"]}


def install_code() -> str:
    """notebook_install.py's code without its docstring: the install cell runs before the package is
    installed, so it carries this copy (the cell's comment says where it comes from)."""
    source = (HERE.parent / "edges2shoes_utils" / "apps" / "notebook_install.py").read_text()
    docstring = ast.parse(source).body[0]
    return "\n".join(source.splitlines()[docstring.end_lineno:]).strip()


CELLS = [
    new_markdown_cell(
        """# Train pix2pix on edges2shoes (Kaggle)

pix2pix (Isola et al. 2017, [arXiv 1611.07004](https://arxiv.org/abs/1611.07004)): a U-Net generator and a
70x70 PatchGAN discriminator that learn to turn a shoe's edge map into a photo. This notebook is a thin
front door onto the `edges2shoes_utils` package: every cell calls into it.

**On Kaggle**
1. *Add Input*: search for **edges2shoes** and attach `balraj98/edges2shoes-dataset` (the notebook finds
   it wherever Kaggle mounts it).
2. *Settings -> Accelerator*: **GPU T4 x2**. Not the P100: see the note at the end.
3. Install: either attach a dataset holding an `edges2shoes-*.whl` (built with `python -m build`; the
   install cell takes the newest one under `/kaggle/input`, and the notebook then runs with
   *Settings -> Internet* off), or turn the internet on and set `REPO_URL` in the install cell to this
   project's repository (or your fork).
4. *Run All*. With two GPUs the notebook trains on both (DistributedDataParallel under `torchrun`).

Everything is written to `/kaggle/working/<RUN_NAME>` (`./runs/<RUN_NAME>` elsewhere): per-epoch
`generator_{epoch}.pt` / `discriminator_{epoch}.pt`, the resumable `last.pt`, the losses (CSV, JSON,
PNG), a sample grid per epoch and, at the end, `generator.safetensors`. If the session stops, run the
notebook again: it continues the run from `last.pt`."""
    ),
    new_code_cell(
        f"""# Install the package (Kaggle, Colab); not needed where edges2shoes is installed already.
# The newest edges2shoes-*.whl attached under /kaggle/input when there is one (internet off), else REPO_URL.
REPO_URL = "git+https://github.com/OWNER/edges2shoes"  # <-- EDIT: the repository (or your fork) to install from

# ---- a copy of edges2shoes_utils/apps/notebook_install.py (the package is not installed yet) ----
{install_code()}
# ----

import shlex

PIP_ARGS = shlex.join(pip_install_args(REPO_URL))
%pip install --quiet {{PIP_ARGS}}""",
        metadata=SKIP,
    ),
    new_markdown_cell(
        """## Parameters
`INIT_FROM` starts from published weights instead of from scratch: continue the original model past its
10 epochs (`"kaggle"`), or fine-tune the official one on your own shoes (`"pix2pix-official"`). The
networks' architecture then comes from the weights, and the optimisers start fresh."""
    ),
    new_code_cell(
        """EPOCHS = 10           # passes over the ~50k training pairs (the original notebook: 10; the paper: 15)
BATCH_SIZE = 4        # images per step per GPU (the paper's edges2shoes batch); with GPUS > 1 the global batch is this x GPUs
LAMBDA_L1 = 10.0      # weight of the L1 term (the original notebook's 10; the paper's 100)
IMAGE_SIZE = 256      # training resolution (the paper's 256)
NGF, NDF = 64, 64     # network widths (64 = the paper's networks); with INIT_FROM the weights decide
INIT_FROM = None      # None: start from scratch; or start from published weights with fresh optimisers:
                      # "kaggle" (the original notebook's generator_9.pt and discriminator_9.pt),
                      # "pix2pix-official" or "huggan" (generator only; D starts fresh), or a weights file
DATASET = None        # None: find it (attached Kaggle input, $EDGES2SHOES_DATA, else download);
                      # or a folder with train/ and val/, or a Kaggle handle "owner/slug/versions/N"
OUTPUT_DIR = None     # None: /kaggle/working on Kaggle, ./runs elsewhere
RUN_NAME = "pix2pix_edges2shoes"
GPUS = "auto"         # "auto": every visible GPU (2 on T4 x2, through torchrun); 1: this process only
OPTIONS = {}          # any other training option by its TrainConfig name, e.g. {"compile": True, "sync_bn": True}""",
        metadata={"tags": ["parameters"]},
    ),
    new_markdown_cell("## Where are we?\nThe environment, the accelerator, and the settings this run will use."),
    new_code_cell(
        """from pathlib import Path

from edges2shoes_utils.apps import notebook_support as nbs
from edges2shoes_utils import train

ENVIRONMENT = nbs.detect_environment()
print(f"environment: {ENVIRONMENT}")
print(nbs.accelerator_advice(nbs.accelerator_info(), ENVIRONMENT))

params = {
    "epochs": EPOCHS,
    "batch_size": BATCH_SIZE,
    "lambda_l1": LAMBDA_L1,
    "image_size": IMAGE_SIZE,
    "ngf": NGF,
    "ndf": NDF,
    "init": INIT_FROM,
    "data": None,
    "out": str(Path(OUTPUT_DIR or nbs.default_output_dir(ENVIRONMENT)) / RUN_NAME),
    **OPTIONS,
}"""
    ),
    new_markdown_cell("## The data\nFind the dataset and look at a few pairs: edges on the left of each file, the photo on the right."),
    new_code_cell(
        """data_root = nbs.find_dataset(DATASET)
params["data"] = str(data_root)
print(f"dataset: {data_root}")
nbs.show_pairs(data_root, n=4, image_size=params["image_size"])"""
    ),
    new_markdown_cell(
        """## The method, by hand
pix2pix trains two networks against each other: a U-Net generator G that turns edges into a photo,
and a PatchGAN discriminator D that judges (edges, photo) pairs patch by patch. Here are the two
networks with this run's settings, fresh (with `INIT_FROM` the run itself starts from the published
weights), and their sizes."""
    ),
    new_code_cell(
        """import torch

from edges2shoes_utils import PairsDataset, PatchGANDiscriminator, UNetGenerator
from edges2shoes_utils.nets import count_parameters
from edges2shoes_utils.training import LOSS_NAMES, StepParts, train_step
from edges2shoes_utils.training.device import make_adam, pick_device, resolve_precision

config, _ = nbs.train_config(params)  # the settings `train` will use below
device = pick_device(config.device)
generator = UNetGenerator(config.generator_config()).to(device)
discriminator = PatchGANDiscriminator(config.discriminator_config()).to(device)
print(f"generator G (U-Net, {generator.config.levels} levels): {count_parameters(generator):,} parameters")
print(f"discriminator D (PatchGAN): {count_parameters(discriminator):,} parameters")"""
    ),
    new_markdown_cell(
        """One training step on one batch, with the function `train` runs for every step: D learns to tell
(edges, photo) from (edges, G(edges)), then G learns to fool the updated D while staying close to the
photo in L1. It returns four losses: G's adversarial and L1 terms, D's loss on real and on generated
pairs."""
    ),
    new_code_cell(
        """pairs = PairsDataset(data_root, split="train", image_size=config.image_size, direction=config.direction)
edges, photos = (torch.stack(images).to(device) for images in zip(*(pairs[i] for i in range(config.batch_size))))
precision = resolve_precision(config.precision, device)
parts = StepParts(
    generator=generator, discriminator=discriminator, discriminator_for_g=discriminator,
    opt_g=make_adam(generator.parameters(), config.lr, tuple(config.betas), device),
    opt_d=make_adam(discriminator.parameters(), config.lr, tuple(config.betas), device),
    scaler=precision.make_scaler(), precision=precision,
    lambda_l1=config.lambda_l1, gan_mode=config.gan_mode, d_loss_halve=config.d_loss_halve,
)
losses = train_step(parts, edges, photos)
for name, value in zip(LOSS_NAMES, losses.tolist()):
    print(f"{name:>13}: {value:.4f}")"""
    ),
    new_markdown_cell(
        """## Train
`train` runs that step on every batch of every epoch, with the data loader, the learning-rate
schedule, checkpoints and logs around it. The progress bar shows images/s and the running losses;
each epoch ends with a line of mean losses, a sample grid and the epoch's weights. Re-running this
cell after an interruption continues the run."""
    ),
    new_code_cell(
        """config, resumed = nbs.train_config(params)
run_dir = Path(config.out)
MODE = nbs.launch_mode(GPUS)
print(f"run folder: {run_dir}{' (continuing the saved run)' if resumed else ''}; training: {MODE}")
if MODE == "single":
    result = train(config)
else:
    print("more than one GPU: training runs in the torchrun cell below")"""
    ),
    new_markdown_cell(
        """### Several GPUs (Kaggle's T4 x2)
`torchrun` starts one process per GPU; each trains on its own share of every epoch
(DistributedDataParallel), so with `BATCH_SIZE = 4` two T4s take 8 images per step. Batch norm
normalises over each GPU's own batch (like a single-GPU run with that batch size); add
`"sync_bn": True` to `OPTIONS` for statistics over all GPUs. Only the first process writes files and
draws the progress bar. Stopped runs continue where they stopped, as above.

The command is built from the same settings as the single-GPU cell; it can also be run in a terminal,
or on several machines with torchrun's `--nnodes`/`--rdzv-endpoint` options instead of `--standalone`."""
    ),
    new_code_cell(
        """TORCHRUN = nbs.torchrun_command(config, nproc_per_node=max(2, nbs.processes_for(GPUS)))
print(TORCHRUN)"""
    ),
    new_code_cell(
        """# Multi-GPU training (runs when GPUS allows more than one GPU).
if MODE == "torchrun":
    !{TORCHRUN}""",
        metadata=SKIP,
    ),
    new_markdown_cell("## Losses\nGenerator: adversarial and L1 terms; discriminator: its loss on real and on generated pairs, per epoch."),
    new_code_cell(
        """nbs.show_images([run_dir / "losses.png"])
print((run_dir / "losses.csv").read_text())"""
    ),
    new_markdown_cell("## Sample grids\nThe same val pairs after each of the last epochs: Input | Ground truth | Generated."),
    new_code_cell("""nbs.show_images(nbs.newest((run_dir / "samples").glob("epoch_*.png"), 3))"""),
    new_markdown_cell(
        """## The weights
Per-epoch files stay in the run folder (on Kaggle: the notebook's *Output* after *Save Version*).
`generator.safetensors` is the last epoch's generator in a safe, self-describing format; use it with
`Sketch2Shoe.from_weights(path)` or `python -m edges2shoes_utils generate SKETCH --weights path`."""
    ),
    new_code_cell(
        """exported = nbs.export_final_generator(run_dir)
for path in sorted(run_dir.glob("*.pt")) + [exported]:
    print(f"{path}  {path.stat().st_size / 1e6:.1f} MB")"""
    ),
    new_markdown_cell(
        """## Notes
**P100.** Kaggle's P100 has compute capability 6.0; the PyTorch build in Kaggle's current image ships no
kernels for it, so the first GPU operation would fail. Training checks this and stops at once with a
message. Pick **GPU T4 x2** instead: two GPUs with tensor cores for the mixed-precision (fp16) path,
supported by the installed PyTorch. (Installing an older PyTorch that still supports sm_60 is possible,
but slower than two T4s and not tested here.)

**Speed.** On CUDA training uses mixed precision, channels_last and cuDNN autotuning by default.
`"compile": True` in `OPTIONS` adds `torch.compile` (slow first steps, faster after)."""
    ),
]


def build() -> nbformat.NotebookNode:
    nb = new_notebook(cells=CELLS)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{index:02d}"  # nbformat's ids are random; stable ones keep diffs clean
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


if __name__ == "__main__":
    target = HERE / "train_kaggle.ipynb"
    notebook = build()
    nbformat.write(notebook, target)
    print(f"wrote {target}")
