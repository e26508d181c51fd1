"""Runs inside the sandbox, as the student's process: execute a submission's cells and record what
the judge needs. It decides nothing: probes record the student's outputs, and the grader judges
them in its own process against the reference on fixtures the student cannot compute.

  python harness.py JOB RESULTS

JOB (JSON): {"cells": [{"index", "kind": "code" | "function" | "answer", "source" | "name"}],
             "seeds": [fixture seeds], "skip": {index: reason}, "max_output": characters per cell}
RESULTS: JSON lines appended as cells run, {"start": index} then {"done": index, "outputs": [...],
"probe": ...}, so what ran before a crash or a kill is kept.

Standard library, IPython and the student edition of cl_course only: nothing here is secret.
"""
import base64
import io
import json
import os
import sys
import time
import traceback

# the student's code may rebind builtins; the probes keep the real ones
_callable, _isinstance, _set, _sorted, _str, _type = callable, isinstance, set, sorted, str, type


class CappedText(io.TextIOBase):
    """A cell's stdout or stderr, kept up to `limit` characters."""

    def __init__(self, limit):
        self.limit, self.parts, self.size, self.dropped = limit, [], 0, 0

    def writable(self):
        return True

    def write(self, text):
        text = str(text)
        room = max(self.limit - self.size, 0)
        self.parts.append(text[:room])
        self.size += min(len(text), room)
        self.dropped += len(text) - min(len(text), room)
        return len(text)

    def value(self):
        note = f"\n... {self.dropped:,} more characters of output dropped by the grader\n" if self.dropped else ""
        return "".join(self.parts) + note


def serialise(value):
    """What a probe returned, as JSON the grader can check: tensors as shape + numbers."""
    import torch
    if isinstance(value, torch.Tensor):
        t = value.detach().to("cpu", torch.float64) if value.is_floating_point() else value.detach().cpu()
        return {"shape": list(t.shape), "data": t.flatten().tolist()}
    if isinstance(value, dict):
        return {"dict": {str(k): serialise(v) for k, v in value.items()}}
    return {"type": type(value).__name__}


def probe_function(namespace, name, seeds):
    from cl_course import selfcheck
    function = namespace.get(name)
    if not _callable(function):
        return {"missing": f"{name} is not defined" if function is None else f"{name} is not a function"}
    results = []
    for seed in seeds:
        try:
            results.append({"value": serialise(selfcheck.call(name, function, selfcheck.fixture(seed)))})
        except BaseException as e:  # the student's exception is the result, even SystemExit
            results.append({"error": f"{type(e).__name__}: {str(e)[:300]}"})
    return {"results": results}


def probe_answer(namespace, name):
    if name not in namespace:
        return {"missing": f"{name} is not answered"}
    value = namespace[name]
    if _isinstance(value, _str):
        value = [value]
    if _isinstance(value, (_set, frozenset, list, tuple)) and all(_isinstance(v, _str) for v in value):
        return {"answer": _sorted(value)}
    return {"type": _type(value).__name__}


def main(job_path, results_path):
    job = json.loads(open(job_path).read())
    results = os.open(results_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def record(entry):
        os.write(results, (json.dumps(entry) + "\n").encode())

    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config
    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    outputs = []
    limit = job["max_output"]

    def capture_display(data, metadata=None, **kwargs):
        keep = {k: v for k, v in data.items() if k in ("text/plain", "text/markdown", "text/html", "image/png")}
        if isinstance(keep.get("image/png"), bytes):
            keep["image/png"] = base64.b64encode(keep["image/png"]).decode()
        if sum(len(str(v)) for v in keep.values()) <= limit:
            outputs.append({"output_type": "display_data", "data": keep, "metadata": {}})

    shell.display_pub.publish = capture_display
    shell._showtraceback = lambda etype, evalue, stb: None  # errors are recorded below, without colours
    shell.displayhook.write_output_prompt = lambda: None
    shell.displayhook.write_format_data = lambda format_dict, md_dict=None: outputs.append(
        {"output_type": "execute_result", "data": {"text/plain": str(format_dict.get("text/plain", ""))[:limit]},
         "metadata": {}, "execution_count": None})

    harness = os.getpid()
    for cell in job["cells"]:
        index = cell["index"]
        if str(index) in job["skip"]:
            continue
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
                                    "traceback": traceback.format_exception(error)[-3:]})
            elif cell["kind"] == "function":
                probe = probe_function(shell.user_ns, cell["name"], job["seeds"])
            else:
                probe = probe_answer(shell.user_ns, cell["name"])
        except BaseException as e:  # the harness goes on whatever the student's code raised
            probe = probe or {"missing": f"{type(e).__name__} while probing"}
        finally:
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        streams = [{"output_type": "stream", "name": n, "text": s.value()}
                   for n, s in (("stdout", stdout), ("stderr", stderr)) if s.value()]
        if os.getpid() != harness:  # a process the student's code forked must not go on grading
            os._exit(0)
        record({"done": index, "outputs": streams + outputs, "probe": probe, "seconds": time.monotonic() - started})


if __name__ == "__main__":
    main(*sys.argv[1:3])
