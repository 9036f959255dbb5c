"""OpenLineage facets for what a task wrote, used when ``apache-airflow-providers-openlineage`` is installed.

Nothing here is imported unless the OpenLineage listener asks an operator for its facets, so the
provider works without that package.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

#: ``source`` of the ExternalQuery run facet naming the service's job.
SOURCE = "gptimage"
#: Output datasets a batch reports one per image; above this, one per folder.
MAX_DATASETS = 100


def dataset_name(uri: str) -> tuple[str, str]:
    """Return the OpenLineage (namespace, name) of an object-storage URI.

    Follows the OpenLineage naming spec: ``s3://bucket/key`` is namespace ``s3://bucket``, name ``key``;
    a local ``file:///path`` is namespace ``file``, name ``/path``.
    """
    parts = urlsplit(uri)
    scheme = parts.scheme or "file"
    if scheme in ("file", "local"):
        return "file", parts.path or uri
    return f"{scheme}://{parts.netloc}", parts.path.lstrip("/")


def task_result(task_instance: Any) -> Mapping[str, Any] | None:
    """Return the ``return_value`` XCom the task instance pushed, or ``None``."""
    value = task_instance.xcom_pull(
        task_ids=task_instance.task_id, key="return_value", map_indexes=getattr(task_instance, "map_index", -1)
    )
    return value if isinstance(value, Mapping) else None


def lineage_for(result: Mapping[str, Any] | None) -> OperatorLineage:
    """Return the lineage of one task result: an output dataset per copy written, and the job id.

    :param result: the task's ``return_value`` (see :func:`~.protocol.events.result_payload`), or a batch's
        report (one dataset per image written, or per folder above :data:`MAX_DATASETS`; no job facet).
    """
    from airflow.providers.common.compat.openlineage.facet import ExternalQueryRunFacet, OutputDataset
    from airflow.providers.openlineage.extractors import OperatorLineage

    if not result:
        return OperatorLineage()
    outputs = []
    uris = result.get("output_uris") or []
    if isinstance(result.get("items"), list):  # a batch's report: every item's copies, or its folder
        uris = [uri for item in result["items"] for uri in item.get("output_uris") or []]
        if len(uris) > MAX_DATASETS:
            uris = sorted({uri.rsplit("/", 1)[0] + "/" for uri in uris})
    for uri in uris:
        namespace, name = dataset_name(str(uri))
        outputs.append(OutputDataset(namespace=namespace, name=name))
    run_facets: dict[str, Any] = {}
    job_id = result.get("job_id")
    if job_id:
        run_facets["externalQuery"] = ExternalQueryRunFacet(externalQueryId=str(job_id), source=SOURCE)
    return OperatorLineage(outputs=outputs, run_facets=run_facets)
