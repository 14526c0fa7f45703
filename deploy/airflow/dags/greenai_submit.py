"""Hand a GPU job to a greenai daemon; the daemon plans it into a green window and runs it.

Needs a connection `greenai_default`: conn type http, host and port of the daemon, password
= its API token (GREENAI_API_TOKEN), e.g.
    airflow connections add greenai_default --conn-type http --conn-host 127.0.0.1 \
        --conn-port 8787 --conn-password "$GREENAI_API_TOKEN"
The task waits deferred, succeeds or fails with the job, and clearing or marking the task
cancels the job.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from greenai.integrations.airflow import GreenaiSubmitOperator

with DAG(
    dag_id="greenai_submit",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"script": "python train.py --epochs 3", "max_delay": "12h"},
    tags=["greenai"],
) as dag:
    GreenaiSubmitOperator(
        task_id="train",
        command=["sh", "-c", "{{ params.script }}"],
        duration="2h",
        max_delay="{{ params.max_delay }}",  # start within 12 h (or deadline=...)
        gpus=1,
        project="nlp",
        greenai_conn_id="greenai_default",
        poll_interval=5,
    )
