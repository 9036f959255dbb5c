"""The provider's Airflow plugin: the images a task wrote, served and shown inside the Airflow UI.

* :mod:`.plugin` registers it (entry point ``airflow.plugins``): a FastAPI app mounted in the api-server
  under :data:`~.urls.URL_PREFIX` and, on Airflow 3.1+, a "GPT Images" tab on each DAG run.
* :mod:`.urls` builds the plugin's URLs (used by the operators' extra links, in the worker).
* :mod:`.results` reads, without I/O, which stored images a task instance's recorded result names.
* :mod:`.records` reads those results from the metadata DB, :mod:`.storage` reads the images through
  ``ObjectStoragePath``, :mod:`.view` renders a DAG run's gallery, :mod:`.app` holds the routes.

Nothing from a request ever reaches storage: a request names a task instance and an index into the images
its recorded result lists; the URI and connection come from that result alone.
"""

from __future__ import annotations
