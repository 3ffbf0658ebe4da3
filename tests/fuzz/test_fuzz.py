"""Fuzzing (atheris, coverage-guided): the committed corpus replays cleanly, and a short run
of each target finds nothing — only ``PaletteError``s, no hang, bounded memory. ``make
fuzz`` runs each target for long (see tests/fuzz/run.py)."""
import base64
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parent
sys.path.insert(0, str(FUZZ))

from targets import TARGETS  # noqa: E402

SECONDS = 10


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_committed_corpus_raises_only_palette_errors(name):
    seeds = sorted((FUZZ / "corpus" / name).iterdir())
    assert seeds, f"no corpus for {name}"
    for seed in seeds:
        TARGETS[name](seed.read_bytes())


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_a_short_fuzz_run_finds_nothing(name, tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(FUZZ / "corpus" / name, corpus)
    proc = subprocess.run([sys.executable, str(FUZZ / "run.py"), name, f"-max_total_time={SECONDS}", "-timeout=10",
                           "-rss_limit_mb=3072", f"-artifact_prefix={tmp_path}/", "-print_final_stats=1", str(corpus)],
                          capture_output=True, text=True, timeout=SECONDS + 120)
    findings = {p.name: base64.b64encode(p.read_bytes()).decode() for p in tmp_path.iterdir()
                if p.name.startswith(("crash-", "timeout-", "oom-", "leak-"))}
    assert proc.returncode == 0 and not findings, \
        f"findings (base64; add them to tests/fuzz/corpus/{name}/ once fixed): {findings}\n{proc.stderr[-6000:]}"
    runs = [line for line in proc.stderr.splitlines() if "stat::number_of_executed_units" in line]
    assert runs and int(runs[0].split(":")[-1]) > 50, proc.stderr[-3000:]
