"""/metrics: Prometheus text that prometheus-client parses, moving with the farm."""

import json

import httpx
from prometheus_client.parser import text_string_to_metric_families

from rayfarm.sdk import RayfarmAPI


def samples(farm) -> dict:
    text = httpx.get(f"{farm.url}/metrics", timeout=10).text
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_parse_and_move(farm):
    user = farm.create_user("metrics", "--allow-commands")
    api = RayfarmAPI(user.access_id, user.access_key, domain=farm.domain)
    before = samples(farm)
    task_id = api.task.task_id
    api.task.upload_task_json(task_id, json.dumps({
        "software_config": {"cg_name": "command"}, "task_info": {"frames_per_task": "2"},
        "scene_info_render": {"common": {"frames": "1-10"}}, "additional_info": {"command": ["true"]}}))
    api.task.submit_task(task_id)
    after = samples(farm)
    route = ("route", "/api/render/submit/task")
    submits = [v for (name, labels), v in after.items() if name == "rayfarm_api_requests_total" and route in labels]
    assert submits == [1.0]
    assert after[("rayfarm_chunks", (("status", "1"),))] == 5  # 10 frames in chunks of 2, all waiting
    assert after[("rayfarm_tasks", (("status", "0"),))] == 1
    assert ("rayfarm_chunks", (("status", "1"),)) not in before
    latency = [k for k in after if k[0] == "rayfarm_api_latency_seconds_count" and ("route", route[1]) in k[1]]
    assert latency and after[latency[0]] >= 1
