"""Similarity among submissions (grader/similarity.py): a copy survives renaming and reordering, independent
answers and the course's own code score low, and the report is inert."""
from grader.similarity import Fingerprint, fingerprint, pairs, report_html, tokens, without
from grader.tests.make_corpus import PABLO_FISHER, PABLO_MAS, QUINTON_FISHER, QUINTON_MAS

# the corpus's pablo, and quinton's copy of his answers: other names, two independent lines swapped
HONEST_LOOP = PABLO_FISHER + "\n\n" + PABLO_MAS
COPY = QUINTON_FISHER + "\n\n" + QUINTON_MAS

# another student's own answer to the same blanks
HONEST_VECTORISED = '''def fisher_diagonal(model, batches):
    params = dict(model.named_parameters())
    sums = {name: 0.0 for name in params}
    total = 0
    for x, y in batches:
        logp = F.log_softmax(torch.func.functional_call(model, params, (x,)), dim=1)
        picked = logp.gather(1, y[:, None]).squeeze(1)
        for i in range(len(x)):
            g = torch.autograd.grad(picked[i], list(params.values()), retain_graph=True)
            for name, gi in zip(params, g):
                sums[name] = sums[name] + gi.detach() ** 2
        total += len(x)
    return {name: s / total for name, s in sums.items()}


def mas_importance(model, batches):
    omega = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    batches = list(batches)
    for x, _ in batches:
        model.zero_grad()
        (model(x) ** 2).sum(dim=1).mean().backward()
        for name, p in model.named_parameters():
            omega[name] += p.grad.abs() / len(batches)
    return omega
'''


def test_names_and_strings_are_normalised_and_api_names_kept():
    assert [t for t, _ in tokens("loss = F.cross_entropy(out, 'x')  # c")] == \
        ["N", "=", "N", ".", "cross_entropy", "(", "N", ",", "S", ")"]


def test_a_renamed_and_reordered_copy_ranks_above_independent_answers():
    docs = [fingerprint("ann", HONEST_LOOP), fingerprint("bo", HONEST_VECTORISED), fingerprint("cy", COPY)]
    ranked = pairs(docs)
    assert (ranked[0].a, ranked[0].b) == ("ann", "cy") and ranked[0].score > 0.6, ranked
    assert all(p.score < 0.5 for p in ranked[1:]), ranked  # below the report's default threshold


def test_the_courses_own_code_is_no_evidence():
    reference = set(fingerprint("", HONEST_LOOP).hashes)
    a, b = (without(fingerprint(s, HONEST_LOOP), reference) for s in ("ann", "bo"))
    assert pairs([a, b])[0].score == 0.0 and not a.hashes


def test_the_report_is_inert():
    evil = HONEST_LOOP + "\n# </pre><script>alert(1)</script>\x1b[2J\u202e\n"
    docs = {s: fingerprint(s, code) for s, code in (("ann", evil), ("cy", COPY))}
    page = report_html("hw14", pairs(list(docs.values())), docs, 0.5)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "\x1b" not in page and "\u202e" not in page and "<mark>" in page
    assert "never a grade" in page


def test_an_empty_or_untokenisable_answer_scores_zero():
    empty = Fingerprint("x", "", {})
    broken = fingerprint("y", "def f(:\n  return ((( 'unterminated")
    assert all(p.score == 0.0 for p in pairs([empty, broken, fingerprint("z", HONEST_LOOP)]))
