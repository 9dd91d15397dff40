"""One signing session in its own process, killed (SIGKILL) at a chosen point.

Run by tests/integrity/test_crash.py only: ``python -m tests.integrity.crash_child SPEC``
where SPEC is JSON (the world's paths, the request, ``point``: a session checkpoint name, or
``delay``: seconds after start-up at which a timer kills the process). The HSM user PIN comes
in the environment (``CRASH_HSM_PIN``). The kill hook is this test program's: production
code only calls the session's no-op checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

from tests.domain.cards import SoftCard
from tests.integrity.conftest import World


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main(spec_text: str) -> int:
    spec = json.loads(spec_text)
    world = World(
        Path(spec["root"]), spec["module_path"], spec["token_label"],
        os.environ["CRASH_HSM_PIN"], spec["descriptor"], spec["pay_to"],
        [SoftCard(f"ADM-{i}", "ed25519", b"admin") for i in range(3)],
        [SoftCard(f"APR-{i}", "ed25519", b"approver") for i in range(3)],
    )
    point, delay = spec.get("point"), spec.get("delay")
    with world.appliance() as app:
        app.start()
        assert app.session is not None
        if point:
            app.session.checkpoint = lambda name: _die() if name == point else None
        if delay is not None:
            threading.Timer(float(delay), _die).start()
        result = app.handle(world.request(int(spec["amount"]), int(spec["seed"])))
        app.show(result.frames)
    if point == "shown":
        _die()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
