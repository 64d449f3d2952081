"""Virtual-time speed of the engine: simulated seconds per wall second.

Prints the figure for the default fleet and for generated fleets (200 and 1,000 services), each
after a warm-up, over a quiet period and over a period with an injected fault. Goals: at least
10,000x for the default fleet, at least 100x for 1,000 services.

    .venv/bin/python bench/engine_speed.py [--minutes N]
"""
from __future__ import annotations

import argparse
import dataclasses
import time

from engine.clock import VirtualClock
from engine.core import Engine
from engine.fleet.synthetic import synthetic_fleet
from engine.policy.bundle import load_policy


def measure(n_services: int | None, sim_s: int, fault: str | None) -> float:
    policy = load_policy()
    if n_services:
        policy = dataclasses.replace(policy, fleet=synthetic_fleet(n_services, 1))
    engine = Engine(policy, clock=VirtualClock(), seed=1)
    engine.run_for(60_000)
    if fault:
        engine.inject(fault)
    t = time.perf_counter()
    engine.run_for(sim_s * 1000)
    return sim_s / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=int, default=30, help="simulated minutes for the default fleet")
    args = ap.parse_args()
    rows = [
        ("default fleet (7 services, 3 tenants), quiet", None, args.minutes * 60, None, 10_000),
        ("default fleet, bad deploy incident", None, args.minutes * 60, "bad_deploy", 10_000),
        ("default fleet, region outage", None, args.minutes * 60, "region_outage", 10_000),
        ("200 services", 200, 300, None, None),
        ("1,000 services", 1000, 120, None, 100),
    ]
    print(f"{'fleet':48} {'simulated s':>12} {'speed':>12}  goal")
    for label, n, sim_s, fault, goal in rows:
        speed = measure(n, sim_s, fault)
        verdict = "" if goal is None else (f">= {goal:,}x " + ("met" if speed >= goal else "MISSED"))
        print(f"{label:48} {sim_s:>12,} {speed:>11,.0f}x  {verdict}")


if __name__ == "__main__":
    main()
