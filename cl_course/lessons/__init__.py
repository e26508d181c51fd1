"""The lessons' helpers: what each notebook calls (notebook.py for HW14, lesson2.py for lesson 2), so that
a notebook explains and plots while the logic lives here.

The top layer of cl_course: it may import the library and the teaching layer (cl_course.teaching); nothing
in cl_course imports it (tests/test_layers.py).
"""
