"""MLflow (``pip install 'genlab[mlflow]'``), through ``MlflowClient`` only (no fluent API: no process-wide
active run, so a user's own MLflow runs are left alone).

Where: ``log.mlflow_uri``, else ``$MLFLOW_TRACKING_URI``, else the run id's saved store, else a local SQLite store
next to the run folder, ``<folder of the run>/mlflow/mlflow.db`` with artifacts in ``.../mlflow/artifacts`` (SQLite
is MLflow's own default backend; the file store is refused by current MLflow). See it with
``mlflow ui --backend-store-uri sqlite:///runs/mlflow/mlflow.db``.

What: one MLflow run per genlab run, named after the run folder, in experiment ``log.experiment``; the resolved
config as params (dotted keys; a value changed on resume goes to a ``changed_on_resume/<key>`` tag, since MLflow
params never change); every record as metrics at its step (names MLflow refuses, such as ``D(G(z))``, become
``D_G_z``); each evaluation record, protocol included, as ``evaluations/step_XXXXXXXXX.json`` and its protocol
as the ``genlab.eval_protocol`` tag; the grids as step images; the final export under ``export/`` and
``eval.json``; the end as the run status (finished: FINISHED, interrupted or stopped: KILLED, diverged or
failed: FAILED) plus the ``genlab.status`` tag with genlab's own word. A resume reopens the same MLflow run.

Against a server, genlab sets MLflow's HTTP retries to 2 (backoff factor 1, timeout 30 s) unless those variables
are set, so a server that has gone away costs seconds, not MLflow's default of minutes of retries.
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from genlab import __version__
from genlab.evaluation import describe_protocol
from genlab.rundir import RunDir
from genlab.trackers.base import Tracker, TrackerStart, flat_params, register_tracker

#: genlab's end status -> MLflow's run status
STATUS = {"finished": "FINISHED", "stopped": "KILLED", "interrupted": "KILLED", "diverged": "FAILED",
          "failed": "FAILED"}
#: MLflow HTTP settings used unless the environment sets them (MLflow's default retries last minutes)
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
#: MLflow's batch limits (mlflow.utils.validation)
MAX_PARAMS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000


def local_store(run: RunDir) -> Path:
    """The default store's folder: ``mlflow/`` beside the run folder (in runs/ for runs/NAME)."""
    return run.path.absolute().parent / "mlflow"


def local_store_uri(run: RunDir) -> str:
    return f"sqlite:///{local_store(run) / 'mlflow.db'}"


def tracking_uri(s: TrackerStart) -> str:
    """``log.mlflow_uri``, ``$MLFLOW_TRACKING_URI``, the store the run was first tracked in, the local default."""
    explicit = s.cfg.log.mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    return explicit or (s.saved or {}).get("tracking_uri") or local_store_uri(s.run)


def metric_key(key: str) -> str:
    """A record key as an MLflow metric name (alphanumerics, ``_ - . /`` and spaces): ``D(G(z))`` -> ``D_G_z``."""
    return re.sub(r"[^/\w.\- ]+", "_", key).strip("_") or "_"


def param_value(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def _chunks(items: list, n: int) -> list[list]:
    return [items[i:i + n] for i in range(0, len(items), n)]


@register_tracker
class MLflowTracker(Tracker):
    name = "mlflow"
    package = "mlflow"
    extra = "mlflow"

    def __init__(self) -> None:
        self.client: Any = None
        self.run_id = ""

    @contextmanager
    def quiet(self) -> Iterator[None]:
        """MLflow logs a traceback before it raises (a database error, its table migrations at INFO): its
        logger is kept to CRITICAL during genlab's calls, so a failure reads as genlab's one warning line."""
        logger = logging.getLogger("mlflow")
        level = logger.level
        logger.setLevel(logging.CRITICAL)
        try:
            yield
        finally:
            logger.setLevel(level)

    # ------------------------------------------------------------------------------------- start
    def start(self, s: TrackerStart) -> dict | None:
        from mlflow.tracking import MlflowClient

        uri = tracking_uri(s)
        local = uri == local_store_uri(s.run)
        if local:
            local_store(s.run).mkdir(parents=True, exist_ok=True)
        if uri.startswith(("http://", "https://")):
            for k, v in HTTP_DEFAULTS.items():
                os.environ.setdefault(k, v)
        self.client = MlflowClient(tracking_uri=uri)
        params = {k: param_value(v) for k, v in flat_params(s.config).items()}
        experiment_id = self._continued(s, uri, params)
        if experiment_id is None:
            experiment_id = self._experiment(s.cfg.log.experiment, local_store(s.run) / "artifacts" if local else None)
            run = self.client.create_run(experiment_id, run_name=s.run.path.name,
                                         tags={"genlab.run_dir": str(s.run.path.absolute()),
                                               "genlab.version": __version__, "genlab.status": "running"})
            self.run_id = run.info.run_id
            self._log_params(params)
        s.log(f"mlflow: run {self.run_id} (experiment {s.cfg.log.experiment}) at {uri}")
        return {"run_id": self.run_id, "experiment_id": experiment_id, "tracking_uri": uri}

    def _continued(self, s: TrackerStart, uri: str, params: dict[str, str]) -> str | None:
        """Reopen the saved run (a resume) -> its experiment id; None when there is none to reopen."""
        from mlflow.exceptions import MlflowException

        saved = s.saved or {}
        if not saved.get("run_id"):
            return None
        if saved.get("tracking_uri") != uri:
            s.log(f"mlflow: this run was tracked at {saved.get('tracking_uri')}; it is now tracked at {uri} "
                  "as a new MLflow run (with the records so far)")
            return None
        try:
            run = self.client.get_run(saved["run_id"])
        except MlflowException as e:
            if e.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            s.log(f"mlflow: run {saved['run_id']} is no longer in {uri}; logging to a new MLflow run (with the "
                  "records so far)")
            return None
        self.run_id = run.info.run_id
        self.client.update_run(self.run_id, status="RUNNING")
        self.client.set_tag(self.run_id, "genlab.status", "running")
        old = run.data.params
        self._log_params({k: v for k, v in params.items() if k not in old})
        changed = {f"changed_on_resume/{k}": v for k, v in params.items() if k in old and old[k] != v}
        self._log_tags(changed)
        return run.info.experiment_id

    def _experiment(self, name: str, artifacts: Path | None) -> str:
        """The id of experiment ``name``, created (with ``artifacts`` as its artifact root) when missing."""
        from mlflow.exceptions import MlflowException

        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        try:
            return self.client.create_experiment(name, artifact_location=artifacts.as_uri() if artifacts else None)
        except MlflowException:  # another run created it in between
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id

    def _log_params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        for chunk in _chunks(sorted(params.items()), MAX_PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=[Param(k, v) for k, v in chunk])

    def _log_tags(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        for chunk in _chunks(sorted(tags.items()), MAX_PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in chunk])

    # ------------------------------------------------------------------------------------- events
    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        ms = int(time.time() * 1000)
        for chunk in _chunks(list(metrics.items()), MAX_METRICS_PER_BATCH):
            self.client.log_batch(self.run_id, metrics=[Metric(metric_key(k), v, ms, step) for k, v in chunk])

    def log_evaluation(self, step: int, record: dict) -> None:
        self.client.log_dict(self.run_id, record, f"evaluations/step_{step:09d}.json")
        self.client.set_tag(self.run_id, "genlab.eval_protocol", describe_protocol(record.get("protocol")))

    def log_image(self, step: int, tag: str, grid: np.ndarray) -> None:
        self.client.log_image(self.run_id, grid, key=metric_key(tag), step=step)

    def log_artifacts(self, files: dict[str, Path]) -> None:
        for name, path in files.items():
            if path.is_dir():
                self.client.log_artifacts(self.run_id, str(path), name)
            else:
                self.client.log_artifact(self.run_id, str(path))

    def finish(self, step: int, status: str) -> None:
        self.client.set_tag(self.run_id, "genlab.status", status)
        self.client.set_terminated(self.run_id, STATUS.get(status, "FAILED"))
