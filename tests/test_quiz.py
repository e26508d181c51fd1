"""The quizzes of the three lessons: every key is backed by statements the notebook teaches before the quiz.
The tables below name, for each question, its key and the sentences (in markdown cells above the quiz)
that decide each option, so a key that drifts from the teaching text, or teaching text that drifts
from a key, fails here."""
import ast
import math
import re
from pathlib import Path

import nbformat

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

HW14 = {
    "q01": ({"a", "d"}, ["learning a sequence of tasks with one model so that it keeps its earlier abilities and, "
                         "ideally, uses them to learn new tasks faster"]),
    "q02": ({"a", "b", "c"}, ["for task $t$ it trains on the training data of tasks $1, \\dots, t$ "
                              "together",
                              "**Joint training** is the upper bound", "it is the reference of the intransigence",
                              "while learning task $t$ the full data of tasks $1,\\dots,t-1$ is no longer available"]),
    "q03": ({"a", "d"}, ["a pixel permutation that is fixed for the whole task. Task 1 uses the identity permutation",
                         "Every task uses the MNIST digits with their usual labels 0-9"]),
    "q04": ({"a", "b", "c", "d"}, ["A negative BWT measures forgetting",
                                   "its best accuracy at any task's end before the last minus its final accuracy",
                                   "how much better than the untrained network the model does on a task **before** "
                                   "training on it",
                                   "how much worse a method learns each **new** task than a model trained on all the "
                                   "data so far"]),
    "q05": ({"a", "c", "e"}, ["the mean over **samples** of the squared **per-sample** gradient",
                              "EWC with the empirical Fisher therefore needs labels; with the true Fisher it would not",
                              "so the batch-mean version is about $1/B$ of the Fisher"]),
    "q06": ({"a", "b", "c", "e"}, ["This is what justifies a **quadratic** penalty",
                                   "it equals the expected Hessian of the negative log-likelihood",
                                   "its Hessian is $H \\approx N F + \\Lambda_0$",
                                   "are folded into one number, $\\lambda$",
                                   "one penalty **anchored at the latest solution** $\\theta^*_{t-1}$ with the "
                                   "**importances of all old tasks summed**"]),
    "q07": ({"a", "b", "d"}, ["too large, and the network can hardly move, so each new task is learned badly",
                              "Too small, and the method forgets like the baseline",
                              "$\\lambda$ is chosen on held-out **training** images, never on the test set"]),
    "q08": ({"a", "b", "d"}, ["uses the squared $\\ell_2$ norm of the whole output",
                              "The absolute value is taken of each **per-sample** gradient, and only then averaged "
                              "over samples", "the importance can be computed on unlabelled data"]),
    "q09": ({"a", "b"}, ["by the triangle inequality $\\big|\\frac1N\\sum_n g_n\\big| \\le \\frac1N\\sum_n |g_n|$",
                         "HW14's sample code took the absolute value of the batch mean",
                         "here the logits of the last layer, not softmax probabilities"]),
    "q10": ({"a", "b", "d"}, ["if a small change of $\\theta_i$ changes the function the network computes on old "
                              "inputs a lot, $\\theta_i$ is important", "gets $\\Omega_i = 0$, and $\\Omega$ is never "
                              "negative", "No loss and no label enters"]),
    "q11": ({"a", "b", "d"}, ["with no extra pass over data",
                              "$W_i$ is divided by how far the parameter moved during the task",
                              "The share of parameter $i$ in the **decrease** of the task's loss"]),
    "q12": ({"a", "c", "d"}, ["counting it would credit the new task with the old tasks' importance",
                              "Zenke et al.'s code takes the gradient of the unregularised loss (its `unreg_grads`), "
                              "and this notebook follows the code",
                              "The paper's equation writes the path integral of the gradient of \"the loss\" without "
                              "saying whether the penalty is part of it",
                              "Zenke et al.'s code therefore clamps SI's running $\\Omega$ at zero with a ReLU",
                              "each term is $-g_i(-\\eta g_i) = \\eta g_i^2 \\ge 0$",
                              "$W_i$ (and $\\Omega_i$) can end negative"]),
    "q13": ({"a", "c"}, ["so yes, SI needs labels", "It uses no data after a task ends"]),
    "q14": ({"a", "b", "c"}, ["a curvature-based importance (like EWC) and a path-based importance (like SI)",
                              "RWalk needs labels twice over: through its Fisher and through its path integral",
                              "RWalk divides by the distance in the Fisher (KL-divergence) metric",
                              "$$\\Omega_i = F_i + s_i .$$"]),
    "q15": ({"a", "b", "c"}, ["$F \\leftarrow 0.6\\,F_{\\text{old}} + 0.4\\,F_{\\text{task}}$",
                              "is **rebuilt from zero** by mixing in the seen tasks' test sets",
                              "$s \\leftarrow \\tfrac12 s_{\\text{old}} + \\tfrac12 s_{\\text{new}}$"]),
    "q16": ({"a", "c", "d"}, ["the KL divergence between the old and the new model's predictions is approximately "
                              "$\\tfrac12 \\sum_i F_i\\Delta_i^2$", "$\\epsilon$ keeps the score bounded",
                              "The original paper accumulates the score over short intervals during training"]),
    "q17": ({"a", "b", "e"}, ["EWC and MAS guard the old task very conservatively",
                              "**the distance used to build the guard**", "No labels are needed.",
                              "one gradient per slice, squared, then averaged over the $L$ slices"]),
    "q18": ({"a", "b", "c"}, ["(not one $\\bar\\phi$ per batch)",
                              "can be accumulated over the batches first and projected onto the slices afterwards",
                              "HW14's sample code first averaged the directions", "Square only after the sum over "
                              "samples"]),
    "q19": ({"a", "c", "d"}, ["EWC with the empirical Fisher therefore needs labels", "so yes, SI needs labels",
                              "RWalk needs labels twice over", "No loss and no label enters", "No labels are needed."]),
    "q20": ({"a", "c"}, ["records the old model's outputs (the old heads') on the **new** task's inputs",
                         "It stores no data of old tasks."]),
    "q21": ({"a", "b"}, ["stores a small episodic memory of examples of each old task, and projects every update so "
                         "that the loss on the stored examples of old tasks does not increase"]),
    "q22": ({"a", "b", "c"}, ["keeps a fixed budget of exemplars of the classes seen so far",
                              "classifies by the **nearest mean of exemplars** in feature space",
                              "It was designed for class-incremental learning."]),
    "q23": ({"a", "b", "c"}, ["its samples of old tasks, labelled by the previous model, are replayed together with "
                              "the new data", "At test time it needs to know the task, to select that task's weights",
                              "memory grows with the number of tasks", "No real old data is stored."]),
    "q24": ({"a", "b", "c", "e"}, ["the task identity is given at test time",
                                   "every task has the same label space, and the task identity is not given, and "
                                   "need not be inferred",
                                   "the model must infer both which task and which class an input belongs to",
                                   "This homework is domain-incremental",
                                   "Split MNIST (5 tasks of two digits each) with one 10-way head and no task "
                                   "identity"]),
    "q25": ({"a", "b", "d"}, ["a parameter penalty gives no training signal that separates new classes from old ones",
                              "About 20% is what a model gets when it only recognises the last task's two digits",
                              "Tuning $\\lambda$ did not change that in this course's runs",
                              "Replay presents old and new classes together",
                              "class-incremental: EWC 19.80%, SI 19.67%, MAS 19.52%, while GEM reaches 92.20% and "
                              "naive rehearsal (replaying stored examples) 90.78%",
                              "Van de Ven & Tolias (2019) report DGR at 91.24% in class-incremental"]),
}

LESSON2 = {
    "q01": ({"a"}, ["| **task-incremental (task-IL)** | **told the task** |"]),
    "q02": ({"b"}, ['one shared head answers "first or second digit of its pair" for every task',
                    '"second digit of its pair" (odd)']),
    "q03": ({"a", "b", "d"}, ["it answers almost every test image with one of the **two newest digits**",
                              "the cross-entropy lowers the logits of every digit absent from the batch, which are "
                              "the old tasks' digits", "**biased towards the newest classes**",
                              "even where the hidden features of old digits are still distinct"]),
    "q04": ({"a", "b", "c"}, ["HW14's Permuted MNIST is domain-IL: the ten labels stay the same and only the input "
                              "distribution changes", "one head of 2 outputs per task",
                              "EWC and SI keep some old digits in class-IL by hardly learning the new ones",
                              "a penalty does not solve class-IL", "## Why class-IL is hard"]),
    "q05": ({"a", "b", "d"}, ["p^{(n)} = \\operatorname{softmax}(\\hat z^{(n)} / T),\\quad q^{(n)} = "
                              "\\operatorname{softmax}(z^{(n)} / T)",
                              "the factor $T^2$ keeps its size comparable across temperatures",
                              "changes the loss by the teacher's entropy, a constant, and not its gradient",
                              "the targets are the old **logits**"]),
    "q06": ({"a", "b", "c"}, ["LwF (Li & Hoiem 2017) stores no data", "the **current batch's inputs** are also fed to "
                              "the old model", "a frozen copy of the model from the end of the last task",
                              "the batch through **every earlier task's head** of the old model",
                              "LwF keeps the first task's digits and learns the later tasks' badly"]),
    "q07": ({"a", "c", "d"}, ["each of the $2t$ classes keeps $m = \\lfloor K / 2t \\rfloor$ samples",
                              "every class stored earlier keeps only the **first** $m$ of its samples",
                              "from a stream ordered by class (all the 0s, then all the 1s) its first samples would be "
                              "one digit", "uniformly **without replacement**",
                              "The replayed batch is as large as the current one",
                              "Each sample keeps the head of **its own** task"]),
    "q08": ({"a"}, ["\\mathcal{L} = \\frac1t\\,\\mathcal{L}_{\\text{current}} + \\left(1 - \\frac1t\\right)"
                    "\\mathcal{L}_{\\text{replay}}"]),
    "q09": ({"a", "b", "d"}, ["If $g\\cdot g_{\\text{ref}} \\ge 0$ the step would not raise the memory's loss and $g$ "
                              "is kept", "Then $\\tilde g \\cdot g_{\\text{ref}} = 0$",
                              "Otherwise $g$ is projected onto the plane orthogonal to $g_{\\text{ref}}$",
                              "It must not train on the memory: `replay` returns `None`",
                              "**A-GEM** (Chaudhry et al. 2019, *Averaged GEM*) keeps one constraint",
                              "a quadratic program with one constraint per old task"]),
    "q10": ({"a"}, ["\\tilde g = g - \\frac{g \\cdot g_{\\text{ref}}}{g_{\\text{ref}} \\cdot g_{\\text{ref}}}\\, "
                    "g_{\\text{ref}}"]),
    "q11": ({"a", "b", "c"}, ["It asks that no step raise the loss of any old task",
                              "where $g_k$ is the gradient of task $k$'s stored samples",
                              "a quadratic program with one constraint per old task",
                              "uses the memory differently"]),
    "q12": ({"a", "b", "c"}, ["classifies **without the output layer**",
                              "classifier is **far less biased** towards the newest classes than the output layer",
                              "**iCaRL** (Rebuffi et al. 2017) is built for class-IL",
                              "It keeps a fixed budget of $K$ exemplars in all"]),
    "q13": ({"a", "c", "d"}, ["picks one exemplar at a time", "which the $m$ samples nearest to the mean, taken in "
                              "one go, do not", "An exemplar is chosen at most once", "L2-normalised features"]),
    "q14": ({"a", "b", "d"}, ["the previous autoencoder **generates** inputs, the previous classifier labels them",
                              "stores no images", "a generator good enough for MNIST needs training"]),
    "q15": ({"b"}, ['"regularization-based approaches (e.g., elastic weight consolidation) fail and ... replaying '
                    'representations of previous experiences seems required for solving this scenario"',
                    "LwF keeps the first task's digits and learns the later tasks' badly"]),
    "q16": ({"a", "b", "c"}, ["add a new column (a freshly initialised network of the same shape) for each task and "
                              "freeze the old columns", "prunes the task's least important weights",
                              "Both need the task identity at test time", "keeps one network of fixed size"]),
    "q17": ({"a", "c"}, ["the same for every item: a uniform sample of the stream",
                         "So item $s$ is kept with probability $\\frac{K}{s+1}$",
                         "**Reservoir sampling** (Vitter's *algorithm R*, 1985) needs none",
                         "where a reservoir keeps the classes in the stream's proportions"]),
    "q18": ({"a", "c"}, ["each of the $2t$ classes keeps $m = \\lfloor K / 2t \\rfloor$ samples",
                         "Lesson 1's rules of continual learning ask for a memory that does not grow with the tasks",
                         "That is why herding returns its choices as an ordered list",
                         "every class seen so far keeps $m = \\lfloor K / \\text{classes seen}\\rfloor$, so $m$ "
                         "shrinks as classes arrive"]),
}
LESSON3 = {
    "q01": ({"a", "b"}, ["chosen by the task at test time", "Told the task, such a method cannot forget what it froze",
                         "the task must be **known at test time** to choose its parts",
                         "This lesson's family does neither"]),
    "q02": ({"b", "d"}, ["each task gets a 784-106-106-2 network of 94,766",
                         "the networks together have about as many parameters as the shared MLP",
                         "a task's network is never trained after its task",
                         "nothing is shared, so nothing learnt on one task helps another"]),
    "q03": ({"a", "c", "d"}, ["switches off a fixed random 80% of each hidden layer's units for each task: the gate "
                              "is drawn once per task and never learnt",
                              "a fifth on average are also kept by any given other task",
                              "which protects the units the tasks share"]),
    "q04": ({"a", "c"}, ["keeps the one under which the network is most **confident**",
                         "a network can be confidently wrong under another task's context",
                         "What a later task trains cannot reach an earlier task's frozen parts",
                         "one head answers all ten digits"]),
    "q05": ({"a", "c"}, ["it keeps the largest in magnitude",
                         "When fewer weights are free than `keep`, every free one is kept",
                         "a frozen weight belongs to an earlier task and can never be given to this one"]),
    "q06": ({"a", "b", "c"}, ["the kept weights are fine-tuned for a few batches (50 here)",
                              "the pruned ones are set to 0 and stay free for the next tasks",
                              "A task answers with its own weights and those of the tasks before it",
                              "The hidden biases train on the first task only"]),
    "q07": ({"a", "b"}, ["so that the last task fills the network",
                         "with a share of one and a half times $1/T$: the capacity runs out before the last task",
                         "it trains only its own head", "PackNet keeps one owner per hidden weight"]),
    "q08": ({"a", "c", "d"}, ["keeps the one under which the network is most **confident**: the lowest entropy",
                              "It needs no labels",
                              "every context method fell at least 20 points from task-IL to class-IL",
                              "ER, which trains on stored samples of old tasks, needs no task identity at test time"]),
    "q09": ({"a", "b", "c"}, ["$a_t = \\sigma(s\\, e_t)$",
                              "Within each epoch $s$ is **annealed** from $1/s_{\\max}$ to $s_{\\max} = 400$",
                              "at test time $s = s_{\\max}$", "learns a **gate per hidden unit and task**"]),
    "q10": ({"a", "b", "d"}, ["The gradient that reaches $e_t$ through $\\sigma(s\\,e_t)$ is scaled by $s$",
                              "which rescales it to what it would be at $s_{\\max}$",
                              "It is applied to the task embeddings only, not to the weights"]),
    "q11": ({"a", "b", "c"}, ["frozen in proportion to the smaller of their two attentions",
                              "A weight between two units that earlier tasks both attend to (attention 1) does not "
                              "move",
                              "The first layer's inputs are pixels, which no gate closes: their attention is 1"]),
    "q12": ({"a", "b", "d"}, ["a freshly initialised network, for each task",
                              "each layer $i$ adds a **lateral adapter** of the earlier columns' activations of layer "
                              "$i - 1$", "and freeze the earlier columns",
                              "grows with every task, and faster than linearly"]),
    "q13": ({"a", "b", "d"}, ["EWC keeps one importance and one anchor, whatever the number of tasks",
                              "ER's memory is a fixed budget", "separate networks split a fixed number of parameters",
                              "XdG's gates and HAT's embeddings grow by a few hundred numbers a task"]),
    "q14": ({"a", "b"}, ["The entropy is that of the softmax, not of the logits, and the choice is the argmin over "
                         "contexts", "It needs no labels"]),
    "q15": ({"a", "b", "d"}, ["**Mean-IMM** averages the networks",
                              "**mode-IMM** weighs each parameter by each network's Fisher",
                              "each starting from the last (**weight-transfer**)", "so it runs in domain-IL"]),
    "q16": ({"a", "b", "c"}, ["where every $F_k$ is 0, mode-IMM is mean-IMM", "this course merges after every task",
                              "so that the expected weight is $\\theta$", "so the merge needs no old data"]),
}
TAUGHT = {"hw14_lifelong_learning.ipynb": HW14, "lesson2_scenarios_and_replay.ipynb": LESSON2,
          "lesson3_context_specific.ipynb": LESSON3}
lessons = pytest.mark.parametrize("name", list(TAUGHT))


def flat(text):
    return " ".join(text.split())


def notebook(name):
    return nbformat.read(NOTEBOOKS / name, as_version=4)


@lessons
def test_the_table_covers_the_quiz_and_its_keys_are_the_notebooks(name):
    nb = notebook(name)
    solutions = "\n".join(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id", "")
                          .startswith("quiz_"))
    keys = {q: ast.literal_eval(v) for q, v in re.findall(r"^(q\d\d) = (\{.*\})$", solutions, re.M)}
    hidden = {c.metadata.nbgrader["grade_id"]: ast.literal_eval(re.search(r"== (\{.*\}),", c.source).group(1))
              for c in nb.cells if re.fullmatch(r"q\d\d", c.metadata.get("nbgrader", {}).get("grade_id", ""))}
    assert keys == hidden == {q: key for q, (key, _) in TAUGHT[name].items()}


@lessons
def test_every_key_letter_is_an_option_and_the_visible_check_lists_the_options(name):
    nb = notebook(name)
    questions = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown" and "**q" in c.source)
    for q, (key, _) in TAUGHT[name].items():
        text = questions[questions.index(f"**{q}.**"):]
        text = text[:text.find("**q", 3)] if text.find("**q", 3) > 0 else text
        options = "".join(re.findall(r"^- \(([a-z])\)", text, re.M))
        assert key <= set(options) and key != set(options), q  # a key never selects every option
        check = next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == q)
        assert f'"{q}", "{options}")' in check


@lessons
def test_every_key_is_backed_by_statements_taught_before_the_quiz(name):
    nb = notebook(name)
    start = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith("## Quiz"))
    taught = [flat(c.source) for c in nb.cells[:start] if c.cell_type == "markdown"]
    missing = [(q, s) for q, (_, statements) in TAUGHT[name].items() for s in statements
               if not any(flat(s) in t for t in taught)]
    assert not missing, missing


def test_lesson_1s_lambda_claim_is_the_shipped_tables_tuning():
    """q25 (c) is false because tuning lambda did not help: the sentence quotes the class-IL grids and scores that
    `cl_course table` chose its lambdas from (benchmarks/results/split_mnist/results.json)."""
    import json
    tuning = json.loads((NOTEBOOKS.parent / "benchmarks" / "results" / "split_mnist" / "results.json").read_text())[
        "lambda_tuning"]
    taught = flat(next(c.source for c in notebook("hw14_lifelong_learning.ipynb").cells
                       if c.source.startswith("## Beyond regularisation")))
    for method, name in (("online-ewc", "online EWC"), ("si", "SI")):
        grid = {float(lam): score for lam, score in tuning[f"{method}|class"].items()}
        said = re.search(rf"tried for {name} \(\$10\^{{(\d+)}}\$ to \$10\^{{(\d+)}}\$\)(?: gave)? ([\d.]+)-([\d.]+)%",
                         taught)
        assert said, name
        assert [int(said[1]), int(said[2])] == [round(math.log10(lam)) for lam in (min(grid), max(grid))], name
        assert [said[3], said[4]] == [f"{min(grid.values()):.2f}", f"{max(grid.values()):.2f}"], name
