"""A Faust agent that only takes events from the power topic and counts them: the
ceiling sitepulse's one-reading-per-message path sits under, measured by ``bench``
beside it. Same Faust settings as the worker (batches, group timeouts, raw serializers)
and the same garbage-collector thresholds; every half second it writes what it has
taken to ``$SITEPULSE_STATE_DIR/bare.json``.

Run by the benchmark as ``python -m sitepulse.bare_faust``.
"""

from __future__ import annotations

import json
import time

import faust

from .agents.app import new_faust_app, tune_garbage_collector
from .runtime.settings import Settings
from .streams.contract import POWER_TOPIC


def build_bare_app(settings: Settings) -> faust.App:
    app = new_faust_app(settings, f"{settings.app_id}-bare", settings.state_dir / "faust-bare")
    topic = app.topic(POWER_TOPIC, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    taken = {"events": 0, "first_s": None, "last_s": None}
    status = settings.state_dir / "bare.json"

    @app.agent(topic, name="bare")
    async def take(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.batch_messages, within=settings.batch_within_s):
            now = time.time()
            if taken["first_s"] is None:
                taken["first_s"] = now
            taken["events"] += len(events)
            taken["last_s"] = now

    @app.timer(interval=0.5)
    async def write_status() -> None:
        status.write_text(json.dumps(taken))

    return app


def main() -> None:
    settings = Settings()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    tune_garbage_collector()  # as the worker's: the baseline is Faust itself, on the same terms
    faust.Worker(build_bare_app(settings), loglevel="warning", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
