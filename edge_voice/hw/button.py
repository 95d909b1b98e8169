"""The talk button: a short press = push-to-talk / barge-in, a long hold = mute toggle.

A press is reported when the button is released before ``gpio.hold_ms`` (so a hold never also counts as a
press); a hold is reported while the button is still down, the moment ``hold_ms`` is reached. The button
pulls up and is pressed when the pin reads low (a switch to ground, as on the ReSpeaker 2-mic HAT).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from edge_voice.core.config import GpioConfig

log = logging.getLogger(__name__)

BOUNCE_S = 0.02  # contact bounce of a typical tactile switch


class TalkButton:
    """``on_press`` / ``on_hold`` run on gpiozero's threads (pin events, hold timer): hand them to the
    orchestrator thread-safely (e.g. ``loop.call_soon_threadsafe``). ``cfg.button_pin`` must be >= 0."""

    def __init__(
        self,
        cfg: GpioConfig,
        factory: Any,
        on_press: Callable[[], None],
        on_hold: Callable[[], None],
    ) -> None:
        if cfg.button_pin < 0:
            raise ValueError("gpio.button_pin is not set (-1 = no button)")
        from gpiozero import Button

        self._on_press = on_press
        self._on_hold = on_hold
        self._lock = threading.Lock()
        self._down = False
        self._held = False
        self._button = Button(
            cfg.button_pin,
            pull_up=True,
            bounce_time=BOUNCE_S,
            hold_time=cfg.hold_ms / 1000,
            pin_factory=factory,
        )
        self._button.when_pressed = self._pressed
        self._button.when_held = self._hold_reached
        self._button.when_released = self._released
        log.info("gpio: talk button on pin %d (hold %d ms = mute)", cfg.button_pin, cfg.hold_ms)

    @property
    def is_pressed(self) -> bool:
        return bool(self._button.is_pressed)

    def _pressed(self) -> None:
        with self._lock:
            self._down = True
            self._held = False

    def _hold_reached(self) -> None:
        with self._lock:
            if not self._down or self._held:  # released meanwhile, or already reported
                return
            self._held = True
        self._on_hold()

    def _released(self) -> None:
        with self._lock:
            fire = self._down and not self._held
            self._down = False
        if fire:
            self._on_press()

    def close(self) -> None:
        self._button.close()
