"""Run the example DAG once with ``dag.test()``; print each task's outcome as JSON.

Runs in .venv-airflow (Airflow 3 plus this project), not in the test's interpreter:
``python tests/support/airflow_runner.py DAG_FILE``. The environment names Airflow's
home and DAGs folder and the example's S3_BACKUP_* settings. The last stdout line is
``{"task_id": {"state": ..., "try_number": ..., "report": {...} or null}}``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from typing import Any


def main(dag_file: str) -> None:
    spec = importlib.util.spec_from_file_location("example_dag", dag_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run = module.dag.test()

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    outcomes: dict[str, dict[str, Any]] = {}
    with create_session() as session:
        for ti in run.get_task_instances(session=session):
            query = XComModel.get_many(run_id=run.run_id, key="report", task_ids=ti.task_id)
            row = session.scalars(query).first()
            outcomes[ti.task_id] = {
                "state": str(ti.state),
                "try_number": ti.try_number,
                "report": XComModel.deserialize_value(row) if row is not None else None,
            }
    print(json.dumps(outcomes))


if __name__ == "__main__":
    main(sys.argv[1])
