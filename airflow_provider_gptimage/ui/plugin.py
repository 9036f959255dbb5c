"""The Airflow plugin (entry point ``airflow.plugins``): the image app in the api-server and a DAG run tab.

Every Airflow process loads plugins (workers and the scheduler too), so this module imports nothing heavy:
the FastAPI app is built on its first request, in the api-server.

* Airflow 3.0.x: the app is mounted (usable with an ``Authorization: Bearer`` token); the 3.0 UI sends no
  session cookie to it, so the extra links keep pointing at the stored URIs and no tab is added.
* Airflow 3.1+: the UI's session cookie authenticates the links and the "GPT Images" tab of each DAG run
  (an ``external_views`` entry with destination ``dag_run``), which frames the run's gallery.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_gptimage.ui import urls


class LazyApp:
    """An ASGI app that builds the plugin's FastAPI app (:func:`.app.create_app`) on its first call."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Hand the request to the FastAPI app, building it first if needed."""
        if self._app is None:
            from airflow_provider_gptimage.ui.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


#: The tab of each DAG run's page (Airflow 3.1+); the UI fills in the placeholders of ``href``.
RUN_VIEW = {
    "name": "GPT Images",
    "href": urls.view_href(),
    "destination": "dag_run",
    "url_route": urls.VIEW_ROUTE,
    "category": "GPT Image",
}


class GPTImagePlugin(AirflowPlugin):
    """Serves the images tasks of this provider stored, and shows a DAG run's images in the UI."""

    name = "gptimage"
    fastapi_apps = [{"app": LazyApp(), "url_prefix": urls.URL_PREFIX, "name": "GPT Image images"}]
    external_views = [RUN_VIEW] if urls.ui_sessions() else []
