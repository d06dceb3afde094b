"""The Airflow UI plugin: a page and a JSON API showing the values behind redis-xcom references.

plugin     the AirflowPlugin Airflow loads in every process: cheap to import, builds nothing
app        the FastAPI app the api-server mounts under /redis-xcom (routes, access checks)
auth       who is asking (bearer token or the UI's _token cookie), through the auth manager
values     an XCom row -> what Redis holds for it (size, TTL, decoded value or why not)
preview    a decoded value -> a bounded, readable preview (JSON, table, array, hex)
"""
