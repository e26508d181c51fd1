"""A part's verdict as data: its cause and evidence are fields; the sentence a student and a TA
read is made from them, and nothing downstream parses it back."""
from dataclasses import asdict, dataclass
from typing import Any

# Why a part got its score. The first three are about the answer; the rest mean it was not judged.
CAUSES = ("right", "partial", "wrong", "not answered", "missing", "crashed", "timed out", "tampered", "grader error")
NOT_JUDGED = CAUSES[4:]  # the report lists these: the student lost points to something other than the answer


@dataclass(frozen=True)
class Verdict:
    part: str                    # the function or the question
    score: float
    cause: str                   # one of CAUSES
    detail: str = ""             # the evidence in words: what differs, what was raised, which limit was hit
    matched: int | None = None   # hidden fixtures that match the reference (function parts)
    fixtures: int | None = None  # hidden fixtures tried
    answer: list[str] | None = None  # the letters answered (quiz parts)
    cell: str | None = None      # the cell at fault when it is not the part's own test (e.g. where it is defined)

    def __post_init__(self) -> None:
        if self.cause not in CAUSES:
            raise ValueError(f"unknown cause {self.cause!r}")

    @property
    def message(self) -> str:
        if self.fixtures is not None and self.cause in ("right", "partial", "wrong"):
            text = f"{self.part}: {self.matched} of {self.fixtures} hidden fixtures match the reference"
            return text + (f" ({self.detail})" if self.detail else "")
        if self.cause == "right":
            return f"{self.part}: right"
        if self.cause == "wrong":
            answered = ", ".join(self.answer) if self.answer else "nothing"
            return f"{self.part}: not right (answered {answered})" + (f"; {self.detail}" if self.detail else "")
        where = f" (its cell {self.cell})" if self.cell else ""
        return f"{self.part}: {self.cause}{where}" + (f": {self.detail}" if self.detail else "")

    def record(self, points: float) -> dict[str, Any]:
        """What grading/<student>.json keeps of it."""
        return dict(asdict(self), message=self.message, points=points)
