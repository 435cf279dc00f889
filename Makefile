# The commands of the README:
#   make book   run the whole study (papermill, in order) and build the book into _build/html;
#               make book PARAMS=params/<profile>.yaml runs and builds another profile's book
#               (executed notebooks in book/executed/<profile>/, html in _build/<profile>/_build/html)
#   make chapter CH=03 [PARAMS=...]  rerun one chapter and every later one, then build the book
#   make exercise EX=trust_score [FILE=...]  check an exercise's answer with the study's own tests
#   make try-it [TRY=tau]  run the chapters' "Try it" changes not yet measured, and record them for the book
#   make reruns [RERUN=worlds]  rerun the whole study on other worlds and float kernels, and record its verdicts
#   make test   run the test suite (unit tests, a smoke run of the pipeline, a strict book build
#               checked page by page in headless Chromium, a lint of the publishing workflow)
# Each creates .venv from scratch when it is missing; `make test` also installs Debian's chromium
# (apt-get, through sudo unless root) when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PARAMS ?= params/default.yaml
PROFILE := $(basename $(notdir $(PARAMS)))
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# The job store every artifacts folder links into (inbol_utils.runner.reuse): a relative path is
# read from the project's root.
export INBOL_JOBS ?= data/jobs
# Where the smoke test keeps its browser screenshot of the results page (pytest's own tmp folders
# are recycled after three runs).
export INBOL_SCREENSHOTS ?= $(CURDIR)/_build/screenshots

.PHONY: book chapter exercise try-it reruns pipeline test test-fast chromium bench bench-worlds lab clean clean-jobs

$(VENV)/.installed: requirements.txt constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip==26.3
	# torch first, as the CPU build on this machine; the pinned rest cannot move it.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

# The default book has a second part, the same study on easy-VQA (params/easy_vqa.yaml).
pipeline: $(VENV)/.installed
	$(PY) -m inbol_utils.runner.pipeline $(PARAMS)
ifeq ($(PROFILE),default)
	$(PY) -m inbol_utils.runner.pipeline params/easy_vqa.yaml
endif

# _toc.yml is the default profile's book; another profile's reads its own executed folder.
book: pipeline
ifeq ($(PROFILE),default)
	$(VENV)/bin/jupyter-book build . -W -n --keep-going
else
	# Its table of contents, and a copy of the introduction beside its chapters that glues theirs.
	$(PY) -m inbol_utils.book.profile_book $(PARAMS)
	$(VENV)/bin/jupyter-book build . --toc _build/$(PROFILE)/_toc.yml --path-output _build/$(PROFILE) \
		-W -n --keep-going
endif

# One chapter and every later one, rerun even when current (an earlier one only if its inputs
# changed), then the book: make chapter CH=03 [PARAMS=params/mine.yaml]. Jobs whose ingredients
# did not change are answered from the job store.
chapter: $(VENV)/.installed
	@test -n "$(CH)" || { echo "make chapter needs the chapter's number, e.g. make chapter CH=03"; exit 2; }
	$(PY) -m inbol_utils.runner.pipeline $(PARAMS) --rerun-from $(CH)
	$(MAKE) book

# An exercise's answer, checked with the study's own tests of that function (book/exercises.md):
# make exercise EX=trust_score [FILE=my_answer.py]
exercise: $(VENV)/.installed
	@test -n "$(EX)" || { echo "make exercise needs the exercise, e.g. make exercise EX=trust_score"; exit 2; }
	$(PY) -m inbol_utils.tools.exercises $(EX) $(FILE)

# The chapters' "Try it" changes, each a params copy in data/try_it/<change> sharing the job store, after the
# default run (`make book`); their cost and what they showed go into inbol_utils/book/try_it.json, which the
# chapters glue: make try-it [TRY=tau] (no TRY: every change not yet measured; `--list` names them)
try-it: $(VENV)/.installed
	$(PY) -m inbol_utils.tools.try_it $(TRY)

# The default study rerun whole on other worlds and with other float kernels, each beside data/default
# (after `make book`); which verdicts came back goes into inbol_utils/book/reruns.json, which chapter 4 and the
# introduction glue: make reruns [RERUN=worlds] (no RERUN: every rerun not yet run; about 30 minutes each)
reruns: $(VENV)/.installed
	$(PY) -m inbol_utils.tools.reruns $(RERUN)

# The browser test's Chromium (Debian's package; nothing to do when it is installed).
chromium:
	bash .ci/install-chromium

# One pytest worker per core (pytest-xdist): the smoke run, mostly kernel starts and imports,
# runs beside the unit tests instead of after them.
test: $(VENV)/.installed chromium
	$(PY) -m pytest -q -n auto --dist worksteal

test-fast: $(VENV)/.installed chromium
	$(PY) -m pytest -q -n auto --dist worksteal -m "not slow"

bench: $(VENV)/.installed
	$(PY) -m inbol_utils.tools.bench

# The notebooks in JupyterLab (open notebooks/), served from .venv, so that their "python3"
# kernel is .venv's Python. A notebook opened there reads the same data/ as the runner:
# parameters.check reads a relative path from the project's root, whatever the kernel's folder.
lab: $(VENV)/.installed
	$(VENV)/bin/jupyter lab

# One base model per world (0-4, or those WORLDS names): notebook 00 alone, one seed per world, run on a copy of the
# profile in data/bench_worlds/<profile>/: make bench-worlds [WORLDS="5 6 7"] [PARAMS=...]
bench-worlds: $(VENV)/.installed
	$(PY) -m inbol_utils.tools.bench_worlds --params $(PARAMS) $(if $(WORLDS),--worlds $(WORLDS))

# Everything generated; data/README.md, which says what a run writes there, stays.
clean:
	rm -rf _build book/executed
	find data -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +

# The job store alone: every trained model and scored run. The artifacts folders keep their links,
# and the next run of each reruns all its stages (the runner says so).
clean-jobs:
	rm -rf $(INBOL_JOBS)
