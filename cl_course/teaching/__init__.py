"""The teaching layer: the blanks students write (blanks.py, the table of them), their typical mistakes as
code (mistakes.py, replay_mistakes.py), how a class blank is driven (exercises.py), the self-checks'
fixtures (fixtures.py) and the self-checks (selfcheck.py).

It sits above the library (the rest of cl_course, which it may import) and below the lessons
(cl_course.lessons) and the grader, which import it; it imports neither (tests/test_layers.py).
"""
