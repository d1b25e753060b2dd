"""Hugging Face Space entry point: the drawing app (`edges2shoes app`) on the port a Space serves.

A Space with the gradio SDK runs this file with `python app.py`; `requirements.txt` beside it
installs the package with its [app] extra. The weights are the official pix2pix edges2shoes
generator, fetched once at start; set the Space variable EDGES2SHOES_APP_WEIGHTS to "kaggle" (the
original project's generator) or to a file in the Space's repository to use others.
"""

import os
import sys
from typing import Mapping


def command(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The `edges2shoes` arguments: all interfaces on the Space's port (a Space proxies 7860)."""
    return ["app", "--weights", environ.get("EDGES2SHOES_APP_WEIGHTS", "pix2pix-official"),
            "--host", environ.get("GRADIO_SERVER_NAME", "0.0.0.0"),
            "--port", environ.get("GRADIO_SERVER_PORT", "7860")]


if __name__ == "__main__":
    from edges2shoes_utils.apps.cli import main

    sys.exit(main(command()))
