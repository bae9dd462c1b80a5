"""Key-to-screen latency of the explorer (issue 20 item 11), measured with Textual's Pilot on a SmolLM2-sized run
(30 blocks, d = 576, 24 tokens, top-32, coupling at two K and its random-init baseline; synthetic, tests/fakes.py):
idle (a saved run) and while a compute streams into the app (a fake engine job in the app's one thread worker that
burns CPU, half of it holding the GIL as Python does, half in numpy, between events that are the real shape).

One press's latency is the time from the key to the screen having been re-rendered: the key is handled, every
message it caused is processed, then the screen's update runs (the compositor renders every dirty widget). The terminal write itself is not included (headless). Targets: < 100 ms idle, < 300 ms computing.

    python benchmarks/key_latency.py [--presses 40] [--layer-seconds 0.25] [--profile]

Not a unit test: it prints the machine's load average with the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes import fake_events  # noqa: E402

SIZE = dict(n_layers=30, n_tokens=24, d=576, k=32, coupling=True, baseline=True)
KEYS = ("right", "down", "left", "up", "t", "m", "r", "v", "question_mark")
TARGET_IDLE, TARGET_COMPUTING = 0.100, 0.300


def saved_run(events):
    from coupling_tui.core.results.run import Run

    run = Run()
    for event in events:
        run.apply(event)
    return run


def burn(seconds: float) -> None:
    """Half in pure Python (holds the GIL, as the engine's Python does), half in numpy (releases it, as torch)."""
    end = time.perf_counter() + seconds / 2
    x = 0
    while time.perf_counter() < end:
        x += sum(range(200))
    a = np.random.default_rng(0).standard_normal((256, 256))
    end = time.perf_counter() + seconds / 2
    while time.perf_counter() < end:
        a = np.tanh(a @ a.T / 256)


def slow_job(events, layer_seconds: float):
    def job():
        for event in events:
            burn(layer_seconds)
            yield event
    return job


def pending(screen) -> bool:
    """Whether the screen or a widget on it still has a repaint, a layout or a scroll to do."""
    if screen._dirty_widgets or screen._layout_required or screen._scroll_required or screen._repaint_required:  # noqa: SLF001
        return True
    return any(w._repaint_required or w._layout_required for w in screen.walk_children())  # noqa: SLF001


async def rendered(app, pilot, rounds: int = 12) -> None:
    """Every message the key caused is handled (a screen it pushed included) and every repaint it caused is
    rendered: the widgets' own message loops post their updates to the screen, then the screen renders what changed
    (the compositor renders every dirty widget), as its update timer would next — repeated until two rounds in a row
    find nothing left to do (at most ``rounds``: a compute keeps posting). ``pilot.pause`` is not used: it waits for
    the whole process to be idle, which a compute in the worker thread never is. (An earlier version stopped after
    two rounds and so left some presses' rendering to the next press.)"""
    quiet = 0
    for _ in range(rounds):
        await pilot._wait_for_screen()              # noqa: SLF001 - Pilot's own wait for pending messages
        await asyncio.sleep(0)
        screen = app.screen
        if pending(screen):
            screen._on_timer_update()               # noqa: SLF001 - the compositor renders the dirty widgets
            quiet = 0
        else:
            quiet += 1
            if quiet == 2:
                return


def send_key(app, key: str) -> None:
    """The key event as the terminal driver hands it to the app. Not ``pilot.press``/``app._press_keys``: after
    sending they wait for the process to be idle (``wait_for_idle``: up to a second each time, twice), which a
    compute in the worker thread never is, so they measured that wait instead of the app."""
    from textual import events

    char = "?" if key == "question_mark" else key if len(key) == 1 else None
    event = events.Key(key, char)
    event.set_sender(app)
    app._driver.send_message(event)                 # noqa: SLF001 - the driver's own entry point


async def press_and_render(app, pilot, key: str) -> float:
    start = time.perf_counter()
    send_key(app, key)
    await rendered(app, pilot)
    took = time.perf_counter() - start
    if key == "question_mark":                      # the help screen opened: close it (not timed)
        await pilot.press("escape")
        await rendered(app, pilot)
    return took


async def measure(app, presses: int, computing: bool) -> dict[str, list[float]]:
    by_key: dict[str, list[float]] = {}
    async with app.run_test(size=(200, 60)) as pilot:
        await pilot.pause()
        if computing:
            while not app.results.header:           # the run has started streaming
                await pilot.pause(0.05)
        for n in range(presses):
            key = KEYS[n % len(KEYS)]
            if computing and not app.computing:
                break
            took = await press_and_render(app, pilot, key)
            by_key.setdefault("?" if key == "question_mark" else key, []).append(took)
        if computing:
            app.action_cancel_compute()
    return by_key


def summary(name: str, by_key: dict[str, list[float]], target: float) -> None:
    every = sorted(v for values in by_key.values() for v in values)
    if not every:
        print(f"{name}: no presses measured")
        return
    p90 = every[min(len(every) - 1, int(0.9 * len(every)))]
    median = statistics.median(every)
    print(f"{name}: {len(every)} presses · median {1000 * median:.0f} ms · p90 {1000 * p90:.0f} ms · max "
          f"{1000 * every[-1]:.0f} ms · target {1000 * target:.0f} ms: median/target {median / target:.2f}, "
          f"p90/target {p90 / target:.2f}")
    for key, values in by_key.items():
        print(f"    {key:>6}: median {1000 * statistics.median(values):6.0f} ms · max {1000 * max(values):6.0f} ms "
              f"({len(values)} presses)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presses", type=int, default=45, help="key presses per scenario (cycling through the keys)")
    p.add_argument("--layer-seconds", type=float, default=0.25, help="CPU seconds the fake engine burns per block")
    p.add_argument("--profile", action="store_true", help="profile the idle presses (cProfile, top 25 by cumulative)")
    p.add_argument("--only", choices=("idle", "computing"), default=None)
    args = p.parse_args()

    from coupling_tui.tui.app import CouplingApp

    events = fake_events(**SIZE)
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} on {os.cpu_count()} CPUs · run: "
          f"{SIZE['n_layers']} blocks, {SIZE['n_tokens']} tokens, d = {SIZE['d']}, top-{SIZE['k']}")
    if args.only != "computing":
        app = CouplingApp(run=saved_run(events), run_name="bench")
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
            idle = asyncio.run(measure(app, args.presses, computing=False))
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        else:
            idle = asyncio.run(measure(app, args.presses, computing=False))
        summary("idle", idle, TARGET_IDLE)
    if args.only != "idle":
        app = CouplingApp(job=slow_job(events, args.layer_seconds), save_path=Path(os.devnull + ".bench"),
                          run_name="bench")
        computing = asyncio.run(measure(app, args.presses, computing=True))
        summary(f"computing ({args.layer_seconds:.2f} CPU s per block)", computing, TARGET_COMPUTING)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
