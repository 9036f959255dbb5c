"""An auth manager for the plugin tests: Airflow's simple one, except that one user may not read one DAG.

The simple auth manager has no per-DAG permissions; this subclass adds the smallest one, so the tests
can prove the plugin asks Airflow's authorization for the DAG named in each request. Configured in the
test api-server through ``[core] auth_manager``.
"""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

#: The user who may read every DAG but :data:`DENIED_DAG`.
OUTSIDER = "outsider"
#: The DAG :data:`OUTSIDER` may not read.
DENIED_DAG = "gptimage_ui_secret"


class DenyOneDagAuthManager(SimpleAuthManager):
    """:class:`SimpleAuthManager` that refuses :data:`DENIED_DAG` to :data:`OUTSIDER`."""

    def is_authorized_dag(self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None) -> bool:
        """Refuse the denied DAG to the outsider; ask the simple auth manager otherwise."""
        if details is not None and details.id == DENIED_DAG and user.get_name() == OUTSIDER:
            return False
        return super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)

    def get_authorized_dag_ids(self, *, user: Any, method: Any = "GET", session: Any = None) -> set[str]:
        """The DAG ids the user may see in lists (the UI's filters), without the denied one."""
        kwargs = {"session": session} if session is not None else {}
        dag_ids = set(super().get_authorized_dag_ids(user=user, method=method, **kwargs))
        return dag_ids - {DENIED_DAG} if user.get_name() == OUTSIDER else dag_ids
