"""/metrics: Prometheus text that prometheus-client parses, moving with the farm."""

from rayfarm.sdk import RayfarmAPI
from tests.support import taskjson
from tests.support.tasks import submit


def test_metrics_parse_and_move(farm):
    user = farm.create_user("metrics", "--allow-commands")
    api = RayfarmAPI(user.access_id, user.access_key, domain=farm.domain)
    before = farm.metrics()
    submit(api, taskjson.command(["true"], "1-10", per_chunk=2))
    after = farm.metrics()
    route = ("route", "/api/render/submit/task")
    submits = [v for (name, labels), v in after.items() if name == "rayfarm_api_requests_total" and route in labels]
    assert submits == [1.0]
    assert after[("rayfarm_chunks", (("status", "1"),))] == 5  # 10 frames in chunks of 2, all waiting
    assert after[("rayfarm_tasks", (("status", "0"),))] == 1
    assert ("rayfarm_chunks", (("status", "1"),)) not in before
    latency = [k for k in after if k[0] == "rayfarm_api_latency_seconds_count" and ("route", route[1]) in k[1]]
    assert latency and after[latency[0]] >= 1
