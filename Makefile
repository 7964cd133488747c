# Set-up and entry points. `make demo` and `make test` each install what they need on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
SNAKEMAKE := $(VENV)/bin/snakemake
CORES ?= 2
# Debian packages: cp2k (DFT labels, real CP2K test), slurm (live-cluster test), chromium (report page test).
DEBIAN_PACKAGES := cp2k cp2k-data slurmctld slurmd slurm-client chromium

.PHONY: demo metal active-learning test venv debian report clean

venv: $(VENV)/.installed

# SchNetPack 2.2.0 declares Python >= 3.12 but runs on 3.11: its dependencies come from the lock file,
# the package itself without its metadata check (see README, "Installation").
$(VENV)/.installed: requirements.lock pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps --ignore-requires-python schnetpack==2.2.0
	$(PY) -m pip install -q --no-deps -e .
	touch $@

debian:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# The demo times itself: results/report/demo_time.json (wall seconds, cores, whether results/ was empty at
# the start), which `python -m confselect.readme README.md` quotes. $(1): the results directory, $(2): more
# Snakemake arguments.
define timed_run
empty=$$([ -e $(1) ] && echo false || echo true); start=$$(date +%s); \
$(SNAKEMAKE) --cores $(CORES) $(2) && \
$(SNAKEMAKE) --cores $(CORES) $(2) --report $(CURDIR)/$(1)/report/report.html && \
printf '{"wall_s": %d, "cores": %d, "from_empty_results": %s, "date": "%s"}\n' \
  $$(( $$(date +%s) - start )) $(CORES) $$empty "$$(date -u +%Y-%m-%d)" > $(1)/report/demo_time.json && \
cat $(1)/report/demo_time.json
endef

demo: venv
	@$(call timed_run,results,)

# The bulk-metal demo (config/metal.yaml: Cu, three pool recipes) in its own directory, metal/.
metal: venv
	@$(call timed_run,metal/results,--configfile $(CURDIR)/config/metal.yaml --directory metal)

# Active learning (al_qbc) against random and RND at equal labels over seeds (config/active_learning.yaml), in al/.
active-learning: venv
	@$(call timed_run,al/results,--configfile $(CURDIR)/config/active_learning.yaml --directory al)

# The report page of the last run, and a screenshot of it (headless Chromium) to check it renders; no
# Debian packages are installed for it (a cluster login node may have no chromium: the page is still made).
report: venv
	$(SNAKEMAKE) --cores $(CORES) results/report/index.html
	@if command -v chromium >/dev/null; then \
	  chromium --headless --no-sandbox --disable-gpu --window-size=1200,2400 \
	    --screenshot=results/report/index.png file://$(CURDIR)/results/report/index.html 2>/dev/null; \
	else echo "chromium not found: results/report/index.html written, no screenshot"; fi

test: venv debian
	$(PY) -m pytest -ra

clean:
	rm -rf results logs .snakemake metal
