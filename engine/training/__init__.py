"""Training and certification: trainee sessions on scenarios, scoring, the knowledge assessment,
training history, signed certificates, and the monthly prevention drill.

- :mod:`engine.training.session`: :class:`TraineeSession` (one trainee on one scenario, virtual
  clock, engine in training mode), :func:`run_answers` (a scripted trainee, headless).
- :mod:`engine.training.score`: :func:`score` -> :class:`ScoreReport` (the rubric).
- :mod:`engine.training.quiz`: the question bank (runbooks/quiz/), seeded attempts, grading.
- :mod:`engine.training.history`: results kept in the data directory (``<data>/training/``).
- :mod:`engine.training.certify`: eligibility and the ``certificate.issued`` receipt.
- :mod:`engine.training.prevention`: the prevention checks of 06-prevention-strategies and the
  ``prevention_failure_detected`` rule.
"""
