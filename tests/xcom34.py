"""A test double for driving Airflow 3.4's store_value on an Airflow without it (3.0 to 3.3).

ExclusiveRedisXCom.store_value hands a value kept inline to BaseXCom's own store_value, which only
3.4 has. The default below sits after BaseXCom in the double's method order: on 3.4, BaseXCom's own
answers; before, this one, storing the value in the row as 3.4's default does.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.bases.xcom import BaseXCom

from redis_xcom import ExclusiveRedisXCom


class _DefaultStoreValue:
    @classmethod
    def store_value(cls, coordinate: Any, key: str, value: Any) -> Any:
        return BaseXCom.serialize_value(value)


class XCom34(ExclusiveRedisXCom, _DefaultStoreValue):
    """ExclusiveRedisXCom as Airflow 3.4 drives it, on any Airflow 3."""
