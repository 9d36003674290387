# litegate: the two set-up commands are `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= config/litegate.example.json

.PHONY: run test lint clean bench bench-quick

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# make run reads the same env file as the service (ENV_FILE, when it exists) and leaves a pidfile, so
# `make reload` reaches it too.
PIDFILE ?= $(CURDIR)/.litegate.pid

run: $(VENV)/.installed
	$(BIN)/litegate serve --config "$(patsubst ~/%,$(HOME)/%,$(CONFIG))" \
	  $(if $(wildcard $(patsubst ~/%,$(HOME)/%,$(ENV_FILE))),--env-file "$(patsubst ~/%,$(HOME)/%,$(ENV_FILE))") \
	  --pidfile "$(PIDFILE)"

lint: $(VENV)/.installed-test
	$(BIN)/lint-imports

test: $(VENV)/.installed-test
	$(BIN)/lint-imports
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# ---- launchd service (macOS) ----
# make install [SCOPE=system] [CONFIG=path] [ENV_FILE=path]; then reload | restart | logs | status |
# uninstall. SCOPE=user (default): a LaunchAgent in ~/Library/LaunchAgents, domain gui/<uid>, runs while
# you are logged in. SCOPE=system: a LaunchDaemon in /Library/LaunchDaemons, domain system, starts at
# boot, runs as RUN_AS (you by default); run make as yourself, it calls sudo where root is needed.
# Re-running install upgrades in place (bootout if loaded, rewrite the plist, bootstrap). Secrets go in
# ENV_FILE (chmod 600), never in the plist. Every path and LAUNCHCTL can be overridden (tests use a stub).
# See docs/service.md.
SCOPE      ?= user
LABEL      ?= local.litegate
LAUNCHCTL  ?= launchctl
ENV_FILE   ?= $(HOME)/.config/litegate/env
THROTTLE_S ?= 30
NOFILE     ?= 8192
TAIL       ?= tail -n 100 -F
PREFIX     ?=
ifeq ($(SCOPE),system)
LAUNCH_DAEMONS_DIR ?= $(PREFIX)/Library/LaunchDaemons
PLIST_DIR  = $(LAUNCH_DAEMONS_DIR)
LOG_DIR    ?= $(PREFIX)/Library/Logs/litegate
LAUNCHD_DOMAIN ?= system
RUN_AS     ?= $(or $(SUDO_USER),$(shell id -un))
SUDO       ?= $(if $(filter 0,$(shell id -u)),,sudo)
else ifeq ($(SCOPE),user)
LAUNCH_AGENTS_DIR ?= $(HOME)/Library/LaunchAgents
PLIST_DIR  = $(LAUNCH_AGENTS_DIR)
LOG_DIR    ?= $(HOME)/Library/Logs/litegate
LAUNCHD_DOMAIN ?= gui/$(shell id -u)
RUN_AS     ?=
SUDO       ?=
else
$(error SCOPE must be user or system, not '$(SCOPE)')
endif
SERVICE_TARGET = $(LAUNCHD_DOMAIN)/$(LABEL)
LCTL           = $(strip $(SUDO) $(LAUNCHCTL))
SERVICE_PLIST  = $(PLIST_DIR)/$(LABEL).plist
SERVICE_CONFIG = $(patsubst ~/%,$(HOME)/%,$(CONFIG))
SERVICE_ENV    = $(patsubst ~/%,$(HOME)/%,$(ENV_FILE))

define need_launchctl
@command -v $(firstword $(LAUNCHCTL)) >/dev/null 2>&1 || { echo "make $@: $(firstword $(LAUNCHCTL)) not found: \
the service targets drive launchd (macOS); see docs/service.md" >&2; exit 1; }
endef

.PHONY: install uninstall reload restart logs status

install: $(VENV)/.installed
	$(need_launchctl)
	@test -f "$(SERVICE_CONFIG)" || { echo "make install: no config at $(SERVICE_CONFIG); pass CONFIG=path" >&2; exit 1; }
	@test -e "$(SERVICE_ENV)" || { mkdir -p "$$(dirname "$(SERVICE_ENV)")" && (umask 077 && printf '%s\n' \
	  '# litegate secrets, read at start and on every reload: KEY=VALUE lines, e.g.' '# OPENAI_API_KEY=sk-...' \
	  > "$(SERVICE_ENV)") && echo "created $(SERVICE_ENV) (mode 600): put the keys your config names there"; }
	"$(BIN)/litegate" check-config --env-file "$(SERVICE_ENV)" "$(SERVICE_CONFIG)"
	$(SUDO) mkdir -p "$(PLIST_DIR)" "$(LOG_DIR)"
	$(if $(RUN_AS),$(SUDO) chown "$(RUN_AS)" "$(LOG_DIR)")
	$(SUDO) "$(BIN)/python" launchd/render.py --output "$(SERVICE_PLIST)" --label "$(LABEL)" \
	  --program "$(BIN)/litegate" --config "$(SERVICE_CONFIG)" --env-file "$(SERVICE_ENV)" --workdir "$(CURDIR)" \
	  --log-dir "$(LOG_DIR)" $(if $(RUN_AS),--user "$(RUN_AS)") --throttle-s $(THROTTLE_S) --nofile $(NOFILE)
	@if $(LCTL) print "$(SERVICE_TARGET)" >/dev/null 2>&1; then \
	  echo "$(SERVICE_TARGET) is loaded: stopping it (in-flight requests drain) to upgrade in place"; \
	  echo "$(LCTL) bootout $(SERVICE_TARGET)"; $(LCTL) bootout "$(SERVICE_TARGET)"; fi
	@echo "$(LCTL) bootstrap $(LAUNCHD_DOMAIN) $(SERVICE_PLIST)"; n=0; until $(LCTL) bootstrap $(LAUNCHD_DOMAIN) "$(SERVICE_PLIST)"; do n=$$((n + 1)); \
	  [ $$n -lt 5 ] || exit 1; echo "bootstrap failed; the old instance may still be draining: retrying"; sleep 1; done
	@echo "installed $(SERVICE_TARGET), logs in $(LOG_DIR): make status | reload | logs | uninstall"

uninstall:
	$(need_launchctl)
	@if $(LCTL) print "$(SERVICE_TARGET)" >/dev/null 2>&1; then \
	  echo "$(LCTL) bootout $(SERVICE_TARGET)"; $(LCTL) bootout "$(SERVICE_TARGET)"; fi
	$(SUDO) rm -f "$(SERVICE_PLIST)"
	@echo "uninstalled $(SERVICE_TARGET); kept $(LOG_DIR) and $(SERVICE_ENV)"

# reload: check the config first (a broken one is refused here, and the running one stays), then SIGHUP
# the `make run` instance (PIDFILE) if one is running, else the launchd service.
reload: $(VENV)/.installed
	"$(BIN)/litegate" check-config $(if $(wildcard $(SERVICE_ENV)),--env-file "$(SERVICE_ENV)") "$(SERVICE_CONFIG)" >/dev/null
	@if [ -f "$(PIDFILE)" ] && kill -0 "$$(cat "$(PIDFILE)")" 2>/dev/null; then \
	  kill -HUP "$$(cat "$(PIDFILE)")" && echo "sent SIGHUP to the make-run litegate (pid $$(cat "$(PIDFILE)")): its log shows config_reloaded"; \
	else \
	  command -v $(firstword $(LAUNCHCTL)) >/dev/null 2>&1 || { echo "make reload: no make-run litegate ($(PIDFILE)) and \
	$(firstword $(LAUNCHCTL)) not found: the service targets drive launchd (macOS); see docs/service.md" >&2; exit 1; }; \
	  echo "$(LCTL) kill SIGHUP $(SERVICE_TARGET)"; $(LCTL) kill SIGHUP "$(SERVICE_TARGET)" && \
	  echo "sent SIGHUP: 'make logs' shows config_reloaded, or config_reload_failed with the faults (old config kept)"; \
	fi

restart:
	$(need_launchctl)
	$(LCTL) kickstart -k "$(SERVICE_TARGET)"

status:
	$(need_launchctl)
	$(LAUNCHCTL) print "$(SERVICE_TARGET)"

logs:
	$(TAIL) "$(LOG_DIR)/litegate.log" "$(LOG_DIR)/litegate.err.log"

# ---- benchmark ----
# make bench (full, ~100,000 requests for the memory check) | bench-quick (short run, says so) |
# bench-compare (the same run plus LiteLLM's proxy side by side). Reports: bench/results/latest.{md,json}.
# LiteLLM goes into its own virtualenv (BENCH_LITELLM_VENV), never into litegate's dependencies; if it
# cannot be installed or started the report says so and litegate's figures still come out.
# BENCH_ARGS passes extra flags, e.g. BENCH_ARGS=--cprofile. See bench/README.md.
BENCH_SCALE        ?= full
BENCH_ARGS         ?=
BENCH_LITELLM_VENV ?= bench/.venv-litellm
BENCH_LITELLM_LOG  ?= bench/results/litellm-install.log

.PHONY: bench bench-quick bench-compare soak

# make soak: RSS drift over 20,000 mixed requests and peak RSS with 1,000 held streams per route
# (goals <= 3 MB and <= 90 MB); a few minutes, not part of make test. SOAK_ARGS e.g. --requests 5000.
SOAK_ARGS ?=
soak: $(VENV)/.installed
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

bench: $(VENV)/.installed
	$(BIN)/python -m bench.run --scale full $(BENCH_ARGS)

bench-quick: $(VENV)/.installed
	$(BIN)/python -m bench.run --scale quick $(BENCH_ARGS)

bench-compare: $(VENV)/.installed
	@mkdir -p bench/results
	@test -x "$(BENCH_LITELLM_VENV)/bin/litellm" || { echo "installing LiteLLM's proxy into $(BENCH_LITELLM_VENV) (log: $(BENCH_LITELLM_LOG))"; \
	  { $(PYTHON) -m venv "$(BENCH_LITELLM_VENV)" && "$(BENCH_LITELLM_VENV)/bin/python" -m pip install --upgrade pip \
	    && "$(BENCH_LITELLM_VENV)/bin/python" -m pip install 'litellm[proxy]'; } > "$(BENCH_LITELLM_LOG)" 2>&1 \
	  || echo "make bench-compare: could not install LiteLLM (see $(BENCH_LITELLM_LOG)); litegate's figures still follow" >&2; }
	$(BIN)/python -m bench.run --scale $(BENCH_SCALE) --litellm "$(BENCH_LITELLM_VENV)/bin/litellm" \
	  --litellm-install-log "$(BENCH_LITELLM_LOG)" $(BENCH_ARGS)
