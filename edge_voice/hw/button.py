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


class MuteSwitch:
    """A hardware mute switch (``gpio.mute_switch_pin``, closed to ground = muted). ``on_change(muted)``
    runs on gpiozero's thread at start-up (the switch's position) and on every change; hand it over
    thread-safely. A mute set by the switch is undone only by the switch (never over MQTT)."""

    def __init__(self, cfg: GpioConfig, factory: Any, on_change: Callable[[bool], None]) -> None:
        if cfg.mute_switch_pin < 0:
            raise ValueError("gpio.mute_switch_pin is not set (-1 = no switch)")
        from gpiozero import Button

        self._switch = Button(cfg.mute_switch_pin, pull_up=True, bounce_time=BOUNCE_S, pin_factory=factory)
        self._switch.when_pressed = lambda: on_change(True)
        self._switch.when_released = lambda: on_change(False)
        log.info("gpio: mute switch on pin %d", cfg.mute_switch_pin)
        if self._switch.is_pressed:
            on_change(True)  # muted at power-on: the mic never opens

    @property
    def muted(self) -> bool:
        return bool(self._switch.is_pressed)

    def close(self) -> None:
        self._switch.close()
