# Two commands for a fresh machine:  `make demo`  (the offline demo)  and  `make test`.
# Both create .venv and install the package into it on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch and torchvision are installed first, pinned to the releases CI tests. On Linux the default
# PyPI wheels carry CUDA (several GB); override TORCH_SPEC to pick a CPU-only build or another version.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
DEMO_OUT ?= runs/demo

.PHONY: setup demo test bench clean-venv print-torch-spec

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

# The static page's runtime (onnxruntime-web, pinned in web/package-lock.json), for `edges2shoes web
# build` and the page's browser tests; without npm those tests skip and the build says what is missing.
WEB_RUNTIME := web/node_modules/.package-lock.json
$(WEB_RUNTIME): web/package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --prefix web --no-audit --no-fund; \
	else echo "npm not found: the static page (edges2shoes web build) and its tests need Node.js 20 and npm"; fi

setup: $(VENV)/.installed $(WEB_RUNTIME)

demo: setup
	$(PY) -m edges2shoes_utils demo --out $(DEMO_OUT)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	$(PY) -m edges2shoes_utils bench all

clean-venv:
	rm -rf $(VENV)

# tools/check_wheel.sh installs the same torch into its fresh environment.
print-torch-spec:
	@echo $(TORCH_SPEC)
