"""Writes colab_sketch_to_shoe.ipynb (outputs stripped). Edit here, run it, commit both:
    python notebooks/build_colab_sketch_to_shoe.py
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

md = new_markdown_cell
def code(src, tags=()):
    return new_code_cell(src, metadata={"tags": list(tags)} if tags else {})

cells = [
    md("# Sketch to shoe\n\n"
       "Draw a shoe (side view, dark lines on white paper), take a photo or scan, upload the .jpg, "
       "and a pix2pix generator trained on edges2shoes turns it into a shoe photo.\n\n"
       "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
       "(https://colab.research.google.com/github/OWNER/edges2shoes/blob/main/notebooks/colab_sketch_to_shoe.ipynb)\n\n"
       "Runs on a CPU runtime: one 256x256 image takes well under a second."),
    code("# Install the package (Colab); not needed where it is installed already. Safe to re-run.\n"
         "REPO = \"git+https://github.com/OWNER/edges2shoes\"  # <- this project's repository\n"
         "import importlib.util\n"
         "if importlib.util.find_spec(\"edges2shoes_utils\") is None:\n"
         "    !pip install -q {REPO}", tags=["skip-execution"]),
    code("# Parameters\n"
         "WEIGHTS = \"kaggle\"  # \"kaggle\" (the original project's generator_9.pt), \"pix2pix-official\", \"huggan\" (HugGAN sprint; colours can look unrealistic), \"hub:USER/NAME\", or a path\n"
         "MODE = \"train\"      # \"train\" (default): each image's own batch statistics + dropout, as the paper; \"eval\": running statistics\n"
         "SEED = 0            # same sketch + same seed = same shoe (train mode)", tags=["parameters"]),
    code("from edges2shoes_utils import Sketch2Shoe, sample_sketches\n"
         "from edges2shoes_utils.apps.upload_widget import SketchToShoeApp, side_by_side, translate_file, translator_for\n"
         "\n"
         "model = Sketch2Shoe.from_weights(WEIGHTS, mode=MODE, seed=SEED)\n"
         "print(model.describe())"),
    md("## The bundled sample sketches\n\nDrawn by the project, so the notebook works before you upload anything."),
    code("translate = translator_for(model)\n"
         "samples = {path.name: path for path in sample_sketches()}\n"
         "for path in samples.values():\n"
         "    display(side_by_side(translate_file(translate, path)))"),
    md("## Your sketch\n\n"
       "Click **Upload sketch**. The result shows Original | Prepared (what the model sees) | Generated, "
       "with a download link."),
    code("app = SketchToShoeApp(translate, samples=samples)\napp"),
    md("If the upload button does not appear (widgets disabled), use Colab's own upload dialog:"),
    code("from edges2shoes_utils.apps.upload_widget import upload_with_colab\n"
         "for result in upload_with_colab(translate):  # unusable files are reported, not raised\n"
         "    display(side_by_side(result))", tags=["skip-execution"]),
    md("## Draw\n\n"
       "Draw a shoe on the canvas and watch it appear as you draw: pencil, eraser, undo and clear on the "
       "canvas, the sample sketches one click away, an upload button for a photo or scan, the drawing as "
       "the model sees it beside the shoe, **New variation** (a fresh dropout seed) and a download button. "
       "It is `edges2shoes app` (gradio) with the model loaded above, shown inline here through Colab's "
       "port proxy, so no public link is made. On Kaggle, where an inline app is refused, use "
       "`launch_app(drawing_app, share=True)` (needs internet)."),
    code("# The app's extra: gradio 6 (Colab may ship an older one); not needed where it is installed.\n"
         "from importlib.metadata import PackageNotFoundError, version\n"
         "try:\n"
         "    has_gradio_6 = version(\"gradio\").split(\".\")[0] == \"6\"\n"
         "except PackageNotFoundError:\n"
         "    has_gradio_6 = False\n"
         "if not has_gradio_6:\n"
         "    !pip install -q \"gradio>=6,<7\"", tags=["skip-execution"]),
    code("from edges2shoes_utils.apps.web_app import build_app, launch_app\n"
         "\n"
         "drawing_app = build_app(model)  # the model loaded above, shared by everyone who opens the page\n"
         "launch_app(drawing_app, block=False, height=1150);  # inline; share=False: no public link"),
]


def build() -> nbformat.NotebookNode:
    for index, cell in enumerate(cells):
        cell["id"] = f"cell-{index}"  # stable ids: rebuilding gives no diff
    return new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
        "colab": {"provenance": []},
    })


if __name__ == "__main__":
    nbformat.write(build(), Path(__file__).with_name("colab_sketch_to_shoe.ipynb"))
