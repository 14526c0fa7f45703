"""Wait for the greenest 2-hour window of the next 12 hours, then train.

The sensor decides with greenai's providers and policies (configured as for `greenai run`:
GREENAI_PROVIDER, GREENAI_THRESHOLD... in the worker's environment), defers until the window
opens (no worker slot is held while it waits), and pushes its decision to XCom.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

from greenai.integrations.airflow import GreenWindowSensor

with DAG(
    dag_id="greenai_green_window",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["greenai"],
) as dag:
    green = GreenWindowSensor(
        task_id="wait_for_green_window",
        duration="2h",  # how long the work takes
        max_delay="12h",  # start within 12 h (or deadline="{{ ... }}": latest finish)
        policy="window",  # or policy="threshold", threshold=150
    )
    train = BashOperator(
        task_id="train",
        bash_command=(
            "echo training at greenai time "
            "{{ ti.xcom_pull(task_ids='wait_for_green_window')['resumed_at'] }}"
        ),
    )
    green >> train
