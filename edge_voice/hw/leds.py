"""Status LEDs: one light pattern per assistant state, on a single (PWM) LED or an RGB LED.

The pattern table is pure (``pattern_for``); ``StatusLeds`` drives gpiozero devices built on an injected
pin factory. ``show()`` returns at once: blinking and pulsing run on gpiozero's own background thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from edge_voice.core.config import GpioConfig
from edge_voice.core.vocabulary import State

log = logging.getLogger(__name__)

STATES = tuple(State)
Color = tuple[float, float, float]
OFF: Color = (0.0, 0.0, 0.0)
RED: Color = (1.0, 0.0, 0.0)
GREEN: Color = (0.0, 1.0, 0.0)
BLUE: Color = (0.0, 0.0, 1.0)
CYAN: Color = (0.0, 1.0, 1.0)
WHITE: Color = (1.0, 1.0, 1.0)


@dataclass(frozen=True, slots=True)
class Pattern:
    """``kind`` off | solid | pulse | blink; ``color`` for RGB (a single LED uses ``level``)."""

    kind: Literal["off", "solid", "pulse", "blink"]
    color: Color = WHITE
    level: float = 1.0  # single-LED brightness for ``solid``
    on_s: float = 0.0  # blink on time / pulse fade-in time
    off_s: float = 0.0  # blink off time / pulse fade-out time


_RGB = {
    "idle": Pattern("off"),
    "listening": Pattern("pulse", BLUE, on_s=0.6, off_s=0.6),
    "thinking": Pattern("blink", CYAN, on_s=0.15, off_s=0.15),
    "speaking": Pattern("solid", GREEN),
    "muted": Pattern("solid", RED),
    "error": Pattern("blink", RED, on_s=0.1, off_s=0.4),
}
_SINGLE = {
    "idle": Pattern("off"),
    "listening": Pattern("pulse", on_s=0.6, off_s=0.6),
    "thinking": Pattern("blink", on_s=0.15, off_s=0.15),
    "speaking": Pattern("solid"),
    "muted": Pattern("solid", level=0.08),  # a dim glow: one colour cannot be red
    "error": Pattern("blink", on_s=0.05, off_s=0.95),
}


def pattern_for(state: str, *, rgb: bool, pwm: bool) -> Pattern:
    """The light pattern for an assistant state. Without PWM, fades become blinks and dim becomes a blip."""
    table = _RGB if rgb else _SINGLE
    if state not in table:
        raise ValueError(f"unknown state {state!r}; one of {', '.join(STATES)}")
    p = table[state]
    if pwm:
        return p
    if p.kind == "pulse":
        return Pattern("blink", p.color, on_s=p.on_s, off_s=p.off_s)
    if p.kind == "solid" and not rgb and p.level < 1.0:
        return Pattern("blink", on_s=0.1, off_s=1.9)
    return p


class StatusLeds:
    """Shows the assistant state on ``cfg.led_pins``: none (no-op), one LED, or red/green/blue.

    Call ``show()`` from the orchestrator's thread; gpiozero animates in its own thread.
    """

    def __init__(self, cfg: GpioConfig, factory: Any) -> None:
        self._rgb = len(cfg.led_pins) == 3
        self._pwm = cfg.pwm
        self._state = ""
        self.pattern: Pattern | None = None
        self._device: Any = None
        if not cfg.led_pins:
            return
        from gpiozero import LED, PWMLED, RGBLED

        if self._rgb:
            red, green, blue = cfg.led_pins
            self._device = RGBLED(red, green, blue, pwm=cfg.pwm, pin_factory=factory)
        elif cfg.pwm:
            self._device = PWMLED(cfg.led_pins[0], pin_factory=factory)
        else:
            self._device = LED(cfg.led_pins[0], pin_factory=factory)
        log.info("gpio: status LED on pins %s (%s)", cfg.led_pins, "RGB" if self._rgb else "single")

    @property
    def state(self) -> str:
        return self._state

    def show(self, state: str) -> None:
        """Switch to the pattern of ``state``; the same state again keeps the running animation."""
        pattern = pattern_for(state, rgb=self._rgb, pwm=self._pwm)
        if state == self._state:
            return
        self._state = state
        self.pattern = pattern
        if self._device is not None:
            self._apply(pattern)

    def _apply(self, p: Pattern) -> None:
        dev = self._device
        if p.kind == "off":
            dev.off()
        elif p.kind == "solid":
            dev.value = p.color if self._rgb else p.level
        elif p.kind == "pulse":
            if self._rgb:
                dev.pulse(fade_in_time=p.on_s, fade_out_time=p.off_s, on_color=p.color)
            else:
                dev.pulse(fade_in_time=p.on_s, fade_out_time=p.off_s)
        elif self._rgb:
            dev.blink(on_time=p.on_s, off_time=p.off_s, on_color=p.color)
        else:
            dev.blink(on_time=p.on_s, off_time=p.off_s)

    def close(self) -> None:
        if self._device is not None:
            self._device.close()
            self._device = None
