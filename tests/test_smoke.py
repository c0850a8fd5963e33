def test_emit_then_query(api, headers):
    answer = api.post("/emit", json={"event": "user.created", "payload": {"n": 1}}, headers=headers)
    assert answer.status_code == 200, answer.text
    key = answer.json()["key"]
    page = api.post("/query", json={"eventName": "user.created"}, headers=headers).json()
    assert [row["key"] for row in page["rows"]] == [key]


def test_live_server_health(live_server):
    import httpx

    assert httpx.get(f"{live_server}/health").json() == {
        "status": "ok",
        "redis": "ok",
        "queues": [],
    }
