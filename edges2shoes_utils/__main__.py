"""`python -m edges2shoes_utils ...` runs the command line (also installed as `edges2shoes`)."""

from .apps.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
