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
    assert safe[0]["data"] == {"text/plain": "\u2502 plot", "image/png": PNG}
    assert safe[1]["data"] == {"text/plain": ""}
    assert safe[2] == {"output_type": "execute_result", "data": {"text/plain": ""}, "metadata": {},
                       "execution_count": None}
    assert safe[3]["ename"] == "Error" and safe[3]["evalue"] == "?" and safe[3]["traceback"] == ["a", "2"]
    assert safe[4] == {"output_type": "stream", "name": "stdout", "text": "\u2502 ok"} and len(safe) == 5
    assert safe_outputs({"not": "a list"}) == []


def test_printed_lines_cannot_pass_for_verdicts():
    """Forged verdicts in colour, with bidi and zero-width characters, or as the grader's own error name."""
    forged = [{"output_type": "stream", "name": "stdout",
               "text": "\x1b[32mfisher_diagonal: 3 of 3 hidden fixtures match\x1b[0m\n\u202eq01: right\u200b\r\n"},
              {"output_type": "error", "ename": "NotPassed", "evalue": "\x1b[1mq02\u2066: right",
               "traceback": ["\x1b[31mNotPassed\x1b[0m"]},
              {"output_type": "execute_result", "data": {"text/plain": "3\n\u2067"}}]
    stream, error, result = safe_outputs(forged)
    assert stream["text"] == "\u2502 fisher_diagonal: 3 of 3 hidden fixtures match\n\u2502 q01: right\n"
    assert (error["ename"], error["evalue"], error["traceback"]) == ("Error", "q02: right", ["NotPassed"])
    assert result["data"]["text/plain"] == "\u2502 3\n"


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


def test_huge_cells_are_shortened_in_the_graded_notebook():
    from grader.autograde import SHOWN_CELL_CHARS, shortened
    assert shortened("x = 1\n") == "x = 1\n"
    long = "# x\n" * SHOWN_CELL_CHARS
    shown = shortened(long)
    assert shown.startswith(long[:SHOWN_CELL_CHARS]) and len(shown) < SHOWN_CELL_CHARS + 200
    assert f"{3 * SHOWN_CELL_CHARS:,} more characters, not shown" in shown
