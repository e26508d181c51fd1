"""Runs inside the sandbox, as the student's process: execute a submission's cells and record what
the judge needs. It decides nothing: probes record the student's outputs, and the grader judges
them in its own process against the reference on fixtures the student cannot compute.

  python harness.py CHANNEL_FD  < JOB

JOB (JSON, on stdin): {"cells": [{"index", "kind": "code" | "function", "source" | "name"}],
                       "seeds": [fixture seeds], "max_output": characters per cell and stream}
CHANNEL_FD: a pipe to the grader, which takes JSON lines in exactly this order: {"start": index},
then {"done": index, "outputs": [...], "probe": ...} for each cell of the job, then {"end": true}.
Anything else on it stops the run as tampering; so a student's code that writes to it only loses
the cell it ran in. The harness leaves with os._exit, so that no atexit hook or thread of the
student's runs after the end.

Standard library, IPython and the student edition of cl_course only: nothing here is secret.
"""
import base64
import io
import json
import os
import shutil
import sys
import time
import traceback
from typing import Any, NoReturn

# the student's code may rebind builtins; the probes keep the real ones
_callable = callable
MAX_DISPLAYS = 50  # display outputs kept per cell
MAX_VALUES = 100_000  # numbers in a probe's result (the fixture's model has 74 parameters)
Entry = dict[str, Any]  # JSON: a record sent to the grader, an output, a probe's result


class CappedText(io.TextIOBase):
    """A cell's stdout or stderr, kept up to `limit` characters."""

    parts: list[str]

    def __init__(self, limit: int):
        self.limit, self.parts, self.size, self.dropped = limit, [], 0, 0

    def writable(self) -> bool:
        return True

    def write(self, text: object) -> int:
        text = str(text)
        room = max(self.limit - self.size, 0)
        self.parts.append(text[:room])
        self.size += min(len(text), room)
        self.dropped += len(text) - min(len(text), room)
        return len(text)

    def value(self) -> str:
        note = f"\n... {self.dropped:,} more characters of output dropped by the grader\n" if self.dropped else ""
        return "".join(self.parts) + note


def serialise(value: object, depth: int = 0) -> Entry:
    """What a probe returned, as JSON the grader can check: tensors as shape + numbers. Sizes are
    capped (far above any fixture's) so that a wrong result stays a small record."""
    import torch
    if isinstance(value, torch.Tensor):
        if value.numel() > MAX_VALUES:
            return {"type": f"tensor of {value.numel():,} values"}
        t = value.detach().to("cpu", torch.float64) if value.is_floating_point() else value.detach().cpu()
        return {"shape": list(t.shape), "data": t.flatten().tolist()}
    if isinstance(value, dict) and depth == 0:
        return {"dict": {str(k)[:100]: serialise(v, 1) for k, v in list(value.items())[:MAX_VALUES // 100]}}
    return {"type": type(value).__name__}


def probe_function(namespace: dict[str, Any], name: str, seeds: list[int]) -> Entry:
    """The student's function (or class) `name` on the blank's fixture drawn from each seed."""
    from cl_course.teaching import selfcheck
    from cl_course.teaching.blanks import BLANKS
    function = namespace.get(name)
    if not _callable(function):
        return {"missing": f"{name} is not defined" if function is None else f"{name} is not a function"}
    results: list[Entry] = []
    for seed in seeds:
        try:
            results.append({"value": serialise(selfcheck.call(name, function, BLANKS[name].fixture(seed)))})
        except BaseException as e:  # the student's exception is the result, even SystemExit
            results.append({"error": f"{type(e).__name__}: {str(e)[:300]}"})
    return {"results": results}


def cell_line(error: BaseException) -> int | None:
    """The line of the cell's own code where `error` came out (answers assigned above it count), or None."""
    tb, line = error.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "<module>" and line is None:  # the first: the cell's, not an import's
            line = tb.tb_lineno
        tb = tb.tb_next
    return line if not isinstance(error, SyntaxError) else 0


def main(channel_fd: str) -> NoReturn:
    job = json.loads(sys.stdin.buffer.read())
    channel = int(channel_fd)
    fonts, config_dir = os.environ.get("CL_GRADE_FONTS"), os.environ.get("MPLCONFIGDIR")
    if fonts and config_dir and os.path.isdir(fonts):  # matplotlib's font list, built once by the grader
        shutil.copytree(fonts, config_dir, dirs_exist_ok=True)

    def record(entry: Entry) -> None:
        data = (json.dumps(entry) + "\n").encode()
        while data:
            data = data[os.write(channel, data):]

    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config
    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    outputs: list[Entry] = []
    limit = job["max_output"]

    def capture_display(data: dict[str, Any], metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        keep = {k: v for k, v in data.items() if k in ("text/plain", "text/markdown", "text/html", "image/png")}
        if isinstance(keep.get("image/png"), bytes):
            keep["image/png"] = base64.b64encode(keep["image/png"]).decode()
        if sum(len(str(v)) for v in keep.values()) <= limit and len(outputs) < MAX_DISPLAYS:
            outputs.append({"output_type": "display_data", "data": keep, "metadata": {}})

    # IPython's methods replaced on this shell: the outputs go to the record (mypy: no assigning to methods)
    shell.display_pub.publish = capture_display  # type: ignore[method-assign, assignment]
    shell._showtraceback = lambda etype, evalue, stb: None  # type: ignore[method-assign]  # errors are recorded below, without colours
    shell.displayhook.write_output_prompt = lambda: None  # type: ignore[method-assign]
    shell.displayhook.write_format_data = lambda format_dict, md_dict=None: outputs.append(  # type: ignore[method-assign]
        {"output_type": "execute_result", "data": {"text/plain": str(format_dict.get("text/plain", ""))[:limit]},
         "metadata": {}, "execution_count": None})

    harness = os.getpid()
    for cell in job["cells"]:
        index = cell["index"]
        record({"start": index})
        started = time.monotonic()
        outputs.clear()
        stdout, stderr = CappedText(limit), CappedText(limit)
        sys.stdout, sys.stderr = stdout, stderr
        probe = None
        try:
            if cell["kind"] == "code":
                result = shell.run_cell(cell["source"], store_history=False)
                error = result.error_before_exec or result.error_in_exec
                if error is not None:
                    outputs.append({"output_type": "error", "ename": type(error).__name__, "evalue": str(error)[:limit],
                                    "traceback": traceback.format_exception(error)[-3:], "line": cell_line(error)})
            else:
                probe = probe_function(shell.user_ns, cell["name"], job["seeds"])
        except BaseException as e:  # the harness goes on whatever the student's code raised
            probe = probe or {"missing": f"{type(e).__name__} while probing"}
        finally:
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        streams = [{"output_type": "stream", "name": n, "text": s.value()}
                   for n, s in (("stdout", stdout), ("stderr", stderr)) if s.value()]
        if os.getpid() != harness:  # a process the student's code forked must not go on grading
            os._exit(0)
        record({"done": index, "outputs": streams + outputs, "probe": probe, "seconds": time.monotonic() - started})
    record({"end": True})
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1])
