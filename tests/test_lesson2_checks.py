"""Lesson 2's self-checks as a student meets them: every typical mistake is rejected and named on the published
fixture and on hidden ones, under every random draw; legitimate variants pass; the wrong answers that the checks
accepted before (a sample(n) that returns the first n, a buffer that is not class-balanced, a temperature of 2
written in) are rejected; and the messages say what is wrong in words."""
import re

import pytest
import torch

from cl_course.teaching import exercises, selfcheck
from cl_course.teaching import replay_mistakes as rm
from cl_course.teaching.blanks import BLANKS, lesson_blanks
from cl_course.strategies import Replay, outputs_of_old_heads

from helpers import judged, notebook_solutions, rejected_with

LESSON2 = lesson_blanks("lesson2")
HIDDEN = {name: range(1, 4) if name == "reservoir_slots" else range(1, 9) for name in LESSON2}  # the reservoir: 0.3 s


@pytest.mark.parametrize("name,wrong,message", [(n, f, m) for n, b in LESSON2.items() for f, m in b.mistakes],
                         ids=[f.__name__ for b in LESSON2.values() for f, _ in b.mistakes])
def test_every_typical_mistake_is_rejected_and_named_on_hidden_fixtures_too(name, wrong, message):
    assert message in rejected_with(name, wrong)
    for seed in HIDDEN[name]:
        wrong_entries, hint = judged(name, wrong, seed)
        assert wrong_entries and message in hint, (wrong.__name__, seed, hint)


@pytest.mark.parametrize("name", list(LESSON2))
def test_the_reference_passes_whatever_its_random_draws(name):
    for seed in [None, *HIDDEN[name]]:
        for _ in range(3 if name == "ExperienceReplay" else 1):  # its draws differ from the stored run's each time
            assert selfcheck.check(name, BLANKS[name].reference, verbose=False, seed=seed)


@pytest.mark.parametrize("name,variant", [(n, v) for n, b in LESSON2.items() for v, _ in b.variants])
def test_legitimate_variants_pass(name, variant, capsys):
    for seed in [None, *HIDDEN[name]]:
        assert selfcheck.check(name, variant, verbose=seed is None, seed=seed)
    stored = selfcheck.stored_values()[name]
    if any(v != stored["expected"] for v in stored["variants"]):  # a variant the record tells apart: say which it is
        assert "a legitimate variant of the reference" in capsys.readouterr().out


def test_the_fixture_varies_its_sizes_labels_and_temperature_with_the_seed_and_never_uses_2():
    fixtures = [exercises.replay_fixture(seed) for seed in range(40)]
    assert {f["temperature"] for f in fixtures} == set(exercises.TEMPERATURES) and 2.0 not in exercises.TEMPERATURES
    assert {f["budget"] for f in fixtures} == {12, 24} and {f["reservoir_budget"] for f in fixtures} == {3, 4}
    assert len({tuple(len(t.y_train) for t in f["tasks"]) for f in fixtures}) > 10
    for f in fixtures:
        for task in f["tasks"]:
            zeros, ones = int((task.y_train == 0).sum()), int((task.y_train == 1).sum())
            assert zeros > f["budget"] // 2 > ones  # label 0 has more than the first share, label 1 fewer: unbalanced
            assert task.y_train[:len(task.y_train) // 2].float().mean() != 0.0  # shuffled, not sorted by label


# ---- the wrong answers the checks accepted before ----------------------------------------------------------------

def student_er():
    return notebook_solutions("lesson2")["ExperienceReplay"]


def test_a_sample_that_returns_the_first_n_stored_is_rejected_and_named():
    class FirstN(student_er()):
        def sample(self, n):
            x, y, head = (torch.cat(part) for part in zip(*self.classes, strict=True))
            return x[:n], y[:n], head[:n]
    for seed in [None, *range(1, 9)]:
        assert "sample(n) does not draw at random" in rejected_with("ExperienceReplay", FirstN, seed)


def test_a_buffer_that_is_not_class_balanced_is_rejected_under_every_draw():
    class WholeTask(student_er()):  # a random draw from the whole task, not per label
        def after_task(self, model, tasks):
            task = tasks[-1]
            order = torch.randperm(len(task.y_train))
            self.classes.append((task.x_train[order], task.y_train[order], torch.full((len(order),), task.head)))
            share = self.budget // (2 * len(self.classes))
            self.classes = [(x[:2 * share], y[:2 * share], h[:2 * share]) for x, y, h in self.classes]
    for seed in [None, 1, 2, 3]:
        for _ in range(10):  # the draw changes every time; the verdict must not
            assert "the memory is not class-balanced" in rejected_with("ExperienceReplay", WholeTask, seed)


def test_an_lwf_with_the_temperature_written_in_is_rejected_on_every_fixture():
    class Two(notebook_solutions("lesson2")["LwF"]):
        def __init__(self, temperature=2.0):
            super().__init__(2.0)
    for seed in [None, *range(1, 9)]:
        assert "temperature" in rejected_with("LwF", Two, seed)


# ---- messages -----------------------------------------------------------------------------------------------------

def test_an_lwf_that_distils_during_the_first_task_is_told_why_not_given_shape_advice():
    class NoGuard(notebook_solutions("lesson2")["LwF"]):  # no `if self.previous is None: return None`
        def replay(self, model, x, tasks):
            xs, head, logits = outputs_of_old_heads(self.previous, x, tasks)
            return Replay(xs, logits, head, self.temperature)
    for answer in (rm.LwFCopyAtTaskStart, NoGuard):
        message = rejected_with("LwF", answer)
        assert "during the first task" in message and "return None" in message
        assert "784" not in message and "hard-code" not in message


def test_targets_of_today_name_both_causes():
    for answer in (rm.LwFNoCopy, rm.LwFTeacherIsModel):
        message = rejected_with("LwF", answer)
        assert "frozen_copy(model)" in message and "self.previous" in message


def test_herding_that_returns_a_list_is_told_to_return_a_longtensor():
    def as_list(features, m):
        return BLANKS["herding_selection"].reference(features, m).tolist()
    message = rejected_with("herding_selection", as_list)
    assert "must return a LongTensor [m] of indices" in message and "got list" in message


def test_a_distillation_off_by_a_factor_names_the_factor_in_its_own_terms():
    inputs = exercises.replay_fixture()
    for factor, words in ((inputs["temperature"] ** -2, "the factor T^2 is missing"),
                          (1 / inputs["logits"].shape[1], "reduction='batchmean'"),
                          (1.7, "off by a constant factor (got = 1.7 x expected)")):
        def scaled(logits, teacher_logits, temperature, factor=factor):
            return factor * BLANKS["distillation_loss"].reference(logits, teacher_logits, temperature)
        message = rejected_with("distillation_loss", scaled)
        assert words in message
        assert not re.search(r"slices|eps|1/2", message)


def test_an_unnamed_difference_is_said_in_words_with_the_entry_it_concerns():
    class HalfProjected(rm._AGEM):  # projects half way: no typical mistake does that
        def project(self, g, ref):
            dot = g @ ref
            return g - 0.5 * dot / (ref @ ref) * ref if dot < 0 else g
    message = rejected_with("AGEM", HalfProjected)
    assert message.startswith("AGEM: conflicting differs from the expected values.")
    assert "conflicting is the gradient after adjust_gradients when g . g_ref < 0" in message


def test_a_reservoir_in_the_wrong_form_is_one_line():
    message = rejected_with("reservoir_slots", lambda seen, n, budget, generator=None: list(range(n)))
    assert "must return a LongTensor [n] of slots" in message


def test_the_check_prints_a_table_and_says_when_all_match(capsys):
    selfcheck.check("ExperienceReplay", student_er())
    out = capsys.readouterr().out
    assert "memory_after_task_2" in out and "all 10 entries match." in out


@pytest.mark.parametrize("name", ["LwF", "ExperienceReplay", "AGEM"])
def test_the_published_record_cannot_stand_in_for_the_hidden_ones(name):
    """A forged record (the published values, which ship in the student wheel) matches few hidden fixtures: the
    exercise depends on the grading-time seed through the budget, the stream's labels and the temperature."""
    blank = BLANKS[name]
    published = selfcheck.result_values(name, blank.reference, blank.fixture(selfcheck.FIXTURE_SEED))
    same = 0
    for seed in range(1000, 1060):
        hidden = selfcheck.result_values(name, blank.reference, blank.fixture(seed))
        same += hidden.keys() == published.keys() and all(
            hidden[k].shape == published[k].shape and torch.equal(hidden[k], published[k]) for k in hidden)
    assert same <= 9, f"{same} of 60 hidden fixtures give the published record"  # ER: 19 of 200 seeds
