# Two entry points for a fresh Debian 12 machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= demo-data
PORT ?= 8080
SYSTEM_PACKAGES := ffmpeg chromium fonts-dejavu-core poppler-utils nginx libnginx-mod-rtmp python3-gi \
	gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
	postgresql-15 postgresql-client-15 nats-server mosquitto prometheus wrk

.PHONY: demo test system venv web-assets lint clean

# Debian packages: ffmpeg/ffprobe for media, chromium for browser tests, fonts and poppler for PDF checks; nginx with
# its RTMP module and GStreamer's RTSP server (run by Debian's python3 with gi) for cameras that push from behind NAT;
# PostgreSQL's client (pg_dump/pg_restore for `kuzet backup`, the server's major version) and server binaries, nats-server
# and mosquitto (the suite starts throw-away ones when none is running); prometheus for `promtool check rules`.
# wrk, the load generator of `kuzet bench api`.
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
