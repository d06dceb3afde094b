"""The UI plugin end to end: a real `airflow api-server` (temp AIRFLOW_HOME, SQLite) whose DAG run's
XComs live in a suite-started redis-server, the JSON API checked, and the page opened in Debian's
headless chromium, by URL and as the task instance's tab in Airflow's own UI.

Runs in `make test` only (not in the version matrix: CI time); scripts/ensure-chromium.sh installs
chromium and chromedriver.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from airflow.plugins_manager import AirflowPlugin

from tests.redis_process import RedisServer
from tests.ui.auth_manager import DENIED_DAG
from tests.ui.server import api_server

pytestmark = pytest.mark.browser

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
DAG_ID = "ui_values"
TTL = 3600
USER = "reader"


@dataclass
class Served:
    api_url: str
    run_id: str
    token: str
    output: Path

    def api(self, task: str, **params: Any) -> requests.Response:
        return requests.get(
            f"{self.api_url}/redis-xcom/api/dags/{DAG_ID}/runs/{self.run_id}/tasks/{task}",
            params=params,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )


@pytest.fixture(scope="module")
def served(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("ui-airflow-home")
    prefix = f"ui-{uuid.uuid4().hex[:8]}"
    with api_server(home, redis_server.url, prefix, TTL, [f"{DAG_ID}.py"], {USER: "viewer"}) as server:
        output = tmp_path_factory.mktemp("ui-screenshots")
        yield Served(server.url, server.run_ids[DAG_ID], server.tokens[USER], output)


def test_json_api_shows_the_values_with_access_checked(served: Served) -> None:
    weather = served.api("weather", map_index="{MAP_INDEX}")
    assert weather.status_code == 200, weather.text
    (frame,) = weather.json()["xcoms"]
    assert frame["key"] == "return_value" and frame["state"] == "value"
    assert frame["reference"].startswith("redis-xcom://ui-")
    assert frame["type"] == "pandas.DataFrame" and frame["size_bytes"] > 0
    assert 0 < frame["ttl_seconds"] <= TTL
    assert frame["preview"]["shape"] == [4, 2]
    assert [row[0] for row in frame["preview"]["rows"]] == ["Lisbon", "Oslo", "Nairobi", "Lima"]

    summary = {x["key"]: x for x in served.api("summary").json()["xcoms"]}
    assert set(summary) == {"report", "when", "total", "return_value"}
    assert summary["total"]["preview"]["text"] == "Decimal('63.75')"
    assert "2024, 1, 2, 3, 4, 5" in summary["when"]["preview"]["text"]
    total = requests.get(
        f"{served.api_url}/redis-xcom/api/dags/{DAG_ID}/runs/{served.run_id}/tasks/summary/value",
        params={"key": "total"},
        headers={"Authorization": f"Bearer {served.token}"},
        timeout=30,
    )
    assert total.status_code == 200 and total.json() == "63.75"

    anonymous = requests.get(weather.url, timeout=30)
    assert anonymous.status_code == 401
    denied = requests.get(
        f"{served.api_url}/redis-xcom/api/dags/{DENIED_DAG}/runs/{served.run_id}/tasks/weather",
        headers={"Authorization": f"Bearer {served.token}"},
        timeout=30,
    )
    assert denied.status_code == 403


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the test extra")
    assert Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(), (
        "chromium and chromedriver are missing: run scripts/ensure-chromium.sh (as root)"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _logged_in(browser: Any, served: Served) -> None:
    """The browser holds the user's token as Airflow's login leaves it: the _token cookie."""
    browser.get(served.api_url + "/api/v2/monitor/health")
    browser.add_cookie({"name": "_token", "value": served.token, "path": "/"})


def test_page_shows_the_values_and_a_dataframes_rows_in_chromium(browser: Any, served: Served) -> None:
    from selenium.webdriver.common.by import By

    _logged_in(browser, served)
    base = f"{served.api_url}/redis-xcom/dags/{DAG_ID}/runs/{served.run_id}/tasks"
    browser.get(f"{base}/weather?map_index=-1")
    cells = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "table.rows td")]
    browser.save_screenshot(str(served.output / "ui-weather.png"))
    assert cells == ["Lisbon", "21.5", "Oslo", "-3.0", "Nairobi", "24.25", "Lima", "18.0"]
    assert "shape 4 \u00d7 2" in browser.find_element(By.TAG_NAME, "body").text

    browser.get(f"{base}/summary")
    text = browser.find_element(By.TAG_NAME, "body").text
    browser.save_screenshot(str(served.output / "ui-summary.png"))
    assert "Decimal('63.75')" in text
    assert "<script>alert('xss')</script>" in text  # shown as text, never run
    assert browser.find_elements(By.CSS_SELECTOR, "section.xcom script") == []
    print(f"screenshots in {served.output}")


def test_page_by_url_takes_the_token_airflow_3_0s_ui_keeps_in_local_storage(
    browser: Any, served: Served
) -> None:
    """Airflow 3.0's UI moves the login token from the _token cookie to localStorage: the page's 401
    answer hands it over (as a cookie scoped to /redis-xcom) once, and the values show."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(served.api_url + "/api/v2/monitor/health")
    browser.delete_all_cookies()
    browser.execute_script(
        "sessionStorage.clear(); localStorage.setItem('token', arguments[0]);", served.token
    )
    try:
        browser.get(f"{served.api_url}/redis-xcom/dags/{DAG_ID}/runs/{served.run_id}/tasks/weather")
        WebDriverWait(browser, 30).until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "table.rows td"))
        )
        assert browser.find_element(By.CSS_SELECTOR, "table.rows td").text == "Lisbon"
        assert browser.get_cookie("_token")["path"] == "/redis-xcom"
    finally:
        browser.execute_script("localStorage.clear(); sessionStorage.clear();")
        browser.delete_all_cookies()


def test_task_instance_tab_of_airflows_ui_shows_the_values(browser: Any, served: Served) -> None:
    """Airflow 3.1+ shows the page as a tab of the task instance (external_views), in an iframe that
    sends only the _token cookie; the UI leaves {MAP_INDEX} unfilled for a task that is not mapped."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    if not hasattr(AirflowPlugin, "external_views"):
        pytest.skip("Airflow 3.0 has no external_views: there the page is opened by URL (tested above)")
    _logged_in(browser, served)
    # The UI's own route of the tab: the task instance's path + plugin/<url_route>.
    browser.get(f"{served.api_url}/dags/{DAG_ID}/runs/{served.run_id}/tasks/weather/plugin/redis-xcom-values")
    WebDriverWait(browser, 60).until(
        expected_conditions.frame_to_be_available_and_switch_to_it((By.CSS_SELECTOR, "iframe"))
    )
    WebDriverWait(browser, 60).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "table.rows td"))
    )
    cells = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "table.rows td")]
    browser.switch_to.default_content()
    browser.save_screenshot(str(served.output / "ui-tab.png"))
    assert cells[:2] == ["Lisbon", "21.5"]
