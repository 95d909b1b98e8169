"""Pin factories and board profiles.

Every LED and button is a gpiozero device built on an injected pin factory (gpiozero's ``Pin``
interface is the small interface the rest of ``hw`` relies on):

* ``mock``  — ``MockFactory(pin_class=MockPWMPin)`` (tests, desktops);
* ``auto``  — a Jetson adapter on NVIDIA Jetson boards, else gpiozero's default (lgpio first);
* ``lgpio`` / ``rpigpio`` / ``pigpio`` — that gpiozero factory;
* ``jetson`` — ``make_jetson_factory()``: gpiozero's ``Pin`` over Jetson.GPIO (gpiozero itself refuses
  Jetson boards). Pins are numbered like a Raspberry Pi (BCM), which Jetson.GPIO maps onto the same
  physical pins of the 40-pin header.

Board profiles (``edge_voice/data/boards/<name>.toml``, package data) hold config tables (``[gpio]``,
``[audio]``) plus a ``[profile]`` table of notes; ``merge_board_profile`` puts a profile under a config
table.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge_voice.core.config import GpioConfig

log = logging.getLogger(__name__)

FACTORY_NAMES = ("auto", "mock", "lgpio", "rpigpio", "pigpio", "jetson")
_JETSON_COMPATIBLE = Path("/proc/device-tree/compatible")
_MODEL = Path("/proc/device-tree/model")
# the board's model string -> its profile (edge_voice/data/boards); Pi 400 and CM4 are Pi 4 inside
_BOARD_PROFILES = (
    ("Raspberry Pi 5", "pi5"),
    ("Raspberry Pi Compute Module 5", "pi5"),
    ("Raspberry Pi 4", "pi4"),
    ("Raspberry Pi 400", "pi4"),
    ("Raspberry Pi Compute Module 4", "pi4"),
    ("Orin Nano", "jetson-orin-nano"),
)
PI_GPIO_FIX = (
    "install lgpio into the venv: `make setup` does it on a Raspberry Pi, or "
    "`.venv/bin/pip install -r requirements/gpio-pi.txt`; the user needs the 'gpio' group (/dev/gpiochip*)"
)
JETSON_GPIO_FIX = (
    "install Jetson.GPIO into the venv (`.venv/bin/pip install Jetson.GPIO`) and add the user to the 'gpio' "
    "group (its udev rules)"
)
NO_GPIO_FIX = 'this machine has no GPIO header: set gpio.enabled = false (or gpio.pin_factory = "mock")'


class GpioError(RuntimeError):
    """A pin factory or board profile cannot be used. The message says which and why."""


def is_jetson(compatible: Path | None = None) -> bool:
    try:
        return b"nvidia,tegra" in (compatible or _JETSON_COMPATIBLE).read_bytes()
    except OSError:
        return False


def board_model(model: Path | None = None) -> str:
    """The device tree's model string ("Raspberry Pi 4 Model B Rev 1.2"); "" off an ARM board."""
    try:
        return (model or _MODEL).read_bytes().rstrip(b"\0").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def detect_board(model: str) -> str:
    """The packaged profile for a board model string ("" when none fits)."""
    return next((profile for prefix, profile in _BOARD_PROFILES if prefix in model), "")


def gpio_fix(model: str) -> str:
    """What to install (or set) for GPIO on this board."""
    if "Raspberry Pi" in model:
        return PI_GPIO_FIX
    if "NVIDIA" in model or "Jetson" in model or "Orin" in model:
        return JETSON_GPIO_FIX
    return NO_GPIO_FIX


def gpio_pins(g: GpioConfig) -> list[tuple[str, int]]:
    """(role, BCM number) of every configured pin."""
    pins = [("led", p) for p in g.led_pins]
    pins += [("button", g.button_pin)] if g.button_pin >= 0 else []
    return pins + ([("mute switch", g.mute_switch_pin)] if g.mute_switch_pin >= 0 else [])


def check_gpio(pin_factory: str, pins: list[tuple[str, int]]) -> list[tuple[str, bool, str]]:
    """(what, ok, message) for the factory and each (role, BCM number) pin, claimed and released again.
    The daemon runs this before any model loads and ``doctor`` prints it."""
    try:
        factory = make_pin_factory(pin_factory)
    except GpioError as exc:
        return [("gpio factory", False, str(exc))]
    out = [("gpio factory", True, f"{pin_factory}: {describe_factory(factory)}")]
    try:
        for role, number in pins:
            try:
                pin = factory.pin(number)
                out.append((f"gpio {role} pin", True, f"GPIO{number}: {pin!r} usable"))
                pin.close()
            except Exception as exc:  # PinInvalidPin, a pin another process holds, permissions
                out.append((f"gpio {role} pin", False, f"GPIO{number}: {exc}"))
    finally:
        factory.close()
    return out


def make_pin_factory(name: str) -> Any:
    """A gpiozero pin factory by config name (``gpio.pin_factory``). Raises ``GpioError``."""
    if name not in FACTORY_NAMES:
        raise GpioError(f"gpio.pin_factory: unknown factory {name!r}; one of {', '.join(FACTORY_NAMES)}")
    try:
        if name == "mock":
            from gpiozero.pins.mock import MockFactory, MockPWMPin

            return MockFactory(pin_class=MockPWMPin)
        if name == "jetson" or (name == "auto" and is_jetson()):
            return make_jetson_factory()
        from gpiozero import Device

        if name == "auto":
            # gpiozero warns once per backend it falls back from: collect those as the reason instead
            with warnings.catch_warnings(record=True) as tried:
                warnings.simplefilter("always")
                try:
                    return Device._default_pin_factory()
                except Exception as exc:
                    reasons = "; ".join(str(w.message) for w in tried)
                    raise GpioError(
                        f"gpio.pin_factory 'auto': no usable GPIO library ({reasons}): {exc}; "
                        f"fix: {gpio_fix(board_model())}"
                    ) from exc
        from importlib.metadata import entry_points

        (entry,) = (ep for ep in entry_points(group="gpiozero_pin_factories") if ep.name == name)
        return entry.load()()
    except GpioError:
        raise
    except Exception as exc:  # every backend fails differently (ImportError, OSError, BadPinFactory)
        fix = gpio_fix(board_model())
        if name == "lgpio" and isinstance(exc, ImportError):
            fix = PI_GPIO_FIX
        raise GpioError(f"gpio.pin_factory {name!r} is not usable here: {exc}; fix: {fix}") from exc


# ------------------------------------------------------------------------------------ Jetson adapter


def _import_jetson_gpio() -> Any:
    import Jetson.GPIO as GPIO

    return GPIO


def _jetson_classes() -> tuple[type[Any], type[Any]]:
    """Build the gpiozero Factory/Pin subclasses lazily, so importing this module never imports gpiozero."""
    from gpiozero.exc import PinInvalidFunction, PinPWMUnsupported, PinSetInput
    from gpiozero.pins.pi import PiBoardInfo, PiFactory, PiPin

    class _JetsonPin(PiPin):  # type: ignore[misc]
        """One header pin through Jetson.GPIO (BCM numbering). PWM only on hardware-PWM pins."""

        def __init__(self, factory: Any, info: Any) -> None:
            super().__init__(factory, info)
            self._gpio = factory.gpio
            self._function = "input"
            self._pull = "floating"
            self._state = 0.0
            self._pwm: Any = None
            self._frequency: float | None = None
            self._bounce: float | None = None
            self._edges = "both"
            self._gpio.setup(self._number, self._gpio.IN)

        def close(self) -> None:
            self.when_changed = None
            self.frequency = None
            self._gpio.cleanup(self._number)

        def _get_function(self) -> str:
            return self._function

        def _set_function(self, value: str) -> None:
            if value not in ("input", "output"):
                raise PinInvalidFunction(f"{self!r}: function must be input or output")
            if value == "input":
                self.frequency = None
                self._gpio.setup(self._number, self._gpio.IN)
            else:
                self._gpio.setup(self._number, self._gpio.OUT, initial=self._gpio.LOW)
                self._state = 0.0
            self._function = value

        def _get_state(self) -> float:
            if self._function == "input":
                return float(self._gpio.input(self._number))
            return self._state

        def _set_state(self, value: float) -> None:
            if self._function == "input":
                raise PinSetInput(f"cannot set the state of input pin {self!r}")
            if self._pwm is not None:
                self._pwm.ChangeDutyCycle(float(value) * 100.0)
            else:
                self._gpio.output(self._number, self._gpio.HIGH if value else self._gpio.LOW)
            self._state = float(value)

        def _get_pull(self) -> str:
            return self._pull

        def _set_pull(self, value: str) -> None:
            # Jetson.GPIO ignores pull-ups: the button needs an external pull resistor. Record the wish
            # so gpiozero's active-low logic for a pulled-up button still applies.
            if value != "floating" and self._pull == "floating":
                log.info("gpio: %r: Jetson has no software pull-%s; fit an external resistor", self, value)
            self._pull = value

        def _get_frequency(self) -> float | None:
            return self._frequency

        def _set_frequency(self, value: float | None) -> None:
            if value is None:
                if self._pwm is not None:
                    self._pwm.stop()
                    self._pwm = None
                self._frequency = None
                return
            if self._function != "output":
                raise PinPWMUnsupported(f"{self!r}: PWM needs an output pin")
            if self._pwm is None:
                try:
                    self._pwm = self._gpio.PWM(self._number, value)
                except ValueError as exc:  # "Channel N is not a PWM"
                    raise PinPWMUnsupported(f"{self!r} has no hardware PWM on this Jetson: {exc}") from exc
                self._pwm.start(self._state * 100.0)
            else:
                self._pwm.ChangeFrequency(value)
            self._frequency = value

        def _get_bounce(self) -> float | None:
            return self._bounce

        def _set_bounce(self, value: float | None) -> None:
            self._bounce = None if value is None else float(value)

        def _get_edges(self) -> str:
            return self._edges

        def _set_edges(self, value: str) -> None:
            self._edges = value

        def _enable_event_detect(self) -> None:
            edge = {"both": self._gpio.BOTH, "rising": self._gpio.RISING, "falling": self._gpio.FALLING}
            kwargs: dict[str, Any] = {"callback": self._on_edge}
            if self._bounce:
                kwargs["bouncetime"] = max(1, round(self._bounce * 1000))
            self._gpio.add_event_detect(self._number, edge[self._edges], **kwargs)

        def _disable_event_detect(self) -> None:
            self._gpio.remove_event_detect(self._number)

        def _on_edge(self, _channel: int) -> None:  # Jetson.GPIO's event thread
            self._call_when_changed(self._factory.ticks(), self._gpio.input(self._number))

    class _JetsonFactory(PiFactory):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.gpio = _import_jetson_gpio()
            self.gpio.setwarnings(False)
            self.gpio.setmode(self.gpio.BCM)
            self.pin_class = _JetsonPin

        def _get_revision(self) -> int:
            return 0xC03111  # a Pi 4 header: same 40-pin layout that Jetson.GPIO's BCM mode emulates

        def _get_board_info(self) -> Any:
            info: Any = getattr(self, "_info", None)
            if info is None:
                pi = PiBoardInfo.from_revision(self._get_revision())
                model = getattr(self.gpio, "model", "Jetson")
                info = pi._replace(model=str(model), manufacturer="NVIDIA", soc="Tegra", board="")
                self._info = info
            return info

        def close(self) -> None:
            super().close()
            self.gpio.cleanup()

        @staticmethod
        def ticks() -> float:
            return time.monotonic()

        @staticmethod
        def ticks_diff(later: float, earlier: float) -> float:
            return later - earlier

    return _JetsonFactory, _JetsonPin


def make_jetson_factory() -> Any:
    """A gpiozero pin factory over Jetson.GPIO (imported now; needs the ``gpio`` group's udev rules)."""
    factory_cls, _ = _jetson_classes()
    return factory_cls()


def describe_factory(factory: Any) -> str:
    name = type(factory).__name__
    try:
        model = factory.board_info.model
    except Exception as exc:  # a factory without board info still works for pins
        model = f"board unknown ({exc})"
    return f"{name} on {model}"
