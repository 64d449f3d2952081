"""Training figures: how fast scripted trainees, the prevention drill and quiz grading run, against
the raw engine speed underneath.

    .venv/bin/python bench/training_bench.py [--seeds 3]

1. Raw engine: the same scenarios played by the drill runner with no trainee (`run_scenario`):
   simulated seconds per wall second. This is the floor a trainee session cannot beat.
2. Scripted trainees: every training scenario's reference path on --seeds seeds (`run_answers`,
   the code behind `ggen train run`): runs per second, simulated seconds per wall second, and the
   cost of a trainee session over the raw engine (steps due checks, scoring).
3. The monthly drill: every prevention check on a 5-minute fault (`ggen chaos drill` without the
   ledger part).
4. The knowledge assessment: drawing and grading attempts of 25 questions, and checking every
   question of the bank against the policy.
"""
from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()

    from engine.drill.runner import run_scenario
    from engine.drill.scenario import load_scenarios
    from engine.policy.bundle import load_policy
    from engine.training.prevention import load_prevention, run_check
    from engine.training.quiz import check_question, draw, grade, load_bank
    from engine.training.session import run_answers

    policy = load_policy()
    training = {n: s for n, s in load_scenarios().items() if s.training is not None}
    seeds = list(range(1, args.seeds + 1))

    t = time.perf_counter()
    sim = 0.0
    for seed in seeds:
        for sc in training.values():
            r, _ = run_scenario(sc, seed, policy)
            sim += r.simulated_s
    raw_wall = time.perf_counter() - t
    print(f"raw engine (drill runner, no trainee): {len(training) * len(seeds)} runs, {sim / 3600:.1f} simulated h in {raw_wall:.2f} s: {sim / raw_wall:,.0f} simulated s per s")

    t = time.perf_counter()
    tsim = 0.0
    passed = 0
    per_run = []
    for seed in seeds:
        for sc in training.values():
            r0 = time.perf_counter()
            rep, sess = run_answers(sc, sc.training.reference, trainee="bench", seed=seed, policy=policy)
            per_run.append(time.perf_counter() - r0)
            tsim += (sess.engine.now_ms - sess.engine.started_ms) / 1000
            passed += rep.passed
    wall = time.perf_counter() - t
    runs = len(per_run)
    print(
        f"scripted trainees (reference paths): {runs} runs ({passed} passed) in {wall:.2f} s: {runs / wall:.1f} runs/s, "
        f"median {statistics.median(per_run) * 1000:.0f} ms, max {max(per_run) * 1000:.0f} ms; {tsim / wall:,.0f} simulated s per s "
        f"(runs stop once every incident is settled, so they simulate {tsim / sim * 100:.0f} % of the drill's time)"
    )
    print(f"  trainee session vs raw engine, per simulated second: {(wall / tsim) / (raw_wall / sim):.2f}x the cost")

    pf = load_prevention()
    t = time.perf_counter()
    res = [run_check(c, duration_s=300) for c in pf.checks]
    wall = time.perf_counter() - t
    print(f"monthly drill: {len(res)} prevention checks ({sum(r.passed for r in res)} passed) in {wall:.2f} s, {sum(r.simulated_s for r in res) / wall:,.0f} simulated s per s")

    bank = load_bank()
    t = time.perf_counter()
    n = 200
    for seed in range(n):
        qs = draw(bank, seed, 25)
        grade(qs, {q.id: q.answer for q in qs}, seed=seed, pass_pct=80, bank_sha256=bank.sha256)
    wall = time.perf_counter() - t
    t = time.perf_counter()
    problems = [p for p in (check_question(q, policy) for q in bank.questions) if p]
    check_wall = time.perf_counter() - t
    print(f"quiz: {n} attempts of 25 drawn and graded in {wall * 1000:.0f} ms ({wall / n * 1e6:.0f} us each); bank of {len(bank.questions)} checked against the policy in {check_wall * 1000:.0f} ms ({len(problems)} problems)")


if __name__ == "__main__":
    main()
