"""The unmodified official SDK (rayvision_api) over https, trusting the studio CA through REQUESTS_CA_BUNDLE.

Run with the official SDK's own interpreter: python official_https.py. Environment: RAYFARM_DOMAIN
(host:port), RAYFARM_ACCESS_ID, RAYFARM_ACCESS_KEY, RAYFARM_TASK_JSON and RAYFARM_UPLOAD_JSON (a scene and
its texture already uploaded), REQUESTS_CA_BUNDLE. Creates, submits and waits for one task; prints one JSON
object: the task id, the statuses seen, its frames and output files.
"""

import json
import logging
import os
import time

from rayvision_api import RayvisionAPI

logger = logging.Logger("rayfarm-test-official-https")
logger.addHandler(logging.NullHandler())
api = RayvisionAPI(access_id=os.environ["RAYFARM_ACCESS_ID"], access_key=os.environ["RAYFARM_ACCESS_KEY"],
                   domain=os.environ["RAYFARM_DOMAIN"], platform="2", protocol="https", logger=logger)
task_id = api.task.task_id
api.transmit.upload_json_content(task_id, os.environ["RAYFARM_TASK_JSON"])
api.transmit.upload_json_content(task_id, os.environ["RAYFARM_UPLOAD_JSON"], file_name="upload.json")
api.task.submit_task(task_id)
statuses, deadline = [], time.monotonic() + 50
while time.monotonic() < deadline:
    status = api.query.task_info([task_id])["items"][0]["taskStatus"]
    if not statuses or statuses[-1] != status:
        statuses.append(status)
    if status in (25, 30, 35, 45):
        break
    time.sleep(0.5)
frames = api.query.task_frames(task_id, search_keyword=None)
print(json.dumps({"taskId": task_id, "statuses": statuses, "frames": frames,
                  "outputs": api.transmit.get_output_files(task_id=task_id)}, default=str))
