"""Run by ``bench home`` with Home Assistant's own venv (hassil 1.6.1, home-assistant-intents 2024.3.12:
what HA 2024.3.3 uses; not the daemon's dependencies): HA's English sentence templates matched against
each text, timed. Reads ``{"devices": [[name, entity_id], …], "areas": […], "texts": […]}`` on stdin,
writes one JSON list of ``{"text", "ms", "intent", "slots"}``."""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def main() -> None:
    from hassil import Intents, recognize
    from hassil.intents import TextSlotList
    from home_assistant_intents import get_intents

    req = json.load(sys.stdin)
    intents = Intents.from_dict(get_intents("en"))
    slot_lists = {  # as HA's default agent builds them: entity names (value = entity id) and areas
        "name": TextSlotList.from_tuples(
            [(name, entity, {"domain": entity.split(".")[0]}) for name, entity in req["devices"]]
        ),
        "area": TextSlotList.from_strings(req["areas"]),
        "floor": TextSlotList.from_strings([]),
    }
    for _ in range(5):  # warm (the templates' regex caches)
        recognize("turn on the kitchen light", intents, slot_lists=slot_lists)
    out: list[dict[str, Any]] = []
    for text in req["texts"]:
        t0 = time.perf_counter()
        r = recognize(text, intents, slot_lists=slot_lists)
        ms = (time.perf_counter() - t0) * 1000
        slots = {k: str(v.value) for k, v in r.entities.items()} if r is not None else {}
        out.append(
            {"text": text, "ms": ms, "intent": r.intent.name if r is not None else None, "slots": slots}
        )
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
