"""The plugin's URLs: where the api-server serves a task instance's images and a DAG run's gallery.

Pure string building plus one configuration read (:func:`api_base_url`); cheap to import in a worker,
where the operators' extra links are evaluated.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode, urlsplit

#: Where the plugin's FastAPI app is mounted in the api-server.
URL_PREFIX = "/gptimage"
#: The ``url_route`` of the DAG run tab (Airflow 3.1+): ``/dags/<dag>/runs/<run>/plugin/gptimage-images``.
VIEW_ROUTE = "gptimage-images"


def _segment(value: str) -> str:
    return quote(str(value), safe="")


def _instance(dag_id: str, run_id: str, task_id: str, map_index: int) -> str:
    return f"{_segment(dag_id)}/{_segment(run_id)}/{_segment(task_id)}/{int(map_index)}"


def image_path(dag_id: str, run_id: str, task_id: str, map_index: int, number: int) -> str:
    """Path of image ``number`` (0-based, in the order of the task's recorded result) of a task instance."""
    return f"{URL_PREFIX}/images/{_instance(dag_id, run_id, task_id, map_index)}/{int(number)}"


def thumbnail_path(dag_id: str, run_id: str, task_id: str, map_index: int, number: int) -> str:
    """Path of the thumbnail of image ``number`` (the image itself while the result records none)."""
    return f"{URL_PREFIX}/thumbnails/{_instance(dag_id, run_id, task_id, map_index)}/{int(number)}"


def run_path(dag_id: str, run_id: str, *, page: int | None = None, per_page: int | None = None) -> str:
    """Path of the gallery of every image the tasks of a DAG run wrote (``page`` is 1-based)."""
    query = {name: value for name, value in (("page", page), ("per_page", per_page)) if value is not None}
    suffix = f"?{urlencode(query)}" if query else ""
    return f"{URL_PREFIX}/runs/{_segment(dag_id)}/{_segment(run_id)}{suffix}"


def view_href(base_url: str | None = None) -> str:
    """The ``href`` of the DAG run tab, whose placeholders the UI replaces with the URL-encoded ids.

    The UI frames it as given, so it carries the path of ``[api] base_url`` (an Airflow served under
    ``https://host/airflow/``) but no host: the frame stays same-origin.

    :param base_url: the api-server's base URL (default: :func:`api_base_url`).
    """
    base = api_base_url() if base_url is None else base_url
    return f"{urlsplit(base.strip()).path.rstrip('/')}{URL_PREFIX}/runs/{{DAG_ID}}/{{RUN_ID}}"


def api_base_url() -> str:
    """Return ``[api] base_url`` without its trailing slash, or ``""`` when it is unset.

    Unset, links stay relative to the api-server's root (``/gptimage/...``): same-origin links, which the
    Airflow 3.3 UI shows like ``http(s)`` ones.
    """
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # Airflow < 3.2: one configuration for core and task SDK
        from airflow.configuration import conf  # type: ignore[no-redef]
    value = conf.get("api", "base_url", fallback="") or ""
    return value.strip().rstrip("/")


def absolute(path: str, base_url: str | None = None) -> str:
    """Prefix ``path`` with the api-server's base URL (:func:`api_base_url` when ``base_url`` is ``None``)."""
    base = api_base_url() if base_url is None else base_url.strip().rstrip("/")
    return f"{base}{path}"


def ui_sessions() -> bool:
    """Whether the running Airflow's UI authenticates plain browser requests (its session cookie, 3.1+).

    Airflow 3.0's UI keeps its token in the page and sends it only with its own API calls: a link opened
    in a new tab, or an ``<img>`` of the gallery, would be refused there. Its plugin views also start in 3.1.
    """
    import airflow
    from packaging.version import Version

    return Version(Version(airflow.__version__).base_version) >= Version("3.1")
