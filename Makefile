# Two entry points for a fresh Debian 12 machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= demo-data
PORT ?= 8080
SYSTEM_PACKAGES := ffmpeg chromium fonts-dejavu-core poppler-utils

.PHONY: demo test system venv web-assets lint clean

# Debian packages: ffmpeg/ffprobe for media, chromium for browser tests, fonts and poppler for PDF checks.
system:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(BIN)/kuzet: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test,anpr]"
	@touch $@

venv: $(BIN)/kuzet

# Browser libraries come from npm at set-up and are served locally (police networks are closed).
web-assets: venv
	@if [ -f package.json ]; then \
		[ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error; \
		$(BIN)/python -m kuzet.web.vendor; \
	fi

demo: system venv web-assets
	$(BIN)/kuzet demo --data $(DATA) --port $(PORT)

test: system venv web-assets
	$(BIN)/ruff check src tests
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check src tests

clean:
	rm -rf $(VENV) node_modules src/kuzet/web/static/vendor
