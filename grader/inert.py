"""Student-controlled content made inert before it reaches a TA's screen: the feedback HTML that
TAs open, report.md, and the terminal. Everything a submission produced is untrusted: its
markdown, its outputs (which its code can also forge) and the text of its exceptions."""
import base64
import binascii
import re
from typing import Any

MAX_TEXT = 20000
PNG_BYTES = 2 << 20
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,99}$")
MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~&:\"'=])")
# What a student's output may not carry into feedback: terminal escapes (colours, titles, cursor moves),
# bidi overrides and isolates, zero-width characters, and every other control character but newline and tab
ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|.)?", re.S)
INVISIBLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
STUDENT_MARK = "\u2502 "  # starts every line the student's code printed: verdicts never start so
GRADER_ENAMES = {"NotPassed"}  # the grader's own error name in test cells

Output = dict[str, Any]  # a notebook cell's output, as nbformat 4 writes it


def clean_text(value: object, limit: int = MAX_TEXT) -> str:
    """Text that any writer can encode: unpaired surrogates and NULs replaced, at most `limit` characters."""
    text = value if isinstance(value, str) else str(value)
    text = text[:limit].encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")
    return text


def one_line(value: object, limit: int = 300) -> str:
    """A single line of text: control characters (newlines, terminal escapes) shown as spaces."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]+", " ", clean_text(value, limit)).strip()


def plain_text(value: object, limit: int = MAX_TEXT) -> str:
    """clean_text without terminal escapes and invisible or direction-changing characters."""
    return INVISIBLE.sub("", ESCAPES.sub("", clean_text(value, limit)))


def marked(value: object, limit: int = MAX_TEXT) -> str:
    """plain_text with every line marked as the student's, so that no printed line passes for a verdict."""
    return "".join(STUDENT_MARK + line for line in plain_text(value, limit).splitlines(keepends=True))


def markdown_text(value: object, limit: int = 300) -> str:
    """A string shown as itself in markdown: one line, every markdown and HTML character escaped."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", one_line(value, limit))


def png(data: object) -> str | None:
    """Base64 PNG data, or None when it is not exactly that."""
    if not isinstance(data, str) or len(data) > PNG_BYTES * 4 // 3 + 4:
        return None
    try:
        raw = base64.b64decode(data.replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        return None
    return base64.b64encode(raw).decode() if raw.startswith(b"\x89PNG\r\n\x1a\n") else None


def safe_outputs(outputs: object) -> list[Output]:
    """The outputs a harness record claims, rebuilt from a whitelist: streams, errors, and text or PNG
    data. HTML, markdown, JavaScript and anything else are dropped (text/plain stays)."""
    safe = []
    for o in outputs if isinstance(outputs, list) else []:
        kind = o.get("output_type") if isinstance(o, dict) else None
        if kind == "stream" and o.get("name") in ("stdout", "stderr"):
            safe.append({"output_type": "stream", "name": o["name"], "text": marked(o.get("text", ""))})
        elif kind == "error":
            ename = o.get("ename") if isinstance(o.get("ename"), str) and NAME.match(o["ename"]) else "Error"
            lines = o.get("traceback") if isinstance(o.get("traceback"), list) else []
            safe.append({"output_type": "error", "ename": "Error" if ename in GRADER_ENAMES else ename,
                         "evalue": plain_text(o.get("evalue", ""), 2000),
                         "traceback": [plain_text(line, 2000) for line in lines[-3:]]})
        elif kind in ("display_data", "execute_result") and isinstance(o.get("data"), dict):
            data = {"text/plain": marked(o["data"].get("text/plain", ""))}
            image = png(o["data"].get("image/png"))
            if image:
                data["image/png"] = image
            out = {"output_type": kind, "data": data, "metadata": {}}
            safe.append(out | {"execution_count": None} if kind == "execute_result" else out)
    return safe


def fenced(text: str) -> str:
    """Markdown that shows `text` verbatim as a code block: nothing in it is rendered."""
    text = clean_text(text)
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    return f"{fence}text\n{text}\n{fence}"
