# The two commands a newcomer needs: `make demo` and `make test`. Each sets itself up
# (virtualenv, Python packages, the Delta jars via Maven) and is safe to rerun.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.palette-installed

.PHONY: test demo notebooks bench reliability fuzz jars redis kafka wrk vegeta s3 install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[spark,test,mlflow,redis,serve,notebooks]"
	touch $(STAMP)

install: $(STAMP)

# The Delta jars, Spark's Kafka source and Apache Kafka's broker (Maven Central, once). The
# tests start their own broker from these jars (tests/conftest.py, palette.testing.kafka_server).
jars: $(STAMP)
	$(BIN)/python -m palette.spark fetch-jars

# A Kafka broker (KRaft, single node) on a free loopback port, in the foreground, for the
# streaming examples: it prints its bootstrap servers.
kafka: install jars
	$(BIN)/python -m palette.testing kafka

# A Spark standalone cluster on loopback (a master and two workers of 1 core, each its own JVM
# from the pinned pyspark's spark-class), in the foreground, for spark-submit: it prints the master URL.
.PHONY: spark-cluster
spark-cluster: install jars
	$(BIN)/python -m palette.testing spark-cluster

# redis-server from the OS packages: the tests start real servers on loopback ports.
redis:
	@command -v redis-server >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q redis-server >/dev/null; }
	@redis-server --version

# wrk from the OS packages: the load generator of benchmarks/http_serving.py.
wrk:
	@command -v wrk >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q wrk >/dev/null; }
	@command -v wrk

# vegeta, the open-loop load generator of benchmarks/http_serving.py: built from the Go module proxy.
VEGETA := $(BIN)/vegeta
vegeta: $(VEGETA)
$(VEGETA): | $(BIN)/python
	@command -v go >/dev/null || { echo "vegeta is built with Go: install Go (https://go.dev/dl/) first" >&2; exit 1; }
	GOBIN=$(abspath $(BIN)) go install github.com/tsenart/vegeta/v12@v12.13.0

# SeaweedFS's weed (Apache-2.0), the S3-compatible server the tests start on loopback
# (palette.testing.s3_server), built once from the Go module proxy (a few minutes). `go install`
# refuses a module whose go.mod has replace directives, so it is built inside a copy of the module.
SEAWEEDFS := github.com/seaweedfs/seaweedfs@v0.0.0-20261109003541-7506e5f91cd6
WEED := $(BIN)/weed
s3: $(WEED)
$(WEED): | $(BIN)/python
	@command -v go >/dev/null || { echo "weed is built with Go: install Go (https://go.dev/dl/) first" >&2; exit 1; }
	set -e; src=$$(go mod download -json $(SEAWEEDFS) | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p'); \
	  [ -n "$$src" ] && [ -d "$$src/weed" ] || { echo "could not download $(SEAWEEDFS) from the Go module proxy" >&2; exit 1; }; \
	  tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; cp -r "$$src/." "$$tmp"; chmod -R u+w "$$tmp"; \
	  cd "$$tmp/weed" && GOFLAGS=-mod=mod go build -trimpath -ldflags="-s -w" -o $(abspath $(WEED)).tmp . && \
	  mv $(abspath $(WEED)).tmp $(abspath $(WEED))

# The class-data-sharing archive every test JVM maps (tests/spark_env.py: about 90 s, once per
# install; a cold JVM's first Delta work in 15 s against 23 s). Valid only for these jars.
CLASSES := $(VENV)/palette-spark-classes/classes.jsa
$(CLASSES): $(STAMP) tests/spark_env.py tests/spark_conf/spark-defaults.conf
	$(MAKE) jars
	$(BIN)/python tests/spark_env.py

test: install jars redis s3 $(CLASSES)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Coverage-guided fuzzing (atheris) of the DSL, the request decoders and model loading, each
# target FUZZ_SECONDS (600) long; the corpus grows in .fuzz/, findings land in .fuzz/findings/.
FUZZ_SECONDS ?= 600
fuzz: install
	@mkdir -p .fuzz/findings
	@for t in dsl requests model_dir; do \
	  mkdir -p .fuzz/corpus/$$t && cp -n tests/fuzz/corpus/$$t/* .fuzz/corpus/$$t/; \
	  echo "== fuzzing $$t for $(FUZZ_SECONDS) s"; \
	  $(BIN)/python tests/fuzz/run.py $$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=3072 \
	    -artifact_prefix=.fuzz/findings/$$t- -print_final_stats=1 .fuzz/corpus/$$t || exit 1; \
	done

# The DSL quick start, then the ETA story as the scheduled jobs run it (output in demo-out/).
demo: install jars
	$(BIN)/python notebooks/dsl_quickstart.py
	$(BIN)/python -m palette.examples.demo --workdir demo-out $(DEMO_ARGS)

# Re-run every notebook in a fresh kernel and commit-ready .ipynb with outputs.
notebooks: install jars
	$(BIN)/python notebooks/build.py $(NOTEBOOKS)

$(VENV)/.palette-bench-installed: $(STAMP)
	$(BIN)/python -m pip install -q -e ".[spark,test,mlflow,redis,serve,notebooks,bench]"
	touch $@

bench: install jars redis wrk vegeta $(VENV)/.palette-bench-installed
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

# Load, faults and bad input (benchmarks/reliability.py; about 30 minutes): rewrites docs/reliability.md.
reliability: install jars redis vegeta
	$(BIN)/python benchmarks/run.py --only reliability $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis spark-warehouse demo-out
