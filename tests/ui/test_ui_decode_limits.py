"""The UI's cost is bounded by what a value decodes to, not by what it takes in Redis, and one value
that cannot be shown never takes the page (or the other values) down with it."""

from __future__ import annotations

from typing import Any

from tests.ui.conftest import UI

MiB = 1 << 20


def test_a_small_compressed_value_is_judged_by_its_decompressed_size(ui: UI) -> None:
    ui.configure(compression="zlib", compression_threshold="0", ui_max_decode_bytes=str(MiB))
    ui.push("compressed", "x" * (8 * MiB))
    ui.push("small", {"rows": 3})
    shown = ui.xcoms()
    assert shown["compressed"]["state"] == "not_decoded" and shown["compressed"]["preview"] is None
    assert shown["compressed"]["size_bytes"] < MiB, "it is small in Redis"
    assert "8388" in shown["compressed"]["message"] and "once decompressed" in shown["compressed"]["message"]
    assert shown["small"]["state"] == "value"
    # The download is refused the same way; asked for explicitly it is given.
    url = ui.url() + "/value"
    refused = ui.client.get(url, params={"key": "compressed"}, headers=ui.auth())
    assert refused.status_code != 200 and "once decompressed" in refused.text
    forced = ui.client.get(url, params={"key": "compressed", "decode": "force"}, headers=ui.auth())
    assert forced.status_code == 200 and len(forced.content) > 8 * MiB


def test_forcing_is_still_bounded_by_max_value_bytes(ui: UI) -> None:
    ui.configure(compression="zlib", compression_threshold="0", ui_max_decode_bytes=str(MiB))
    ui.push("big", "y" * (4 * MiB))
    ui.configure(ui_max_decode_bytes=str(MiB), max_value_bytes=str(2 * MiB))
    forced = ui.xcoms(decode="force")["big"]
    assert forced["state"] == "too_costly" and "max_value_bytes" in forced["message"]
    assert forced["recorded_bytes"] == 4 * MiB + 5 and forced["size_bytes"] < MiB


def test_a_value_that_cannot_be_previewed_fails_alone(ui: UI) -> None:
    deep: Any = []
    for _ in range(450):  # stored (msgpack allows about 500 levels), deeper than previews walk
        deep = [deep]
    ui.push("huge_int", 10**5000)
    ui.push("deep", deep)
    ui.push("fine", [1, 2, 3])
    shown = ui.xcoms()
    assert shown["fine"]["state"] == "value"
    # Python refuses to write an int of over 4300 digits as text: that row says so, and only it.
    assert shown["huge_int"]["state"] == "error", shown["huge_int"]
    message = shown["huge_int"]["message"]
    assert "key='huge_int'" in message and "cannot be previewed" in message
    assert shown["deep"]["state"] in ("value", "error"), shown["deep"]
    assert "huge_int" in ui.page()
    url = ui.url() + "/value"
    for key in ("huge_int", "deep"):
        answer = ui.client.get(url, params={"key": key}, headers=ui.auth())
        assert answer.status_code in (200, 406), (key, answer.status_code, answer.text[:300])
