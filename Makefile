# musicindex: `make demo` runs the main job, `make test` runs the tests.
# Both create .venv and install the package there; nothing else is needed.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast test-unit lint format bench services-stop clean browser browser-check screenshots js-client

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[ml,test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/musicindex demo

# The suite runs in TEST_WORKERS pytest-xdist processes (one per core here), a test module per process at a
# time (--dist loadfile keeps a module's shared fixtures in one process); each process starts its own
# embedded PostgreSQL and Redis. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: $(STAMP)
	@$(MAKE) --no-print-directory browser-check js-client
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile; rc=$$?; $(MAKE) --no-print-directory browser-check; exit $$rc

# The browser tests need Debian's Chromium (`apt-get install -y chromium`, as .ci/run does).
# Without it they are skipped (a failure under CI=true): say so loudly, before and after.
CHROMIUM ?= /usr/bin/chromium
browser-check:
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"; \
	  echo "!!! $(CHROMIUM) not found: the BROWSER TESTS (tests/test_browser.py) WILL BE SKIPPED."; \
	  echo "!!! Install it: apt-get update && apt-get install -y chromium   (CI=true turns the skip into a failure)"; \
	  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"; \
	fi

# The second Subsonic client (tests/test_subsonic_clients.py): subsonic-api from npm, pinned by tests/js/package-lock.json,
# run by Node.js. Without node/npm the test is skipped loudly (a failure under CI=true).
js-client:
	@if command -v npm >/dev/null 2>&1; then \
	  test -f tests/js/node_modules/subsonic-api/package.json || npm ci --prefix tests/js --no-audit --no-fund --silent; \
	else \
	  echo "!!! npm not found: the second Subsonic client (tests/test_subsonic_clients.py) WILL BE SKIPPED (apt-get install -y nodejs npm)"; \
	fi

browser: ## install Debian's Chromium for the browser tests (root)
	apt-get update && apt-get install -y chromium

test-fast: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not slow"

test-unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The README's screenshots (docs/img/player.png, phone.png, album.png, track.png, map.png): taken by the browser tests
# only when MUSICINDEX_SCREENSHOTS is set.
screenshots: $(STAMP)
	MUSICINDEX_SCREENSHOTS=1 $(PY) -m pytest -q tests/test_player.py tests/test_player_library.py tests/test_browser.py \
	  -k "queue_now_next or no_horizontal_scroll_from or find_an_album or search_track_similar or map_draws"

bench: $(STAMP)
	$(PY) benchmarks/extract.py

services-stop: $(STAMP)
	$(VENV)/bin/musicindex services stop

clean:
	rm -rf $(VENV) build *.egg-info
