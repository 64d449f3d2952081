"""The knowledge assessment: enough questions, every checked answer agrees with the policy data (and
a policy change that makes one wrong is caught), seeded draws, grading and the 80 % pass mark."""
import dataclasses
import pytest

from engine.policy.bundle import load_policy
from engine.policy.loader import PolicyError
from engine.training.config import load_training_config
from engine.training.quiz import LETTERS, check_question, draw, grade, load_bank

BANK = load_bank()
POLICY = load_policy()


def test_bank_size_and_topics():
    assert len(BANK.questions) >= 60
    assert set(BANK.topics) >= {"severity", "escalation", "queue", "breaker", "latency", "errors", "failover", "mitigation", "process"}
    checked = [q for q in BANK.questions if q.check is not None]
    assert len(checked) >= 0.7 * len(BANK.questions)
    # the facts the brief names are all asked about
    text = " ".join(q.text for q in BANK.questions).lower()
    for fact in ("acknowledge", "pir", "tech lead", "half_open", "probe", "concurrency is", "consecutive", "failback"):
        assert fact in text, fact


@pytest.mark.parametrize("q", [q for q in BANK.questions if q.check is not None], ids=lambda q: q.id)
def test_checked_answer_matches_the_data(q):
    assert check_question(q, POLICY) is None


def _policy_with(section, model_path, **changes):
    """A copy of the policy with one nested model changed."""
    obj = getattr(POLICY, section)
    parts = model_path.split(".")

    def rebuild(o, path):
        if not path:
            return o.model_copy(update=changes)
        head, rest = path[0], path[1:]
        if isinstance(o, dict):
            return {**o, head: rebuild(o[head], rest)}
        return o.model_copy(update={head: rebuild(getattr(o, head), rest)})

    return dataclasses.replace(POLICY, **{section: rebuild(obj, parts)})


@pytest.mark.parametrize(
    "section,path,changes,question",
    [
        ("severity", "levels.Sev1", {"ack_within_s": 600}, "sev1-ack"),
        ("escalation", "auto", {"no_recovery_after_first_action_s": 300}, "auto-escalate"),
        ("mitigation", "scaler", {"depth_divisor": 250}, "scale-20-700"),
        ("mitigation", "circuits.action_handler", {"close_after_successes": 5}, "breaker-close-after"),
        ("mitigation", "failover", {"failure_threshold": 4}, "failover-checks"),
    ],
)
def test_a_policy_change_that_makes_a_question_wrong_is_caught(section, path, changes, question):
    pol = _policy_with(section, path, **changes)
    q = BANK.by_id()[question]
    problem = check_question(q, pol)
    assert problem is not None and question in problem


def test_other_data_files_are_checked_too(tmp_path):
    import shutil

    from runbooks import RUNBOOKS_DIR

    shutil.copytree(RUNBOOKS_DIR / "statuspage", tmp_path / "statuspage")
    q = BANK.by_id()["status-first-post"]
    assert check_question(q, POLICY, tmp_path) is None
    p = tmp_path / "statuspage" / "statuspage.toml"
    p.write_text(p.read_text().replace("first_post_within_s = 120", "first_post_within_s = 300"))
    assert "gives 5" in (check_question(q, POLICY, tmp_path) or "")


def test_draw_is_seeded_spread_and_shuffled():
    a = draw(BANK, 7, 25)
    b = draw(BANK, 7, 25)
    c = draw(BANK, 8, 25)
    assert a == b
    assert [q.id for q in a] != [q.id for q in c]
    assert len({q.id for q in a}) == 25
    assert len({q.topic for q in a}) == len(BANK.topics)  # every topic appears
    # choices are shuffled per question, the answer moves with them
    moved = sum(1 for q in draw(BANK, 3, 60) if q.answer_index != BANK.by_id()[q.id].choices.index(BANK.by_id()[q.id].answer))
    assert moved > 20
    assert len(draw(BANK, 1, 10_000)) == len(BANK.questions)


def test_grading_letters_text_and_pass_mark():
    pass_pct = load_training_config().quiz.pass_pct
    assert pass_pct == 80
    qs = draw(BANK, 11, 10)
    right = {q.id: q.answer for q in qs}
    res = grade(qs, right, seed=11, pass_pct=pass_pct, bank_sha256=BANK.sha256)
    assert res.correct == 10 and res.passed
    letters = {q.id: LETTERS[q.answer_index].lower() for q in qs}
    assert grade(qs, letters, seed=11, pass_pct=pass_pct, bank_sha256="x").correct == 10
    two_wrong = dict(right)
    for q in qs[:2]:
        two_wrong[q.id] = next(c for c in q.choices if c != q.answer)
    r80 = grade(qs, two_wrong, seed=11, pass_pct=pass_pct, bank_sha256="x")
    assert r80.score_pct == 80.0 and r80.passed
    three_wrong = dict(two_wrong)
    del three_wrong[qs[2].id]  # unanswered counts as wrong
    r70 = grade(qs, three_wrong, seed=11, pass_pct=pass_pct, bank_sha256="x")
    assert r70.score_pct == 70.0 and not r70.passed
    assert r70.questions[2].given is None and not r70.questions[2].correct
    bogus = grade(qs, {qs[0].id: "Z: none of these"}, seed=11, pass_pct=pass_pct, bank_sha256="x")
    assert bogus.questions[0].given == "Z: none of these" and not bogus.questions[0].correct


def test_bank_errors_name_the_file_and_field(tmp_path):
    (tmp_path / "a.toml").write_text('[[questions]]\nid = "x"\ntopic = "t"\ntext = "?"\nchoices = ["1", "2"]\nanswer = "3"\nexplain = "."\n')
    with pytest.raises(PolicyError, match=r"a.toml: field questions.0: Value error, answer '3' is not one of the choices"):
        load_bank(tmp_path)
    (tmp_path / "a.toml").write_text('[[questions]]\nid = "x"\ntopic = "t"\ntext = "?"\nchoices = ["1", "2"]\nanswer = "2"\nexplain = "."\n')
    (tmp_path / "b.toml").write_text((tmp_path / "a.toml").read_text())
    with pytest.raises(PolicyError, match=r"b.toml: field questions.0.id: 'x' is already used in a.toml"):
        load_bank(tmp_path)


def test_a_distractor_with_the_right_number_is_caught():
    from engine.training.quiz import Question

    q = BANK.by_id()["sev1-ack"].model_copy(update={"choices": ["5 minutes", "5 min", "15 minutes", "30 minutes"]})
    assert "also states the right value" in (check_question(Question.model_validate(q.model_dump()), POLICY) or "")
