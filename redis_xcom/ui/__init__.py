"""The Airflow UI plugin: a page and a JSON API showing the values behind redis-xcom references.

plugin          the AirflowPlugin Airflow loads in every process: cheap to import, builds nothing
app             the FastAPI app the api-server mounts under /redis-xcom (routes, access checks)
auth            who is asking (bearer token or the UI's _token cookie), through the auth manager
values          an XCom row -> what Redis holds for it (size, TTL, rendered value or why not)
sandbox         the worker processes that decode and render values, with hard limits (API server side)
sandbox_worker  one such worker: its limits, and its loop over requests
protocol        the plain-bytes frames between the two (never pickle)
render          stored bytes -> a preview or JSON text, or why not (runs in a worker)
preview         a decoded value -> a bounded, readable preview (JSON, table, array, hex)
export          a decoded value -> JSON text for download, bounded
"""
