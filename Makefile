# 链证 Lianzheng — `make run` serves everything, `make test` runs every test. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# LIANZHENG_DATA_DIR, when set, is the data dir of `make run` too (the --data-dir flag would otherwise win over it)
DATA_DIR ?= $(or $(LIANZHENG_DATA_DIR),var)
PY_STAMP := $(VENV)/.installed
NODE_STAMP := hardhat-free-devnet/node_modules/.installed
PYTEST_ARGS ?=

.PHONY: install run test system-deps bytecode compile lint clean-data bench

install: $(PY_STAMP) $(NODE_STAMP)

# setup.py builds three C modules, one of them against OpenSSL's headers (Debian's libssl-dev; gcc and Python's
# headers are on the machine): installed here when missing, as system-deps does for the tests' programs.
# uv installs the versions pip would (pyproject.toml's bounds: the same ~130 packages) in ~14 s, where pip took ~45 s
# with its cache warm: every fresh clone, CI's included, pays this. --compile-bytecode: pip compiles what it installs,
# uv only when asked, and where PYTHONDONTWRITEBYTECODE is set every process of the suite would compile the
# packages it imports again (the SQLite run took 873 s instead of ~580). The project itself is always built again,
# so that an edited C module is compiled.
$(PY_STAMP): pyproject.toml setup.py registry/certificates/_leaves.c registry/formats/_lz2.c registry/crypto/_sm4.c
	@test -f /usr/include/openssl/evp.h || { [ "$$(id -u)" = 0 ] && echo "installing libssl-dev (apt)" && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libssl-dev >/dev/null; } || { [ "$$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libssl-dev >/dev/null; } || { echo "need OpenSSL's headers: apt-get install -y libssl-dev" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check 'uv>=0.13,<0.14'
	$(BIN)/uv pip install -q --python $(BIN)/python --compile-bytecode --reinstall-package lianzheng -e '.[dev]'
	@touch $@

$(NODE_STAMP): hardhat-free-devnet/package.json hardhat-free-devnet/package-lock.json
	# --omit=dev: the browser libraries are vendored under api/static/vendor; package.json pins them only as records
	cd hardhat-free-devnet && npm ci --omit=dev --no-audit --no-fund --loglevel=error
	@touch $@

# Browser tests need Debian's chromium and a CJK font (without it Chinese renders as empty boxes); softhsm2 for
# PKCS#11; poppler-utils (pdfsig, pdftoppm) and libnss3-tools (certutil: an NSS store trusting the seal CA for
# pdfsig) for the sealed PDF; postgresql for the suite on PostgreSQL.
system-deps:
	@if command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi 'wqy' && command -v softhsm2-util >/dev/null 2>&1 && command -v pdfsig >/dev/null 2>&1 && command -v certutil >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "installing chromium, fonts-wqy-microhei, softhsm2, poppler-utils, libnss3-tools and postgresql (apt)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei softhsm2 poppler-utils libnss3-tools postgresql >/dev/null); \
	elif command -v sudo >/dev/null 2>&1; then \
	  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei softhsm2 poppler-utils libnss3-tools postgresql >/dev/null; \
	else echo "need chromium, fonts-wqy-microhei, softhsm2, poppler-utils, libnss3-tools and postgresql: apt-get install -y chromium fonts-wqy-microhei softhsm2 poppler-utils libnss3-tools postgresql" >&2; exit 1; fi

# Each process `up` and the tests start (API servers, witnesses, CLI commands: hundreds in a test run) imports the
# project's modules. Where PYTHONDONTWRITEBYTECODE is set (as on these machines) none of them keeps what it compiled,
# and each compiles them from source again: ~80 s of the suite's CPU. Compiled once here, they are read from
# __pycache__ (an edited module is compiled again in memory, as always).
bytecode: install
	@$(BIN)/python -m compileall -q -j 0 api registry chain tests >/dev/null

run: install bytecode
	$(BIN)/lianzheng --data-dir $(DATA_DIR) up

# --dist loadfile: each test file runs whole on one worker, so a module's fixtures (a devnet, a local consortium)
# are built once and a file's tests may build on each other. (xdist_group marks are not honoured by
# pytest-xdist 3.8 under pytest 9.2: the group suffix it writes to item._nodeid no longer reaches the node id.)
# The second run repeats the whole integration suite on PostgreSQL (a cluster of the run's own,
# tests/support/postgres.py): every node, CLI subprocess and template database of those tests on it (the
# eth-tester variants of `chain_node` tests are left to the first run: tests/conftest.py says why).
# --no-loadscope-reorder: files go out in the order collected, heaviest first (tests/support/durations.py), so the
# two workers end together.
test: install system-deps bytecode
	$(BIN)/pytest -q -n 2 --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)
	$(BIN)/pytest -q -n 2 --dist loadfile --no-loadscope-reorder --db=postgresql tests/integration

compile: install
	$(BIN)/lianzheng compile

# ruff over everything; mypy strict (config: pyproject.toml [tool.mypy]) over the registry and chain layers.
lint: install
	$(BIN)/ruff check chain registry api tests
	$(BIN)/mypy --strict registry chain

bench: install
	$(BIN)/lianzheng bench issue --count 10000

clean-data:
	rm -rf $(DATA_DIR)
