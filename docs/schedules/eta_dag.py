"""The ETA example's schedule as an Airflow DAG: an hourly backfill of the stream groups
(what arrived later than their lateness; the streaming job itself runs as a service), a
daily batch ingest, materialization and batch scoring, then the day's profiles and drift
report (docs/monitoring.md: the task fails, and Airflow alerts, when a feature drifted or a
feed went stale), and a weekly retrain with a parity gate. Each task is one ``palette job`` command — the same commands cron runs
(docs/jobs.md) — so any scheduler that runs a shell command can run palette.

Paths and URLs come from Airflow Variables-free environment settings on the workers:
``PALETTE_STORE_ROOT``, ``PALETTE_ONLINE_STORE``, ``MLFLOW_TRACKING_URI``.
"""
from datetime import datetime, timedelta

from airflow import DAG

try:                                                   # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:                                    # Airflow 2
    from airflow.operators.bash import BashOperator

DATA = "/data/eta"
DEFAULTS = {"retries": 2, "retry_delay": timedelta(minutes=5)}

# The commands, by task: tests/jobs/test_job_schedules.py parses each with its job's own
# argument parser, so a renamed or misspelled option fails the test suite, not the night.
HOURLY = {
    "backfill_streams": "palette job backfill --group restaurant:realtime_fg --group region:service_fg "
                        "--group restaurant:location_fg --from {{ ds }} --online-store $PALETTE_ONLINE_STORE",
}
DAILY = {
    "ingest_batch": f"palette job ingest --group restaurant:batch_fg --source {DATA}/batch_fg",
    "materialize": "palette job materialize --online-store $PALETTE_ONLINE_STORE --group restaurant:batch_fg",
    "batch_score": f"palette job batch-score --model models:/eta@champion --input {DATA}/orders/date={{{{ ds }}}} "
                   f"--output {DATA}/predictions --run-id {{{{ ds }}}} --keep order_id,r_id,order_ts",
    "profile": "palette job monitor-profile restaurant:batch_fg restaurant:realtime_fg restaurant:location_fg "
               "region:service_fg --window 1h",
    "drift_report": "palette job monitor-report restaurant:batch_fg restaurant:realtime_fg restaurant:location_fg "
                    "region:service_fg --last 1d --reference 7d --every 6h --max-staleness 6h "
                    "--html /reports/drift-{{ ds }}.html --json /reports/drift-{{ ds }}.json",
}
WEEKLY = {
    "train": f"palette job train --pipeline palette.examples.eta:pipeline --data {DATA}/orders "
             "--label delivery_minutes --timestamp-col order_ts --test-fraction 0.25 --experiment eta "
             "--register eta",
    "parity": f"palette job parity --model models:/eta/latest --data {DATA}/requests_sample --sample 100000 "
              "--online-store $PALETTE_ONLINE_STORE --report /reports/parity-{{ ds }}.html",
}

with DAG("palette_eta_hourly", start_date=datetime(2026, 1, 1), schedule="15 * * * *", catchup=False,
         default_args=DEFAULTS, tags=["palette"]) as hourly:
    BashOperator(task_id="backfill_streams", bash_command=HOURLY["backfill_streams"])

with DAG("palette_eta_daily", start_date=datetime(2026, 1, 1), schedule="30 3 * * *", catchup=False,
         default_args=DEFAULTS, tags=["palette"]) as daily:
    BashOperator(task_id="ingest_batch", bash_command=DAILY["ingest_batch"]) \
        >> BashOperator(task_id="materialize", bash_command=DAILY["materialize"]) \
        >> BashOperator(task_id="batch_score", bash_command=DAILY["batch_score"]) \
        >> BashOperator(task_id="profile", bash_command=DAILY["profile"]) \
        >> BashOperator(task_id="drift_report", bash_command=DAILY["drift_report"])

with DAG("palette_eta_weekly", start_date=datetime(2026, 1, 1), schedule="0 5 * * 1", catchup=False,
         default_args=DEFAULTS, tags=["palette"]) as weekly:
    BashOperator(task_id="train", bash_command=WEEKLY["train"]) \
        >> BashOperator(task_id="parity", bash_command=WEEKLY["parity"])
