"""The AIP-103 task and asset state store on Redis (Airflow 3.3+): ``RedisStateStoreBackend``.

Modules, one concern each: ``keys`` (scope <-> Redis key, references), ``record`` (a value's bytes
with its expiry), ``storage`` (every Redis call, on the XCom backend's per-process runtime),
``retention`` (Airflow's ``[state_store]`` options, expiry times), ``backend`` (the Airflow glue).
Nothing here is imported by ``import redis_xcom``: Airflow 3.0 to 3.2 have no state store.
"""
