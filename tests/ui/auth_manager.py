"""An auth manager for the tests: Airflow's simple one, except that nobody may read DENIED_DAG."""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

DENIED_DAG = "payroll"


class DenyOneDagAuthManager(SimpleAuthManager):
    """The simple auth manager grants a role on every DAG; this one refuses DENIED_DAG to all."""

    def is_authorized_dag(
        self, *, method: Any, user: Any, access_entity: Any = None, details: Any = None
    ) -> bool:
        if details is not None and getattr(details, "id", None) == DENIED_DAG:
            return False
        return bool(
            super().is_authorized_dag(method=method, user=user, access_entity=access_entity, details=details)
        )
