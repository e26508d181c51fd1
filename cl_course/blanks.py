"""The blanks students fill in, one row each: everything the self-checks, the training code, the
autograder, the typical-mistake messages and the tests know about a blank. A new lesson's blanks
are new rows.

Every blank is checked on a small fixture (fixtures.fixture), not on HW14's sizes: the model is a
6-5-4-3 MLP, x is [B, 6] in two batches of 4 and 3 samples (N = 7), there are 3 classes and 5 SCP
directions [5, 3]; dictionaries are {parameter name: tensor shaped like the parameter}. `batches`
arrives as training passes it, a one-shot iterable: loop over it once, counting the samples there.
"""
from collections.abc import Callable
from dataclasses import dataclass

from . import exercises, icarl, importance, mistakes, replay, strategies
from . import replay_mistakes as rm
from .fixtures import fixture


@dataclass(frozen=True)
class Blank:
    name: str               # what the notebook defines: the library function or class it stands in for
    arguments: tuple        # the fixture's entries it is called with, in order: its signature
    reference: Callable     # the library's function (or class) in the variant the notebook teaches
    points: float           # autograder points (the notebook's check_<name> cell carries the same)
    methods: tuple          # the strategies that call it
    mistakes: tuple = ()    # (typical wrong implementation, what a student whose result matches it reads)
    fixture: Callable = fixture  # its inputs, drawn from a seed
    lesson: str = "hw14"    # the assignment whose notebook has it
    exercise: Callable = None  # (answer, inputs) -> {entry: tensor}: how a class, or a function whose result
    #                            is not such a dict, is run and recorded; None: answer(*arguments) is the dict

    def run(self, answer, inputs):
        """The result the checks compare: {parameter or entry name: tensor}."""
        if self.exercise is not None:
            return self.exercise(answer, inputs)
        return answer(*(inputs[k] for k in self.arguments))


BLANKS = {b.name: b for b in (
    Blank("fisher_diagonal", ("model", "batches"),
          lambda model, batches: importance.fisher_diagonal(model, batches, "empirical"), 3,
          ("ewc", "online-ewc", "rwalk"), (
              (mistakes.fisher_batch_mean, "looks like the square of the batch-mean gradient, not the mean of "
                                           "squared per-sample gradients"),
              (mistakes.fisher_absolute, "looks like the mean of |per-sample gradient|; EWC squares each "
                                         "per-sample gradient"),
              (mistakes.fisher_not_squared, "looks like the mean gradient itself; square each sample's gradient "
                                            "before averaging"),
              (mistakes.fisher_over_batches, "divides by the number of batches; average over samples"),
              (mistakes.fisher_exact, "looks like the exact Fisher (every class weighted by p(c|x)); use the true "
                                      "labels y"),
              (mistakes.fisher_last_batch, "uses only the last batch; average over every batch in `batches`"),
              (mistakes.fisher_mean_of_batch_means, "averages the batches' means: with batches of unequal size "
                                                    "(4 and 3 here) that is not the mean over samples; sum over "
                                                    "every sample and divide by their total number N"),
              (mistakes.fisher_grad_not_zeroed, "the gradients are not zeroed between samples: backward() adds to "
                                                "p.grad, so each square is of the running sum of all gradients so "
                                                "far; zero them before each sample (model.zero_grad()) or use "
                                                "torch.autograd.grad"),
              (mistakes.fisher_grad_zeroed_per_batch, "the gradients are zeroed once per batch, not before each "
                                                      "sample: backward() adds to p.grad, so each square is of the "
                                                      "batch's running sum"),
              (mistakes.fisher_argmax_labels, "uses the model's predicted class (argmax) as the label; the "
                                              "empirical Fisher uses the true labels y"),
              (mistakes.fisher_nll_on_logits, "F.nll_loss is applied to the logits; it expects log-probabilities: "
                                              "use F.log_softmax first, or F.cross_entropy on the logits"),
              (mistakes.fisher_squared_batch_sum, "squares the gradient of the batch's summed loss "
                                                  "(reduction='sum'); square each sample's own gradient, then "
                                                  "average"))),
    Blank("mas_importance", ("model", "batches"),
          lambda model, batches: importance.mas_importance(model, batches, per_sample=True), 2, ("mas",), (
              (mistakes.mas_batch_mean, "takes |.| of the batch-mean gradient; MAS takes |.| of each sample's "
                                        "gradient, then the mean"),
              (mistakes.mas_squared, "squares the gradient; MAS uses its absolute value"),
              (mistakes.mas_no_abs, "the absolute value is missing"),
              (mistakes.mas_norm_not_squared, "differentiates ||f(x)||, not the squared norm ||f(x)||^2"),
              (mistakes.mas_softmax, "uses softmax probabilities; MAS uses the network's output f(x), the logits"),
              (mistakes.mas_mean_of_batch_means, "averages the batches' means: with batches of unequal size (4 and 3 "
                                                 "here) that is not the mean over samples; sum over every sample "
                                                 "and divide by their total number N"))),
    Blank("scp_importance", ("model", "batches", "directions"),
          lambda model, batches, directions: importance.scp_importance(model, batches, directions), 3, ("scp",), (
              (mistakes.scp_averaged_slice, "averages the directions into one slice with |gradient| (HW14's sample "
                                            "code); take one squared gradient per slice and average those"),
              (mistakes.scp_absolute, "uses |gradient| per slice; SCP squares it"),
              (mistakes.scp_summed_slices, "sums over the slices; average them (divide by L)"),
              (mistakes.scp_per_sample, "uses each sample's output; SCP slices the mean output phi over all "
                                        "samples"),
              (mistakes.scp_phi_per_batch, "computes phi per batch (each batch's own mean output) and averages the "
                                           "batches' results; phi is the mean output over all samples of every "
                                           "batch, one phi"),
              (mistakes.scp_grad_not_zeroed, "the gradients are not zeroed between slices: backward() adds to "
                                             "p.grad, so each square is of the running sum of the slices' "
                                             "gradients; zero them before each slice or use torch.autograd.grad"))),
    Blank("si_path_step", ("path_integral", "gradients", "penalty_gradients", "before", "after"),
          importance.si_path_step, 3, ("si", "rwalk"), (
              (mistakes.si_step_total_gradient, "uses the whole gradient `gradients`, which includes the penalty's "
                                                "pull back towards the old tasks; W credits the task loss's own "
                                                "gradient: gradients - penalty_gradients"),
              (mistakes.si_step_adds_penalty, "adds penalty_gradients; the task loss's gradient is what remains "
                                              "when the penalty's part is removed: gradients - penalty_gradients"),
              (mistakes.si_step_penalty_only, "uses the penalty's gradient alone; W needs the task loss's "
                                              "gradient, gradients - penalty_gradients"),
              (mistakes.si_step_wrong_sign, "wrong sign: W accumulates -g * (after - before)"),
              (mistakes.si_step_absolute, "takes an absolute value; W accumulates the signed -g * (after - before)"),
              (mistakes.si_step_parameter_not_change, "multiplies the gradient by the parameter, not by its change"),
              (mistakes.si_step_overwrites, "replaces W instead of adding this step to it"))),
    Blank("si_importance", ("path_integral", "delta", "eps"), importance.si_importance, 1, ("si",), (
        (mistakes.si_absolute_delta, "divides by |Delta| + eps; SI divides by Delta^2 + eps"),
        (mistakes.si_eps_outside, "adds eps after dividing; it belongs in the denominator"),
        (mistakes.si_no_eps, "the damping eps is missing from the denominator"),
        (mistakes.si_times_delta, "multiplies by Delta^2 + eps instead of dividing"),
        (mistakes.si_absolute_path, "takes |W|; W is signed (a parameter that raised the loss has W < 0), "
                                    "divide it as it is"),
        (mistakes.si_relu_path, "clips W at 0 (ReLU); si_importance divides the signed W as it is (the "
                                "strategy decides what to do with negative values)"))),
    Blank("rwalk_score", ("path_integral", "fisher", "delta", "eps"), importance.rwalk_score, 1, ("rwalk",), (
        (mistakes.rwalk_no_half, "the 1/2 in (1/2) F Delta^2 is missing"),
        (mistakes.rwalk_si_denominator, "uses SI's denominator Delta^2 + eps; RWalk weights Delta^2 by the Fisher"),
        (mistakes.rwalk_delta_not_squared, "Delta is not squared"),
        (mistakes.rwalk_plus_fisher, "adds the Fisher; rwalk_score is the path score alone (the strategy adds F)"),
        (mistakes.rwalk_eps_times_fisher, "eps is inside the Fisher's bracket, (1/2) F (Delta^2 + eps); it is "
                                          "added to the whole (1/2) F Delta^2"),
        (mistakes.rwalk_eps_halved, "eps is halved with F Delta^2, (1/2) (F Delta^2 + eps); only F Delta^2 "
                                    "takes the 1/2: (1/2) F Delta^2 + eps"))),
    # lesson 2: checked on exercises.replay_fixture, through what each hands to training
    Blank("distillation_loss", ("logits", "teacher_logits", "temperature"), strategies.distillation_loss, 2,
          ("lwf",), (
              (rm.distillation_no_t_squared, "the factor T^2 is missing: without it the gradients shrink by 1/T^2 "
                                             "and the old tasks' term loses weight as T grows"),
              (rm.distillation_teacher_not_softened, "the teacher's logits are not divided by T: both sides are "
                                                     "softened, softmax(teacher / T) and log_softmax(logits / T)"),
              (rm.distillation_summed, "sums over the samples; take the mean over the batch"),
              (rm.distillation_hard_targets, "uses the teacher's argmax as a hard label; distillation matches the "
                                             "whole softened distribution softmax(teacher / T)"),
              (rm.distillation_roles_swapped, "the roles are swapped: the targets are softmax(teacher_logits / T) "
                                              "and the log-probabilities are the student's, log_softmax(logits / T)")),
          exercises.replay_fixture, "lesson2", exercises.distillation_gradient),
    Blank("LwF", ("model", "tasks", "x", "step", "temperature"), strategies.LwF, 3, ("lwf",), (
        (rm.LwFNoCopy, "keeps the model itself, not a frozen copy: it goes on training, so the \"old\" outputs are "
                       "today's; store frozen_copy(model) in after_task"),
        (rm.LwFLatestHead, "replays through the latest earlier head only; in task-IL every earlier task's head keeps "
                           "its outputs (outputs_of_old_heads gives every one)"),
        (rm.LwFNoTemperature, "the Replay has no temperature (it defaults to 1); pass self.temperature"),
        (rm.LwFProbabilities, "the targets are probabilities; Replay takes the previous model's logits (the "
                              "distillation softens them itself)"),
        (rm.LwFHardLabels, "the targets are the previous model's argmax labels; LwF distils its soft outputs, the "
                           "logits"),
        (rm.LwFCurrentHeadToo, "also replays through the current task's head; only the earlier tasks' heads have "
                               "outputs to keep")),
        exercises.replay_fixture, "lesson2", exercises.lwf_targets),
    Blank("ExperienceReplay", ("model", "tasks", "x"), replay.ExperienceReplay, 3, ("er",), (
        (rm.BufferLatestOnly, "the buffer keeps the latest task only: add each finished task's samples to what is "
                              "stored, do not replace it"),
        (rm.BufferFirstOfStream, "keeps the first samples of the task's stream, not per_class of each label: the "
                                 "stream is not balanced (here 3 of label 0 and 1 of label 1)"),
        (rm.BufferWithReplacement, "samples with replacement (a draw repeats samples and can be larger than the "
                                   "memory); draw min(n, M) distinct samples, e.g. torch.randperm(M)[:n]"),
        (rm.BufferWholeMemory, "returns the whole memory, not min(n, M) samples: the replayed batch must be as large "
                               "as the current one"),
        (rm.BufferCurrentHead, "replays every sample through the current task's head; each stored sample keeps its "
                               "own task's head"),
        (rm.BufferAtTaskStart, "stores the task when it starts (before_task), so the current task is replayed while "
                               "it is learned and task 1 is trained twice; store it in after_task")),
        exercises.replay_fixture, "lesson2", exercises.buffer_contents),
    Blank("AGEM", ("model", "tasks", "x", "gradients"), replay.AGEM, 3, ("agem",), (
        (rm.AGEMAlwaysProjects, "projects every gradient; A-GEM projects only when g . g_ref < 0 (when the step "
                                "would raise the memory's loss)"),
        (rm.AGEMWrongSign, "the projection has the wrong sign: g - (g . g_ref / g_ref . g_ref) g_ref"),
        (rm.AGEMNormNotSquared, "divides by |g_ref|, not by g_ref . g_ref = |g_ref|^2"),
        (rm.AGEMUsesReference, "replaces g by g_ref; project g: g - (g . g_ref / g_ref . g_ref) g_ref"),
        (rm.AGEMRolesSwapped, "the roles are swapped: it is the batch's gradient g that is projected, along g_ref"),
        (rm.AGEMAlsoReplays, "also trains on the memory (replay returns samples); A-GEM only projects: replay "
                             "returns None")),
        exercises.replay_fixture, "lesson2", exercises.projected_gradients),
    Blank("herding_selection", ("features", "m"), icarl.herding_selection, 2, ("icarl",), (
        (rm.herding_nearest, "picks the m samples nearest to the mean in one go; herding picks one at a time, "
                             "each so that the mean of those chosen so far comes closest to the class mean"),
        (rm.herding_not_normalised, "the features are not L2-normalised (F.normalize(features, dim=1)) before "
                                    "the means are compared"),
        (rm.herding_repeats, "a sample can be chosen twice: exclude the ones already chosen"),
        (rm.herding_sum_not_mean, "compares the sum of the chosen features with the mean; divide by k, the number "
                                  "chosen so far including the candidate"),
        (rm.herding_farthest, "picks the samples farthest from the mean")),
        exercises.replay_fixture, "lesson2", exercises.herding_indices),
)}


def blanks_of(method):
    """The names of the blanks a strategy calls, in table order."""
    return [b.name for b in BLANKS.values() if method in b.methods]


def lesson_blanks(lesson):
    """{name: Blank} of one assignment's notebook, in table order."""
    return {n: b for n, b in BLANKS.items() if b.lesson == lesson}
