"""Training and certification settings (runbooks/training/training.toml), validated at load."""
from __future__ import annotations

from pathlib import Path

from pydantic import Field

from engine.drill.scenario import UnsafeAction, action_names
from engine.policy.loader import PolicyError, StrictModel, load_model


class CertificationSettings(StrictModel):
    name: str = "ggen on-call"
    valid_days: int = Field(default=365, gt=0)  # a certificate's validity (the yearly mock incident renews it)
    results_valid_days: int = Field(default=180, gt=0)  # older scenario results and quiz attempts no longer count


class QuizSettings(StrictModel):
    pass_pct: int = Field(default=80, ge=1, le=100)
    questions: int = Field(default=25, ge=1)  # drawn per attempt (seeded) from the bank


class TrainingConfig(StrictModel):
    certification: CertificationSettings = Field(default_factory=CertificationSettings)
    quiz: QuizSettings = Field(default_factory=QuizSettings)
    unsafe: list[UnsafeAction] = Field(default_factory=list)  # unsafe in every scenario


def training_dir() -> Path:
    from runbooks import RUNBOOKS_DIR

    return RUNBOOKS_DIR / "training"


def load_training_config(path: Path | None = None) -> TrainingConfig:
    """The settings file, validated; unknown action names in ``unsafe`` name their field."""
    p = path or training_dir() / "training.toml"
    cfg = load_model(p, TrainingConfig)
    known = action_names()
    for i, u in enumerate(cfg.unsafe):
        if u.action not in known:
            raise PolicyError(p, f"unsafe.{i}.action", f"unknown action {u.action!r}")
    return cfg
