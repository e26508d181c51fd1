# nbgrader's configuration of a cl-course course folder; `python -m grader setup` copies it there.
# `python -m grader` reads it, and nbgrader's own tools (e.g. `nbgrader formgrader` to review
# grades by hand) work on the same folder and gradebook.
c = get_config()  # type: ignore[name-defined]  # noqa: F821 (nbgrader defines it)

c.CourseDirectory.course_id = "cl-course"
# No assignment_id: the course has several (grader/assignments.py); every command names its own.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
# Submissions are never run by nbgrader's Execute: python -m grader runs them in a sandbox and
# judges their outputs itself. These settings only matter to nbgrader's own autograde.
c.Execute.timeout = 30
c.Execute.allow_errors = True
