"""LEDs, button, pin factories and board profiles on gpiozero's MockFactory (and a fake Jetson.GPIO)."""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_voice.cli.doctor import run_doctor
from edge_voice.core import config
from edge_voice.core.boards import (
    BoardError,
    board_names,
    board_notes,
    load_board_profile,
    merge_board_profile,
)
from edge_voice.core.config import Config, GpioConfig
from edge_voice.core.vocabulary import State
from edge_voice.hw.button import TalkButton
from edge_voice.hw.leds import BLUE, CYAN, GREEN, RED, Pattern, StatusLeds, pattern_for
from edge_voice.hw.pins import GpioError, make_pin_factory
from tests.conftest import wait_until

STATES = tuple(State)


@pytest.fixture
def factory() -> Iterator[Any]:
    from gpiozero import Device

    f = make_pin_factory("mock")
    Device.pin_factory = f
    yield f
    f.reset()  # pins and reservations back to clean for the next test
    Device.pin_factory = None


def values(pin: Any) -> list[float]:
    return [float(s.state) for s in pin.states]


def transitions(pin: Any) -> int:
    return len(pin.states) - 1


# ----------------------------------------------------------------------------------------------- patterns


def test_every_state_has_a_pattern_for_every_led_kind() -> None:
    for state in STATES:
        for rgb in (False, True):
            for pwm in (False, True):
                p = pattern_for(state, rgb=rgb, pwm=pwm)
                if not pwm:
                    assert p.kind != "pulse"
    assert pattern_for("listening", rgb=True, pwm=True) == Pattern("pulse", BLUE, on_s=0.6, off_s=0.6)
    assert pattern_for("thinking", rgb=True, pwm=True).kind == "blink"
    assert pattern_for("speaking", rgb=True, pwm=True) == Pattern("solid", GREEN)
    assert pattern_for("muted", rgb=True, pwm=False) == Pattern("solid", RED)
    assert pattern_for("error", rgb=True, pwm=True).color == RED
    assert pattern_for("listening", rgb=False, pwm=False).kind == "blink"
    assert pattern_for("muted", rgb=False, pwm=False).kind == "blink"  # no dim glow without PWM
    with pytest.raises(ValueError, match="unknown state"):
        pattern_for("sleeping", rgb=False, pwm=True)


def test_mock_factory_has_pwm_pins(factory: Any) -> None:
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    assert isinstance(factory, MockFactory) and factory.pin_class is MockPWMPin
    with pytest.raises(GpioError, match="unknown factory"):
        make_pin_factory("wiringpi")


# ---------------------------------------------------------------------------------------------- LEDs


def test_single_pwm_led_follows_the_states(factory: Any) -> None:
    leds = StatusLeds(GpioConfig(enabled=True, led_pins=(12,)), factory)
    pin = factory.pin(12)
    try:
        leds.show("speaking")
        assert pin.state == 1.0
        leds.show("muted")
        assert 0.0 < pin.state < 0.2  # a dim glow
        leds.show("idle")
        assert pin.state == 0.0

        pin.clear_states()
        leds.show("listening")  # pulse: fades through intermediate brightness levels
        wait_until(lambda: len({v for v in values(pin) if 0.0 < v < 1.0}) >= 5, what="a pulse")
        leds.show("listening")  # the same state keeps the running animation
        assert leds.state == "listening"

        leds.show("thinking")  # blink: only full on / off
        pin.clear_states()
        wait_until(lambda: transitions(pin) >= 4, what="blinking")
        assert set(values(pin)) <= {0.0, 1.0}

        leds.show("error")
        pin.clear_states()
        wait_until(lambda: transitions(pin) >= 2, what="error blinking")
        assert set(values(pin)) <= {0.0, 1.0}
        leds.show("idle")
        assert pin.state == 0.0
    finally:
        leds.close()


def test_plain_led_without_pwm_blinks_instead_of_pulsing(factory: Any) -> None:
    leds = StatusLeds(GpioConfig(enabled=True, led_pins=(16,), pwm=False), factory)
    pin = factory.pin(16)
    try:
        leds.show("listening")
        pin.clear_states()
        wait_until(lambda: transitions(pin) >= 2, what="blinking")
        assert set(values(pin)) <= {0.0, 1.0}
        leds.show("speaking")
        assert pin.state == 1.0
    finally:
        leds.close()


def test_rgb_led_colours(factory: Any) -> None:
    leds = StatusLeds(GpioConfig(enabled=True, led_pins=(5, 6, 13)), factory)
    red, green, blue = (factory.pin(n) for n in (5, 6, 13))

    def rgb() -> tuple[float, float, float]:
        return (float(red.state), float(green.state), float(blue.state))

    try:
        leds.show("muted")
        assert rgb() == RED
        leds.show("speaking")
        assert rgb() == GREEN
        leds.show("idle")
        assert rgb() == (0.0, 0.0, 0.0)

        for p in (red, green, blue):
            p.clear_states()
        leds.show("listening")  # blue pulse, red and green stay dark
        wait_until(lambda: len({v for v in values(blue) if 0.0 < v < 1.0}) >= 5, what="a blue pulse")
        assert set(values(red)) == {0.0} and set(values(green)) == {0.0}

        leds.show("thinking")  # cyan blink: green and blue together
        for p in (red, green, blue):
            p.clear_states()
        wait_until(lambda: transitions(blue) >= 4, what="cyan blinking")
        assert set(values(red)) == {0.0}
        assert values(green) == values(blue)
        assert pattern_for("thinking", rgb=True, pwm=True).color == CYAN

        leds.show("error")  # red blink
        for p in (red, green, blue):
            p.clear_states()
        wait_until(lambda: transitions(red) >= 2, what="red blinking")
        assert set(values(green)) == {0.0} and set(values(blue)) == {0.0}
    finally:
        leds.close()


def test_no_led_pins_is_a_no_op(factory: Any) -> None:
    leds = StatusLeds(GpioConfig(enabled=True), factory)
    leds.show("listening")
    assert leds.state == "listening" and leds.pattern is not None and leds.pattern.kind == "pulse"
    leds.close()


# -------------------------------------------------------------------------------------------- button


class Calls:
    def __init__(self) -> None:
        self.press = 0
        self.hold = 0
        self.held = threading.Event()

    def on_press(self) -> None:
        self.press += 1

    def on_hold(self) -> None:
        self.hold += 1
        self.held.set()


def test_short_press_fires_on_press_only(factory: Any) -> None:
    calls = Calls()
    # a long hold time: the press below can never be mistaken for a hold, however slow the machine
    button = TalkButton(
        GpioConfig(enabled=True, button_pin=17, hold_ms=10000), factory, calls.on_press, calls.on_hold
    )
    pin = factory.pin(17)
    try:
        assert not button.is_pressed
        pin.drive_low()  # pressed (switch to ground, pull-up)
        assert button.is_pressed and calls.press == 0  # reported on release, once we know it was no hold
        pin.drive_high()
        assert (calls.press, calls.hold) == (1, 0)
        pin.drive_low()
        pin.drive_high()
        assert (calls.press, calls.hold) == (2, 0)
    finally:
        button.close()


def test_hold_toggles_mute_and_is_not_a_press(factory: Any) -> None:
    calls = Calls()
    button = TalkButton(
        GpioConfig(enabled=True, button_pin=17, hold_ms=200), factory, calls.on_press, calls.on_hold
    )
    pin = factory.pin(17)
    try:
        pin.drive_low()
        assert calls.held.wait(10), "on_hold never fired"
        assert calls.press == 0  # still down: the hold fired while pressed
        pin.drive_high()
        assert (calls.press, calls.hold) == (0, 1)
    finally:
        button.close()


def test_button_needs_a_pin(factory: Any) -> None:
    with pytest.raises(ValueError, match="button_pin"):
        TalkButton(GpioConfig(enabled=True), factory, lambda: None, lambda: None)


# ------------------------------------------------------------------------------------- Jetson adapter


class FakeJetsonGPIO(types.ModuleType):
    """Just enough of Jetson.GPIO's API to check what the adapter asks of it (a test fake)."""

    BCM, BOARD = 11, 10
    IN, OUT = 1, 0
    HIGH, LOW = 1, 0
    RISING, FALLING, BOTH = 31, 32, 33
    PWM_PINS = (13,)
    model = "JETSON_ORIN_NANO"

    def __init__(self) -> None:
        super().__init__("Jetson.GPIO")
        self.calls: list[tuple[Any, ...]] = []
        self.levels: dict[int, int] = {}
        self.callbacks: dict[int, Callable[[int], None]] = {}
        fake = self

        class PWM:
            def __init__(self, channel: int, freq: float) -> None:
                if channel not in fake.PWM_PINS:
                    raise ValueError(f"Channel {channel} is not a PWM")
                self.channel = channel
                fake.calls.append(("PWM", channel, freq))

            def start(self, duty: float) -> None:
                fake.calls.append(("start", self.channel, duty))

            def ChangeDutyCycle(self, duty: float) -> None:
                fake.calls.append(("duty", self.channel, duty))

            def ChangeFrequency(self, freq: float) -> None:
                fake.calls.append(("freq", self.channel, freq))

            def stop(self) -> None:
                fake.calls.append(("stop", self.channel))

        self.PWM = PWM

    def setwarnings(self, on: bool) -> None:
        self.calls.append(("setwarnings", on))

    def setmode(self, mode: int) -> None:
        self.calls.append(("setmode", mode))

    def setup(self, channel: int, direction: int, initial: int | None = None) -> None:
        self.calls.append(("setup", channel, direction, initial))

    def input(self, channel: int) -> int:
        return self.levels.get(channel, 1)

    def output(self, channel: int, value: int) -> None:
        self.levels[channel] = value
        self.calls.append(("output", channel, value))

    def add_event_detect(
        self, channel: int, edge: int, callback: Callable[[int], None], bouncetime: int | None = None
    ) -> None:
        self.callbacks[channel] = callback
        self.calls.append(("add_event_detect", channel, edge, bouncetime))

    def remove_event_detect(self, channel: int) -> None:
        self.callbacks.pop(channel, None)

    def cleanup(self, channel: int | None = None) -> None:
        self.calls.append(("cleanup", channel))

    def edge(self, channel: int, level: int) -> None:
        """Simulate the pin changing (Jetson.GPIO calls back from its event thread)."""
        self.levels[channel] = level
        self.callbacks[channel](channel)


@pytest.fixture
def jetson(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeJetsonGPIO]:
    fake = FakeJetsonGPIO()
    package = types.ModuleType("Jetson")
    package.GPIO = fake  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "Jetson", package)
    monkeypatch.setitem(sys.modules, "Jetson.GPIO", fake)
    yield fake


def test_jetson_adapter_drives_leds_and_button_through_jetson_gpio(jetson: FakeJetsonGPIO) -> None:
    factory = make_pin_factory("jetson")
    assert ("setmode", jetson.BCM) in jetson.calls
    assert factory.board_info.model == "JETSON_ORIN_NANO"
    calls = Calls()
    leds = StatusLeds(GpioConfig(enabled=True, led_pins=(13,)), factory)
    button = TalkButton(
        GpioConfig(enabled=True, button_pin=17, hold_ms=10000), factory, calls.on_press, calls.on_hold
    )
    try:
        assert ("PWM", 13, 100) in jetson.calls  # gpiozero's default PWM frequency on the hardware PWM pin
        leds.show("speaking")
        assert ("duty", 13, 100.0) in jetson.calls
        leds.show("muted")
        assert jetson.calls[-1][:2] == ("duty", 13) and 0 < jetson.calls[-1][2] < 20
        assert 17 in jetson.callbacks and ("setup", 17, jetson.IN, None) in jetson.calls
        jetson.edge(17, 0)  # pressed (active low)
        assert button.is_pressed
        jetson.edge(17, 1)
        assert (calls.press, calls.hold) == (1, 0)
    finally:
        button.close()
        leds.close()
        factory.close()
    assert ("cleanup", None) in jetson.calls


def test_jetson_pin_without_hardware_pwm(jetson: FakeJetsonGPIO) -> None:
    from gpiozero.exc import PinPWMUnsupported

    factory = make_pin_factory("jetson")
    try:
        with pytest.raises(PinPWMUnsupported, match="no hardware PWM"):
            StatusLeds(GpioConfig(enabled=True, led_pins=(12,)), factory)
        leds = StatusLeds(GpioConfig(enabled=True, led_pins=(12,), pwm=False), factory)
        leds.show("speaking")
        assert jetson.levels[12] == 1
        leds.show("idle")
        assert jetson.levels[12] == 0
        leds.close()
    finally:
        factory.close()


def test_auto_picks_the_jetson_adapter_on_jetson(
    jetson: FakeJetsonGPIO, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from edge_voice.hw import pins

    compatible = tmp_path / "compatible"
    compatible.write_bytes(b"nvidia,p3768-0000+p3767-0005\0nvidia,tegra234\0")
    monkeypatch.setattr(pins, "_JETSON_COMPATIBLE", compatible)
    assert pins.is_jetson() and not pins.is_jetson(tmp_path / "absent")
    factory = make_pin_factory("auto")
    try:
        assert type(factory).__name__ == "_JetsonFactory"
    finally:
        factory.close()


# ------------------------------------------------------------------------------------- board profiles


@pytest.mark.parametrize("name", ["pi4", "pi5", "jetson-orin-nano", "respeaker-2mic"])
def test_board_profiles_build_a_valid_config(name: str) -> None:
    profile = load_board_profile(name)
    assert "profile" not in profile and profile["gpio"]["enabled"] is True
    cfg = config.from_mapping(merge_board_profile({"gpio": {"board": name}}, environ={}))
    assert cfg.gpio.board == name
    assert cfg.gpio.pin_factory == profile["gpio"]["pin_factory"]
    assert cfg.gpio.button_pin == 17
    notes = board_notes(name)
    assert notes["name"] and notes["supported"]


def test_user_keys_win_over_the_profile() -> None:
    table = {"gpio": {"board": "pi4", "led_pins": [5, 6, 13], "hold_ms": 900}, "device_id": "den"}
    cfg = config.from_mapping(merge_board_profile(table, environ={}))
    assert cfg.gpio.led_pins == (5, 6, 13) and cfg.gpio.hold_ms == 900
    assert cfg.gpio.pin_factory == "lgpio" and cfg.gpio.button_pin == 17 and cfg.device_id == "den"
    assert merge_board_profile({"device_id": "x"}, environ={}) == {"device_id": "x"}
    env_cfg = config.from_mapping(
        merge_board_profile({}, environ={"EDGE_VOICE_GPIO__BOARD": "respeaker-2mic"})
    )
    assert env_cfg.gpio.led_pins == ()


def test_respeaker_profile_says_what_is_supported() -> None:
    notes = board_notes("respeaker-2mic")
    assert "APA102" in notes["leds"] and "NOT" in notes["leds"]
    assert any("APA102" in u for u in notes["unsupported"])
    assert "GPIO17" in notes["button"]
    assert "seeed2micvoicec" in notes["audio"]


def test_unknown_board_lists_the_known_ones() -> None:
    assert board_names() == [
        "jetson-orin-nano",
        "pi-usb-speakerphone",
        "pi4",
        "pi5",
        "respeaker-2mic",
    ]
    with pytest.raises(
        BoardError, match="known: jetson-orin-nano, pi-usb-speakerphone, pi4, pi5, respeaker-2mic"
    ):
        load_board_profile("pi3")


def test_doctor_reports_gpio_factory_and_pins(factory: Any) -> None:
    cfg = Config(
        gpio=GpioConfig(enabled=True, pin_factory="mock", led_pins=(12,), button_pin=17, board="pi4")
    )
    lines = {line.name: line for line in run_doctor(cfg, verify_models=False)}
    assert lines["gpio factory"].ok is True and "MockFactory" in lines["gpio factory"].detail
    assert lines["gpio led pin"].ok is True and lines["gpio button pin"].ok is True
    assert lines["gpio board"].ok is True and "Raspberry Pi 4" in lines["gpio board"].detail
    bad = Config(gpio=GpioConfig(enabled=True, pin_factory="mock", button_pin=99))
    lines = {line.name: line for line in run_doctor(bad, verify_models=False)}
    assert lines["gpio button pin"].ok is False and "GPIO99" in lines["gpio button pin"].detail


def test_the_mute_switch_reports_every_change(factory: Any) -> None:
    from edge_voice.hw.button import MuteSwitch

    seen: list[bool] = []
    switch = MuteSwitch(GpioConfig(mute_switch_pin=22), factory, seen.append)
    assert seen == [] and not switch.muted  # open at start (a closed switch reports True at once)
    pin = factory.pin(22)
    pin.drive_low()
    wait_until(lambda: seen == [True], 2, "switch closed")
    assert switch.muted
    pin.drive_high()
    wait_until(lambda: seen == [True, False], 2, "switch opened")
    switch.close()


# ------------------------------------------------------------------------------- board and start-up order


@pytest.mark.parametrize(
    ("model", "profile", "fix"),
    [
        ("Raspberry Pi 4 Model B Rev 1.5", "pi4", "requirements/gpio-pi.txt"),
        ("Raspberry Pi 400 Rev 1.0", "pi4", "requirements/gpio-pi.txt"),
        ("Raspberry Pi 5 Model B Rev 1.0", "pi5", "requirements/gpio-pi.txt"),
        ("NVIDIA Jetson Orin Nano Developer Kit", "jetson-orin-nano", "Jetson.GPIO"),
        ("", "", "gpio.enabled = false"),
    ],
)
def test_board_detection_names_the_profile_and_the_fix(model: str, profile: str, fix: str) -> None:
    from edge_voice.hw.pins import detect_board, gpio_fix

    assert detect_board(model) == profile and fix in gpio_fix(model)


def test_board_model_reads_the_device_tree(tmp_path: Path) -> None:
    from edge_voice.hw.pins import board_model

    (tmp_path / "model").write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\0")
    assert board_model(tmp_path / "model") == "Raspberry Pi 5 Model B Rev 1.0"
    assert board_model(tmp_path / "absent") == ""


@pytest.mark.parametrize(
    ("gpio", "said"),
    [
        (GpioConfig(enabled=True, pin_factory="lgpio", led_pins=(12,)), "gpio.pin_factory 'lgpio'"),
        (GpioConfig(enabled=True, pin_factory="mock", led_pins=(12,), button_pin=99), "GPIO99"),
        (GpioConfig(enabled=True, pin_factory="mock", mute_switch_pin=77), "GPIO77"),
    ],
)
def test_every_gpio_error_is_reported_before_the_models_load(
    gpio: GpioConfig, said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge_voice.cli import run
    from edge_voice.runtime.daemon import StartupError

    def no_models(*_: Any) -> Any:
        raise AssertionError("models were loaded before the GPIO check")

    monkeypatch.setattr(run, "load_engines", no_models)
    with pytest.raises(StartupError, match=r"^gpio: ") as err:
        run.run_daemon(Config(gpio=gpio), types.SimpleNamespace(input=None))
    assert said in str(err.value)
    if gpio.pin_factory == "lgpio":  # not installed on this (x86) box: the message says how to get it
        assert "fix: " in str(err.value)


@pytest.mark.parametrize(("name", "asr_threads"), [("pi4", 3), ("pi5", 3), ("jetson-orin-nano", 4)])
def test_board_profiles_carry_engine_settings_the_user_can_override(name: str, asr_threads: int) -> None:
    cfg = config.from_mapping(merge_board_profile({"gpio": {"board": name}}, environ={}))
    assert cfg.asr.threads == asr_threads and cfg.llm.batch_threads >= cfg.llm.threads >= 2
    mine = config.from_mapping(
        merge_board_profile({"gpio": {"board": name}, "asr": {"threads": 1}}, environ={})
    )
    assert mine.asr.threads == 1 and mine.tts.threads == cfg.tts.threads
