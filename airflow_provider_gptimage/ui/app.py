"""The plugin's FastAPI app, mounted in the api-server under :data:`~.urls.URL_PREFIX`.

Every route names a DAG and passes Airflow's own authorization first (the api-server's JWT, from the
``Authorization`` header or the UI's session cookie, then the auth manager's per-DAG decision on reading
XComs, as the core ``/api/v2`` XCom routes ask it). Routes are sync: their DB and storage calls run in
FastAPI's thread pool.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from typing import Annotated
from urllib.parse import quote

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, StreamingResponse

from airflow_provider_gptimage.ui import storage, view
from airflow_provider_gptimage.ui.records import images_of, task_result
from airflow_provider_gptimage.ui.results import StoredFile, StoredImage, sidecar_thumbnail

log = logging.getLogger(__name__)

#: Headers on every response of the app.
COMMON_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
#: Images: never rendered as anything but an image, never cached where another user could read them.
IMAGE_HEADERS = {"Content-Security-Policy": "default-src 'none'; sandbox", "Cache-Control": "private, no-cache"}
_STYLE = re.compile(r"<style>(.*?)</style>", re.DOTALL)

ReadDag = Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.XCOM))


def page_policy(page: str) -> str:
    """The CSP of a gallery page: no script, images from this origin, its own inline style only."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()}'"
        for style in _STYLE.findall(page)
    )
    styles = hashes or "'none'"
    return (
        f"default-src 'none'; img-src 'self'; style-src {styles}; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'self'"
    )


def _image(session: SessionDep, dag_id: str, run_id: str, task_id: str, map_index: int, number: int) -> StoredImage:
    """The ``number``-th image the task instance recorded; 404 for anything else."""
    result = task_result(session, dag_id, run_id, task_id, map_index)
    images = images_of(session, dag_id, run_id, result) if result is not None else []
    if number < 0 or number >= len(images):
        raise HTTPException(404, f"The task instance recorded {len(images)} stored image(s); no image {number}.")
    return images[number]


def _serve(request: Request, image: StoredImage, file: StoredFile) -> Response:
    etag = f'"sha256-{image.sha256}"' if image.sha256 and file is image.image else None
    headers = {**IMAGE_HEADERS, **({"ETag": etag} if etag else {})}
    if etag and etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    try:
        opened = storage.open_image(file, image.conn_id)
    except storage.Refused as refused:
        raise HTTPException(refused.status, str(refused)) from refused
    except Exception as exc:
        log.exception("Could not read %s (connection %r)", file.uri, image.conn_id)
        raise HTTPException(502, f"The image's storage could not be read ({type(exc).__name__}).") from exc
    name = quote(file.uri.rsplit("/", 1)[-1], safe="")
    headers.update({"Content-Length": str(opened.size), "Content-Disposition": f"inline; filename*=UTF-8''{name}"})
    return StreamingResponse(opened.chunks, media_type=opened.content_type, headers=headers)


def _thumbnail(request: Request, found: StoredImage) -> Response:
    """Serve the thumbnail the result records, else the one the sidecar names, else the image itself."""
    recorded = found.thumbnail if found.thumbnail is not None and found.thumbnail.content_type else None
    kept = recorded or sidecar_thumbnail(found, storage.read_sidecar(found))
    if kept is not None:
        try:
            return _serve(request, found, kept)
        except HTTPException as missing:  # named but gone (or not a JPEG): the image is still there
            if missing.status_code != 404:
                raise
    return _serve(request, found, found.image)


def create_app() -> FastAPI:
    """Build the app: images, thumbnails, a DAG run's gallery, and the documentation."""
    app = FastAPI(
        title="GPT Image",
        description="Images written by airflow-provider-gptimage tasks, read from their recorded results.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        response.headers.update(COMMON_HEADERS)
        return response

    @app.get("/images/{dag_id}/{run_id}/{task_id}/{map_index}/{number}", dependencies=[ReadDag])
    def image(
        request: Request, session: SessionDep, dag_id: str, run_id: str, task_id: str, map_index: int, number: int
    ) -> Response:
        """Image ``number`` (0-based) of the task instance's recorded result."""
        found = _image(session, dag_id, run_id, task_id, map_index, number)
        return _serve(request, found, found.image)

    @app.get("/thumbnails/{dag_id}/{run_id}/{task_id}/{map_index}/{number}", dependencies=[ReadDag])
    def thumbnail(
        request: Request, session: SessionDep, dag_id: str, run_id: str, task_id: str, map_index: int, number: int
    ) -> Response:
        """The thumbnail of image ``number``: the one its result records, else the one its sidecar names
        (``_thumbs/<stem>.jpg``), else the image itself."""
        return _thumbnail(request, _image(session, dag_id, run_id, task_id, map_index, number))

    @app.get("/runs/{dag_id}/{run_id}", dependencies=[ReadDag], response_class=HTMLResponse)
    def run_gallery(
        session: SessionDep,
        dag_id: str,
        run_id: str,
        page: Annotated[int, Query(ge=1)] = 1,
        per_page: Annotated[int, Query(ge=1, le=view.MAX_PER_PAGE)] = view.DEFAULT_PER_PAGE,
    ) -> HTMLResponse:
        """One page of the gallery of every image the run's tasks recorded."""
        html = view.render_run(dag_id, run_id, view.run_images(session, dag_id, run_id), page=page, per_page=per_page)
        return HTMLResponse(html, headers={"Content-Security-Policy": page_policy(html), "Cache-Control": "no-store"})

    @app.get("/docs/", response_class=HTMLResponse)
    @app.get("/docs/{page:path}", response_class=HTMLResponse)
    def documentation(page: str = "index.md") -> HTMLResponse:
        """The documentation of the installed version (public: it is the package's own documentation)."""
        from airflow_provider_gptimage.ui.docs import render

        html = render(page or "index.md")
        if html is None:
            raise HTTPException(404, "No such page of the documentation.")
        return HTMLResponse(html, headers={"Content-Security-Policy": page_policy(html)})

    return app
