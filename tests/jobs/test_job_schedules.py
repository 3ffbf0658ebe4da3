"""The schedules in the docs run as written: every ``palette job`` command of the crontab in
docs/jobs.md and of the Airflow DAG file (docs/schedules/eta_dag.py) is parsed by its job's
own argument parser, so a renamed or misspelled option fails here. With Airflow installed
the DAG file is imported too; without it, it is read by parsing, not imported."""
import argparse
import ast
import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from palette.jobs import JOBS, job_module

DOCS = Path(__file__).resolve().parents[2] / "docs"
DAG = DOCS / "schedules" / "eta_dag.py"


def check_command(command: str) -> str:
    """Parse one ``palette job NAME ...`` command with NAME's parser; returns NAME."""
    words = shlex.split(command)
    assert words[:2] == ["palette", "job"], command
    module = job_module(words[2])
    parser = argparse.ArgumentParser(prog=f"palette job {words[2]}", exit_on_error=False)
    module.add_arguments(parser)
    try:
        parser.parse_args(words[3:])
    except (SystemExit, argparse.ArgumentError) as e:
        pytest.fail(f"{command!r}: its job refuses these arguments ({e})")
    return words[2].replace("-", "_")


def crontab_commands() -> list[str]:
    block = next(b for b in re.findall(r"```bash\n(.*?)```", (DOCS / "jobs.md").read_text(), re.S)
                 if b.startswith("# m  h"))
    out = []
    for line in block.splitlines()[1:]:
        command = line.split(None, 5)[5]
        out += [c.strip() for c in command.split("&&")]
    return out


def dag_commands() -> dict[str, str]:
    """The DAG file's command tables, evaluated from its source (its simple assignments
    only; nothing of Airflow is needed)."""
    tree = ast.parse(DAG.read_text())
    namespace: dict = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "datetime":
            exec(compile(ast.Module([node], []), str(DAG), "exec"), namespace)
        if isinstance(node, ast.Assign):
            exec(compile(ast.Module([node], []), str(DAG), "exec"), namespace)
    tables = {**namespace["HOURLY"], **namespace["DAILY"], **namespace["WEEKLY"]}
    # Airflow renders its templates before bash runs the command: do the same.
    return {task: re.sub(r"\{\{\s*ds\s*\}\}", "2026-12-03", c) for task, c in tables.items()}


def test_the_crontab_in_the_docs_parses():
    jobs = [check_command(c) for c in crontab_commands()]
    assert set(jobs) == {"backfill", "ingest", "materialize", "batch_score", "train"}


def test_the_airflow_dag_commands_parse_and_every_task_uses_one():
    commands = dag_commands()
    jobs = {check_command(c) for c in commands.values()}
    assert jobs == {"backfill", "ingest", "materialize", "batch_score", "train", "parity", "monitor_profile",
                    "monitor_report"} <= set(JOBS)
    dags = [n for n in ast.parse(DAG.read_text()).body if isinstance(n, ast.With)]
    used = {n.value for d in dags for n in ast.walk(d) if isinstance(n, ast.Constant) and n.value in commands}
    assert len(dags) == 3 and used == set(commands)       # every command is some DAG's task
    if importlib.util.find_spec("airflow") is not None:   # with Airflow: the DAGs load, with those tasks
        spec = importlib.util.spec_from_file_location("eta_dag", DAG)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert {t for d in (module.hourly, module.daily, module.weekly) for t in d.task_ids} == set(commands)
