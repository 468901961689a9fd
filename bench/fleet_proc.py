"""Run a lab fleet (FakeNOS on loopback) in its own process, for benchmarks.

    python bench/fleet_proc.py --platform cisco_ios --count 20

Prints one JSON line with the devices' connection arguments once every port listens, then
serves until SIGTERM/SIGINT or until stdin closes (the benchmark died).

Why a separate process: FakeNOS's SSH servers are Python threads. In the benchmark process
they would share the GIL with the netmiko client measured as the baseline ("direct netmiko")
and slow it down, which would flatter NetPulse's ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import sys
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from netpulse.lab.fleet import LabFleet  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--platform", default="cisco_ios")
    parser.add_argument("--count", type=int, default=20)
    args = parser.parse_args()

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    fleet = LabFleet.many(platform=args.platform, count=args.count)
    devices = fleet.start()
    try:
        print(json.dumps([{"name": d.name, **d.connection_args()} for d in devices]), flush=True)
        while not stop.is_set():
            ready, _, _ = select.select([sys.stdin], [], [], 0.5)
            if ready and not os.read(sys.stdin.fileno(), 1024):
                break
    finally:
        fleet.stop()


if __name__ == "__main__":
    main()
