"""Student content made inert: outputs from a whitelist, markdown as text, report strings escaped,
verdict sentences made from fields."""
import base64

import pytest

from grader.inert import clean_text, fenced, markdown_text, one_line, safe_outputs
from grader.verdict import Verdict

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20).decode()


def test_outputs_are_rebuilt_from_a_whitelist():
    forged = [
        {"output_type": "display_data", "data": {"text/html": "<script>x</script>", "text/plain": "plot",
                                                 "application/javascript": "x()", "image/png": PNG}},
        {"output_type": "display_data", "data": {"image/png": 'AAAA" onerror="x()'}},
        {"output_type": "execute_result", "data": {"text/markdown": "<img onerror=x>"}, "execution_count": 3},
        {"output_type": "error", "ename": "<b>Bad</b>", "evalue": "\ud800", "traceback": ["a", 2]},
        {"output_type": "stream", "name": "<x>", "text": "no"},
        {"output_type": "stream", "name": "stdout", "text": "ok"},
        "junk", {"output_type": "update_display_data"}]
    safe = safe_outputs(forged)
    assert safe[0]["data"] == {"text/plain": "plot", "image/png": PNG}
    assert safe[1]["data"] == {"text/plain": ""}
    assert safe[2] == {"output_type": "execute_result", "data": {"text/plain": ""}, "metadata": {},
                       "execution_count": None}
    assert safe[3]["ename"] == "Error" and safe[3]["evalue"] == "?" and safe[3]["traceback"] == ["a", "2"]
    assert safe[4] == {"output_type": "stream", "name": "stdout", "text": "ok"} and len(safe) == 5
    assert safe_outputs({"not": "a list"}) == []


def test_text_is_encodable_and_one_line():
    assert clean_text("a\ud800b\x00c").encode("utf-8") == "a?b\ufffdc".encode()
    assert one_line("x\n# heading\x1b]0;title\x07\u202eend") == "x # heading ]0;title end"


def test_markdown_shows_as_itself():
    assert markdown_text("# Owned\n| a |\n![x](http://e/x.png) <script>") == \
        r"\# Owned \| a \| \!\[x\]\(http\://e/x\.png\) \<script\>"
    block = fenced("```\n<script>alert(1)</script>\n````")
    assert block.startswith("`````text\n") and block.endswith("\n`````")


@pytest.mark.parametrize("verdict, message", [
    (Verdict("f", 3.0, "right", matched=3, fixtures=3), "f: 3 of 3 hidden fixtures match the reference"),
    (Verdict("f", 1.0, "partial", "values differ", 1, 3),
     "f: 1 of 3 hidden fixtures match the reference (values differ)"),
    (Verdict("q01", 1.0, "right", answer=["a"]), "q01: right"),
    (Verdict("q01", 0.0, "wrong", answer=[]), "q01: not right (answered nothing)"),
    (Verdict("f", 0.0, "timed out", "the cell used more than 30 s", cell="f"),
     "f: timed out (its cell f): the cell used more than 30 s"),
])
def test_sentences_are_made_from_the_fields(verdict, message):
    assert verdict.message == message and verdict.record(3)["message"] == message


def test_an_unknown_cause_is_a_bug():
    with pytest.raises(ValueError, match="unknown cause"):
        Verdict("f", 0.0, "oops")
