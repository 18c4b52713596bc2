"""Ray Serve for the peers benchmark (bench/peers/ray.ts starts it with the venv's python).

A local Ray cluster (this process is its driver: GCS, raylet and the workers are its
descendants) and one Serve application: a no-op deployment that answers a Switchyard inference
request's JSON body with its input, like Switchyard's shipped `noop` model. One replica,
max_ongoing_requests raised, access log off, the HTTP proxy on 127.0.0.1:<port>.

Prints one line `READY {json}` when the application answers, then runs until stdin closes
(the benchmark closes it, or dies) or SIGTERM, and shuts Serve and Ray down.
"""

import argparse
import json
import platform
import signal
import sys
import threading

import ray
from ray import serve
from starlette.requests import Request
from starlette.responses import Response

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--temp-dir", required=True)
parser.add_argument("--max-ongoing-requests", type=int, default=64)
args = parser.parse_args()

QUIET = {"enable_access_log": False, "log_level": "WARNING"}


@serve.deployment(num_replicas=1, max_ongoing_requests=args.max_ongoing_requests, logging_config=QUIET)
class Noop:
    async def __call__(self, request: Request) -> Response:
        body = await request.json()
        return Response(json.dumps({"output": body.get("input")}), media_type="application/json")


ray.init(include_dashboard=False, logging_level="warning", _temp_dir=args.temp_dir)
serve.start(http_options={"host": "127.0.0.1", "port": args.port}, logging_config=QUIET)
serve.run(Noop.bind(), route_prefix="/", logging_config=QUIET)

print(
    "READY "
    + json.dumps(
        {
            "ray": ray.__version__,
            "python": platform.python_version(),
            "cpus": ray.cluster_resources().get("CPU"),
            "url": f"http://127.0.0.1:{args.port}/",
        }
    ),
    flush=True,
)

done = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: done.set())
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
while not done.wait(1):
    pass
serve.shutdown()
ray.shutdown()
