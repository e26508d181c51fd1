"""The blanks students fill in, one row each: everything the self-checks, the training code, the
autograder, the typical-mistake messages and the tests know about a blank. A new lesson's blanks
are new rows.

Every blank is checked on a small fixture (fixtures.fixture), not on HW14's sizes: the model is a
6-5-4-3 MLP, x is [B, 6] in three batches of 5, 3 and 2 samples (N = 10), there are 3 classes and 5 SCP
directions [5, 3]; dictionaries are {parameter name: tensor shaped like the parameter}. `batches`
arrives as training passes it, a one-shot iterable: loop over it once, counting the samples there. Lesson 2's
blanks have a fixture of their own (exercises.replay_fixture), and so have lesson 3's
(context_exercises.context_fixture).
"""
from collections.abc import Callable
from dataclasses import dataclass

from .. import context, hat, icarl, imm, importance, packnet, progressive, replay, strategies
from . import context_exercises as cx
from . import context_mistakes as cm
from . import exercises, mistakes
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
    updates: tuple = ()     # the arguments it may change in place; the self-check refuses a change to any other
    variants: tuple = ()    # (another right implementation, what it does differently): its result is right too
    diagnose: Callable = None  # (got, expected, inputs) -> what a record that differs says, or None: for exercises
    #                            whose typical mistakes draw at random, named by what they do, not by exact values
    factors: Callable = None   # inputs -> [(factor, what a result off by it means)], beside the sample counts'

    def run(self, answer, inputs):
        """The result the checks compare: {parameter or entry name: tensor}."""
        if self.exercise is not None:
            return self.exercise(answer, inputs)
        return answer(*(inputs[k] for k in self.arguments))


BLANKS = {b.name: b for b in (
    Blank("fisher_diagonal", ("model", "batches"),
          lambda model, batches: importance.fisher_diagonal(model, batches, "empirical"), 3,
          ("ewc", "online-ewc", "rwalk", "xdg-ewc", "imm-mode"), (
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
                                                    "(5, 3 and 2 here) that is not the mean over samples; sum over "
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
                                                  "average"),
              (mistakes.fisher_of_probability, "squares the gradient of the probability p(y|x); the Fisher is of "
                                               "the LOG-likelihood: differentiate -log p(y|x), which "
                                               "F.cross_entropy computes from the logits"),
              (mistakes.fisher_softmax_into_cross_entropy, "F.cross_entropy is given probabilities (a softmax); it "
                                                           "takes the logits and applies log_softmax itself"),
              (mistakes.fisher_halved, "got = expected / 2: the 1/2 belongs to the penalty, (lambda/2) sum_i F_i "
                                       "(theta_i - theta*_i)^2, which training adds; the Fisher has none"))),
    Blank("mas_importance", ("model", "batches"),
          lambda model, batches: importance.mas_importance(model, batches, per_sample=True), 2, ("mas",), (
              (mistakes.mas_batch_mean, "takes |.| of the batch-mean gradient; MAS takes |.| of each sample's "
                                        "gradient, then the mean"),
              (mistakes.mas_squared, "squares the gradient; MAS uses its absolute value"),
              (mistakes.mas_no_abs, "the absolute value is missing"),
              (mistakes.mas_norm_not_squared, "differentiates ||f(x)||, not the squared norm ||f(x)||^2"),
              (mistakes.mas_softmax, "uses softmax probabilities; MAS uses the network's output f(x), the logits"),
              (mistakes.mas_mean_of_batch_means, "averages the batches' means: with batches of unequal size (5, 3 "
                                                 "and 2 here) that is not the mean over samples; sum over every "
                                                 "sample and divide by their total number N"),
              (mistakes.mas_half_squared_norm, "differentiates (1/2)||f(x)||^2 (got = expected / 2); MAS's "
                                               "importance is the gradient of ||f(x)||^2 itself, without the 1/2"),
              (mistakes.mas_mean_over_outputs, "averages the squared outputs over the C outputs (got = expected / C, "
                                               "C = 3 here: .pow(2).mean() on a sample's outputs); ||f(x)||^2 is "
                                               "their sum, .pow(2).sum()"),
              (mistakes.mas_grad_not_zeroed, "the gradients are not zeroed between samples: backward() adds to "
                                             "p.grad, so each |.| is of the running sum of all gradients so far; "
                                             "zero them before each sample (model.zero_grad()) or use "
                                             "torch.autograd.grad"),
              (mistakes.mas_abs_of_batch_sums, "takes |.| of each batch's summed gradient (the gradient of the "
                                               "batch's sum of ||f(x)||^2); MAS takes |.| of each sample's own "
                                               "gradient, then the mean over samples"),
              (mistakes.mas_l1_norm, "differentiates the L1 norm sum_c |f_c(x)|; MAS uses the squared L2 norm "
                                     "||f(x)||^2 = sum_c f_c(x)^2"))),
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
                                             "gradients; zero them before each slice or use torch.autograd.grad"),
              (mistakes.scp_phi_summed, "phi is the SUM of the outputs over the samples (got = N^2 x expected, "
                                        "N = 10 here: the square takes the factor N twice); phi is their mean"),
              (mistakes.scp_not_squared, "the slices' gradients are not squared: Gamma is the mean over slices of "
                                         "(d xi_l . phi / d theta)^2"),
              (mistakes.scp_slices_averaged_twice, "averages over the slices twice (got = expected / L, L = 5 "
                                                   "here); divide the sum of the L squares by L once"),
              (mistakes.scp_phi_mean_of_batch_means, "phi averages the batches' mean outputs: with batches of unequal "
                                                     "size (5, 3 and 2 here) that is not the mean over all samples; "
                                                     "sum the outputs over every sample and divide by N"))),
    Blank("si_path_step", ("path_integral", "gradients", "penalty_gradients", "before", "after"),
          importance.si_path_step, 3, ("si", "rwalk", "xdg-si"), updates=("path_integral",), mistakes=(
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
    Blank("si_importance", ("path_integral", "delta", "eps"), importance.si_importance, 1, ("si", "xdg-si"), (
        (mistakes.si_absolute_delta, "divides by |Delta| + eps; SI divides by Delta^2 + eps"),
        (mistakes.si_delta_not_squared, "Delta is not squared: SI divides by Delta^2 + eps"),
        (mistakes.si_eps_inside_square, "eps is inside the square, (Delta + eps)^2; SI divides by Delta^2 + eps"),
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
                                    "takes the 1/2: (1/2) F Delta^2 + eps"),
        (mistakes.rwalk_fisher_squared, "squares F with Delta, (1/2) (F Delta)^2; only Delta is squared: "
                                        "(1/2) F Delta^2 + eps"),
        (mistakes.rwalk_no_eps, "the damping eps is missing from the denominator (1/2) F Delta^2 + eps"))),
    # lesson 2: checked on exercises.replay_fixture, through what each hands to training
    Blank("distillation_loss", ("logits", "teacher_logits", "temperature"), strategies.distillation_loss, 2,
          ("lwf",), (
              (rm.distillation_no_t_squared, "the factor T^2 is missing: without it the gradients shrink by 1/T^2 "
                                             "and the old tasks' term loses weight as T grows"),
              (rm.distillation_times_t, "the loss is multiplied by T, not by T^2 (its gradient is T times too small)"),
              (rm.distillation_teacher_not_softened, "the teacher's logits are not divided by T: both sides are "
                                                     "softened, softmax(teacher / T) and log_softmax(logits / T)"),
              (rm.distillation_student_not_softened, "the student's logits are not divided by T (only the "
                                                     "teacher's are): both sides are softened, "
                                                     "log_softmax(logits / T) too"),
              (rm.distillation_no_temperature, "the temperature is not used: divide both logits by T and multiply "
                                               "the loss by T^2"),
              (rm.distillation_summed, "sums over the samples; take the mean over the batch"),
              (rm.distillation_kl_mean, "F.kl_div's default reduction='mean' averages over all N x C entries, which "
                                        "divides the loss by the number of classes C as well; use "
                                        "reduction='batchmean' (the mean over samples)"),
              (rm.distillation_hard_targets, "uses the teacher's argmax as a hard label; distillation matches the "
                                             "whole softened distribution softmax(teacher / T)"),
              (rm.distillation_probabilities_not_log, "multiplies the targets by the student's probabilities; the "
                                                      "cross-entropy takes their logarithm, log_softmax(logits / T)"),
              (rm.distillation_roles_swapped, "the roles are swapped: the targets are softmax(teacher_logits / T) "
                                              "and the log-probabilities are the student's, log_softmax(logits / T)")),
          exercises.replay_fixture, "lesson2", exercises.distillation_gradient,
          factors=exercises.distillation_factors),
    Blank("LwF", ("model", "tasks", "x", "step", "temperature"), strategies.LwF, 3, ("lwf",), (
        (rm.LwFNoCopy, exercises.TARGETS_ARE_TODAYS),
        (rm.LwFTeacherIsModel, exercises.TARGETS_ARE_TODAYS),
        (rm.LwFFirstTeacherKept, "the targets are the first task's model's outputs: after_task must keep a new frozen "
                                 "copy at the end of every task, not only the first"),
        (rm.LwFLatestHead, "replays through the latest earlier head only; in task-IL every earlier task's head keeps "
                           "its outputs (outputs_of_old_heads gives every one)"),
        (rm.LwFCurrentHeadOnly, "replays through the current task's head, whose outputs are being learned now; the "
                                "old model's outputs to keep are those of every EARLIER task's head "
                                "(outputs_of_old_heads)"),
        (rm.LwFCurrentHeadToo, "also replays through the current task's head; only the earlier tasks' heads have "
                               "outputs to keep"),
        (rm.LwFNoHead, "the Replay has no head, so every replayed row goes through head 0; pass the heads that "
                       "outputs_of_old_heads returns: Replay(xs, logits, head, ...)"),
        (rm.LwFNoTemperature, "the Replay has no temperature (it defaults to 1); pass self.temperature"),
        (rm.LwFTemperatureTwo, "the Replay's temperature is 2 whatever the strategy was built with; pass "
                               "self.temperature"),
        (rm.LwFProbabilities, "the targets are probabilities; Replay takes the previous model's logits (the "
                              "distillation softens them itself)"),
        (rm.LwFHardLabels, "the targets are the previous model's argmax labels; LwF distils its soft outputs, the "
                           "logits")),
        exercises.replay_fixture, "lesson2", exercises.lwf_targets),
    Blank("ExperienceReplay", ("model", "tasks", "x", "budget"), replay.ExperienceReplay, 3, ("er",), (
        (rm.BufferLatestOnly, exercises.BUFFER["latest only"]),
        (rm.BufferFirstTaskAgain, exercises.BUFFER["not stored"]),
        (rm.BufferAtTaskStart, exercises.BUFFER["first task"]),
        (rm.BufferFirstOfStream, exercises.BUFFER["not balanced"]),
        (rm.BufferPerTask, exercises.BUFFER["not balanced"]),
        (rm.BufferNotShrunk, exercises.BUFFER["not shrunk"]),
        (rm.BufferWithReplacement, exercises.BUFFER["repeats"]),
        (rm.BufferWholeMemory, exercises.BUFFER["draw size"]),
        (rm.BufferFirstDrawn, exercises.BUFFER["not random"]),
        (rm.BufferSameDraw, exercises.BUFFER["not random"]),
        (rm.BufferCurrentHead, exercises.BUFFER["another head"])),
        exercises.replay_fixture, "lesson2", exercises.buffer_contents, diagnose=exercises.diagnose_buffer),
    Blank("AGEM", ("model", "tasks", "x", "gradients"), replay.AGEM, 3, ("agem",), (
        (rm.AGEMAlwaysProjects, "projects every gradient; A-GEM projects only when g . g_ref < 0 (when the step "
                                "would raise the memory's loss)"),
        (rm.AGEMInvertedCondition, "the condition is inverted: it projects when g . g_ref > 0 and keeps g when it is "
                                   "negative; project only when g . g_ref < 0"),
        (rm.AGEMWrongSign, "the projection has the wrong sign: g - (g . g_ref / g_ref . g_ref) g_ref"),
        (rm.AGEMNormNotSquared, "divides by |g_ref|, not by g_ref . g_ref = |g_ref|^2"),
        (rm.AGEMUsesReference, "replaces g by g_ref; project g: g - (g . g_ref / g_ref . g_ref) g_ref"),
        (rm.AGEMAlongReference, "keeps the part of g along g_ref and drops the rest; the projection removes that "
                                "part: g - (g . g_ref / g_ref . g_ref) g_ref"),
        (rm.AGEMRolesSwapped, "the roles are swapped: it is the batch's gradient g that is projected, along g_ref"),
        (rm.AGEMNotWrittenBack, "the gradient in p.grad is unchanged when g . g_ref < 0: the projection is computed "
                                "but not written back; set_flat_gradient(model, projected)"),
        (rm.AGEMPerParameter, "projects each parameter's gradient on its own piece of g_ref; A-GEM projects the whole "
                              "gradient, all parameters flattened into one vector (flat_gradient), with one dot "
                              "product"),
        (rm.AGEMCurrentHead, "the reference gradient sends the stored samples through the current task's head; "
                             "each stored sample goes through its own task's head: memory_gradient(model, x, y, "
                             "head) with the stored heads"),
        (rm.AGEMAlsoReplays, "also trains on the memory (replay returns samples); A-GEM only projects: replay "
                             "returns None")),
        exercises.replay_fixture, "lesson2", exercises.projected_gradients),
    Blank("herding_selection", ("features", "m"), icarl.herding_selection, 2, ("icarl",), (
        (rm.herding_nearest, "picks the m samples nearest to the mean in one go; herding picks one at a time, "
                             "each so that the mean of those chosen so far comes closest to the class mean"),
        (rm.herding_farthest, "picks the samples farthest from the mean"),
        (rm.herding_argmax, "each step takes the candidate that moves the chosen mean FARTHEST from the class "
                            "mean (argmax); herding takes the nearest (argmin)"),
        (rm.herding_not_normalised, "the features are not L2-normalised (F.normalize(features, dim=1)) before "
                                    "the means are compared"),
        (rm.herding_raw_target, "the class mean is taken of the raw features; it is the mean of the L2-normalised "
                                "ones, like every candidate's"),
        (rm.herding_raw_running_sum, "the running sum adds the raw features of the chosen samples; add their "
                                     "L2-normalised features, which the candidates and the mean are made of"),
        (rm.herding_repeats, "a sample can be chosen twice: exclude the ones already chosen"),
        (rm.herding_sum_not_mean, "compares the sum of the chosen features with the mean; divide by k, the number "
                                  "chosen so far including the candidate"),
        (rm.herding_divided_by_m, "divides the chosen features' sum by m at every step; the mean of those chosen "
                                  "so far divides by k, their number including the candidate")),
        exercises.replay_fixture, "lesson2", exercises.herding_indices,
        variants=((rm.herding_renormalised_mean, "the class mean L2-normalised again (as Rebuffi et al.'s code)"),)),
    Blank("reservoir_slots", ("reservoir_budget", "stream_seed"), replay.reservoir_slots, 2, ("er",), (
        (rm.reservoir_off_by_one, "item s is kept with probability budget / s, not budget / (s + 1): j is drawn "
                                  "from 0..s-1; draw it from 0..s, s + 1 values (Chaudhry et al.'s code has this "
                                  "off-by-one)"),
        (rm.reservoir_one_chance_per_call, "every item of a call is kept with probability budget / (seen + 1); item "
                                           "i of the call is the stream's item s = seen + i, kept with "
                                           "probability budget / (s + 1)"),
        (rm.reservoir_chance_after_the_call, "every item of a call is kept with probability budget / (seen + n); "
                                             "item i of the call is the stream's item s = seen + i, kept with "
                                             "probability budget / (s + 1)"),
        (rm.reservoir_always_replaces, "once the memory is full every item replaces a stored one: keep item s only "
                                       "with probability budget / (s + 1)"),
        (rm.reservoir_never_replaces, "once the memory is full nothing is ever replaced: the memory keeps the "
                                      "stream's first items; keep item s with probability budget / (s + 1)"),
        (rm.reservoir_ring_buffer, "every item goes to slot s % budget: a ring buffer keeps the newest items, not a "
                                   "uniform sample of the stream"),
        (rm.reservoir_dropped_to_slot_zero, "dropped items are written to slot 0: mark them -1"),
        (rm.reservoir_slot_out_of_range, "a slot equal to the budget is returned (j <= budget kept): keep j only "
                                         "when j < budget"),
        (rm.reservoir_fixed_slot, "a kept item always goes to slot s % budget; it replaces a uniformly random slot "
                                  "(j itself, drawn uniformly from 0..s)"),
        (rm.reservoir_fills_one_slot, "while the memory fills, item i of a call must go to slot seen + i (the "
                                      "stream's position), not every item to slot `seen`")),
        exercises.replay_fixture, "lesson2", exercises.reservoir_record,
        variants=((rm.reservoir_uniform_slot, "kept with probability budget / (s + 1), then a uniformly random "
                                              "slot"),)),
    Blank("prune_mask", ("weight", "free", "keep"), packnet.prune_mask, 2, ("packnet",), (
        (cm.prune_signed, "keeps the largest weights by their signed value, so large negative weights are pruned; "
                          "PackNet keeps the largest in magnitude, |weight|"),
        (cm.prune_smallest, "keeps the smallest |weight| among the free ones (an ascending sort, or "
                            "topk(largest=False)); PackNet keeps the largest and prunes the rest"),
        (cm.prune_frozen_too, "keeps weights that are not free: a frozen weight belongs to an earlier task and cannot "
                              "be given to this one; rank the free weights only (the frozen ones below every free "
                              "one, e.g. torch.where(free, weight.abs(), -1))"),
        (cm.prune_layer_then_free, "takes the keep largest of the whole layer, then the free ones among them: frozen "
                                   "weights take places, so fewer than keep are kept; rank the free weights only"),
        (cm.prune_uncapped, "when fewer than keep weights are free it fills up with frozen ones: keep at most as many "
                            "as are free, min(keep, free.sum())"),
        (cm.prune_transposed, "keeps weights at the wrong places: the positions are those of the transposed layer "
                              "(weight.T flattened) written into a mask in the layer's own order; flatten and write "
                              "back in the same order"),
        (cm.prune_one_too_few, "keeps one weight too few: the threshold is the keep-th largest free magnitude itself, "
                               "so keep those >= it, not > it"),
        (cm.prune_pruned_returned, "returns the free weights it prunes, not those it keeps"),
        (cm.prune_in_use_returned, "returns every weight in use, the frozen ones too; return only those this task "
                                   "keeps (PackNet marks them with its number)")),
        cx.context_fixture, "lesson3", cx.kept_weights,
        variants=((cm.prune_threshold, "the free weights >= the keep-th largest free magnitude"),)),
    Blank("hat_gradient_mask", ("a_out", "a_in"), hat.hat_gradient_mask, 2, ("hat",), (
        (cm.hat_max, "uses the larger attention, 1 - max(a_out, a_in); a weight is frozen as much as the LESS attended "
                     "of its two units: 1 - min(a_out[i], a_in[j])"),
        (cm.hat_product, "uses the product a_out a_in; HAT takes the smaller of the two attentions: "
                         "1 - min(a_out[i], a_in[j])"),
        (cm.hat_attention, "returns min(a_out, a_in) itself, the attention; the gradient's factor is its complement, "
                           "1 - min(a_out[i], a_in[j]): a weight that both its units attend to does not move"),
        (cm.hat_output_only, "uses the output unit's attention alone, 1 - a_out[i]: that is the first layer's mask, "
                             "whose inputs no gate closes (a_in = 1); a hidden layer's takes its input unit's too, "
                             "1 - min(a_out[i], a_in[j])"),
        (cm.hat_input_only, "uses the input unit's attention alone, 1 - a_in[j]; the output unit's counts too: "
                            "1 - min(a_out[i], a_in[j])"),
        (cm.hat_complements_product, "multiplies the two complements, (1 - a_out) (1 - a_in); HAT takes "
                                     "1 - min(a_out[i], a_in[j])"),
        (cm.hat_mean, "averages the two attentions; HAT takes the smaller: 1 - min(a_out[i], a_in[j])"),
        (cm.hat_thresholded, "thresholds the attention at 0.5; HAT uses the attentions as they are (near 0 or 1 once "
                             "annealed, but not exactly): 1 - min(a_out[i], a_in[j])")),
        cx.context_fixture, "lesson3", cx.gradient_factors,
        variants=((cm.hat_larger_complement, "max(1 - a_out, 1 - a_in), the same number"),)),
    Blank("compensation", ("e", "s", "s_max"), hat.compensation, 1, ("hat",), (
        (cm.compensation_cosh_swapped, "the cosh arguments are swapped: cosh(s e) is in the numerator, cosh(e) in the "
                                       "denominator"),
        (cm.compensation_scales_swapped, "s and s_max are swapped: the factor is s_max / s times the ratio of the "
                                         "slopes"),
        (cm.compensation_no_plus_one, "the + 1 after each cosh is missing: s_max (cosh(s e) + 1) / (s (cosh(e) + 1))"),
        (cm.compensation_no_s, "got = s x expected: the s in the denominator is missing"),
        (cm.compensation_no_s_max, "got = expected / s_max: the factor s_max is missing"),
        (cm.compensation_slopes_only, "only the ratio of the sigmoid's slopes, (cosh(s e) + 1) / (cosh(e) + 1): the "
                                      "factor s_max / s is missing"),
        (cm.compensation_reciprocal, "the reciprocal of the compensation: s_max (cosh(s e) + 1) / (s (cosh(e) + 1)), "
                                     "not its inverse"),
        (cm.compensation_exp, "exp where the formula has cosh: s_max (cosh(s e) + 1) / (s (cosh(e) + 1))")),
        cx.context_fixture, "lesson3", cx.embedding_factors, factors=cx.compensation_factors,
        variants=((cm.compensation_unclamped, "without the clamp (the same number where |s e| <= 50)"),
                  (cm.compensation_sigmoid_slopes, "(s_max / s) sigma'(e) / sigma'(s e)"),
                  (cm.compensation_half_angle, "cosh(v) + 1 written as 2 cosh(v / 2)^2"))),
    Blank("lateral_forward", ("columns", "x"), progressive.lateral_forward, 3, ("progressive",), (
        (cm.lateral_same_layer, "the adapter of layer i reads the earlier columns' activations of layer i; it reads "
                                "those of the layer before, earlier[j][i - 1], the same layer i reads in its own "
                                "column"),
        (cm.lateral_after_relu, "the lateral is added after the ReLU; it is added before: h_i = relu(W h_{i-1} + b + "
                                "lateral)"),
        (cm.lateral_on_first_layer, "the first layer gets a lateral too (laterals[i - 1] with i = 0 is laterals[-1], "
                                    "the logits' adapter); the first layer reads x alone, which every column shares: "
                                    "laterals start at the second layer"),
        (cm.lateral_not_on_logits, "the logits get no lateral; every layer from the second on adds its adapter's "
                                   "lateral, the output layer too"),
        (cm.lateral_no_alpha, "alpha is not applied: the adapter is U relu(V (alpha h))"),
        (cm.lateral_alpha_on_output, "alpha scales the lateral's output; it scales the earlier columns' activations, "
                                     "before V: U relu(V (alpha h))"),
        (cm.lateral_no_adapter_relu, "the adapter has no ReLU between V and U: U relu(V (alpha h))"),
        (cm.lateral_relu_on_logits, "the logits go through a ReLU; the last layer's output is the logits as they are"),
        (cm.lateral_pre_activations, "the activations returned are W h + b + lateral before the ReLU; return relu of "
                                     "it (the next layer and the next columns' laterals read h)"),
        (cm.lateral_not_detached, "a gradient of the logits reaches the earlier columns: read their activations "
                                  "detached (torch.cat(...).detach()), so that a frozen column never changes"),
        (cm.lateral_detached_after_adapter, "the adapters get no gradient: the lateral is detached after the adapter "
                                            "(or computed under torch.no_grad()), so alpha, V and U never train; "
                                            "detach the earlier columns' activations only, before the adapter")),
        cx.context_fixture, "lesson3", cx.column_activations,
        variants=((cm.lateral_written_out, "the adapter written out, U relu(V (alpha h))"),)),
    Blank("mode_merge", ("networks", "fishers"), imm.mode_merge, 2, ("imm-mode",), (
        (cm.merge_mean, "averages the networks with equal weights (mean-IMM), or weighs every network by the same "
                        "Fisher; mode-IMM weighs each network's parameter by its own Fisher: "
                        "sum_k F_k theta_k / sum_k F_k"),
        (cm.merge_not_normalised, "the Fisher-weighted sum is not divided by sum_k F_k: a parameter's weights must add "
                                  "up to 1"),
        (cm.merge_divided_by_count, "divides the Fisher-weighted sum by the number of networks K; divide by the sum "
                                    "of the Fishers, sum_k F_k"),
        (cm.merge_alpha_above_only, "got = expected / K (K networks): alpha_k = 1/K is in the numerator only; equal "
                                    "alphas cancel (leave them out, or put them in both sums)"),
        (cm.merge_fisher_squared, "weighs by F_k^2; mode-IMM weighs by F_k itself"),
        (cm.merge_inverse_fisher, "weighs by 1 / F_k, as if the Fisher were a variance; it is a precision: weigh by "
                                  "F_k"),
        (cm.merge_each_fisher_normalised, "normalises each network's Fisher over its own entries (F_k / F_k.sum()); a "
                                          "parameter's weights are normalised across the networks: divide by "
                                          "sum_k F_k of that same entry"),
        (cm.merge_pairwise, "merges one network at a time, weighing the merge so far by the latest network's Fisher "
                            "alone, so earlier networks lose weight; weigh it by the sum of the Fishers merged so far, "
                            "or merge all at once")),
        cx.context_fixture, "lesson3", factors=cx.merge_factors,
        variants=((cm.merge_without_eps, "without the EPS (the same within tolerance where the Fishers are "
                                         "positive)"),
                  (cm.merge_one_at_a_time, "one network at a time, the merged Fishers summed"))),
    Blank("lowest_entropy", ("scores",), context.lowest_entropy, 2,
          ("hat", "packnet", "xdg", "xdg-si", "xdg-ewc", "separate", "progressive"), (
              (cm.entropy_highest, "picks the context of HIGHEST entropy (argmax, or the entropy without its minus "
                                   "sign): the network is most confident where the entropy is lowest"),
              (cm.entropy_of_logits, "takes the entropy of the logits themselves; take it of their softmax over the "
                                     "classes, p = softmax(scores, dim=-1)"),
              (cm.entropy_unclamped, "log(p) of a probability that underflows to 0 gives 0 x log 0 = NaN (sample 0 "
                                     "has one), and argmin picks the NaN; clamp p before the log "
                                     "(p.clamp_min(1e-12)), or use log_softmax"),
              (cm.entropy_softmax_over_contexts, "the softmax is over the contexts (dim 0); it is over the classes, "
                                                 "dim=-1"),
              (cm.entropy_logits_as_log_probabilities, "uses the logits as log-probabilities, -sum p s; log p is "
                                                       "log_softmax(s) = s - logsumexp(s), which differs from context "
                                                       "to context"),
              (cm.entropy_largest_probability, "picks the context of the largest top probability, max_c p_c; the "
                                               "entropy weighs every class's probability: pick its lowest"),
              (cm.entropy_largest_logit, "picks the context of the largest logit; a context's logits shifted by a "
                                         "constant have the same softmax: compare the entropies of the softmax"),
              (cm.entropy_one_context_for_all, "picks one context for the whole batch (the lowest mean entropy); "
                                               "choose one per sample")),
          cx.context_fixture, "lesson3", cx.chosen_contexts,
          variants=((cm.entropy_of_log_softmax, "log p from log_softmax"),
                    (cm.entropy_of_categorical, "torch.distributions.Categorical's entropy"))),
)}


def blanks_of(method):
    """The names of the blanks a strategy calls, in table order."""
    return [b.name for b in BLANKS.values() if method in b.methods]


def lesson_blanks(lesson):
    """{name: Blank} of one assignment's notebook, in table order."""
    return {n: b for n, b in BLANKS.items() if b.lesson == lesson}
