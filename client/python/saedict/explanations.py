"""Explanations as the client returns them (c.explanations, c.set_explanation,
c.search_explanations, c.import_explanations) — dataclasses with
``records()`` / ``to_frame()`` for tables.

>>> from saedict.explanations import Explanation, ExplanationHit, ExplanationSearch
>>> e = Explanation("0123456789abcdef", "sae", 3, "plural nouns", "human", 0.5, "", "", None, "")
>>> ExplanationSearch([ExplanationHit(e, 1.25, "[[plural]] nouns", ["plural"])], 1,
...                   ["plural"]).records()[0]["snippet"]
'[[plural]] nouns'
"""
import datetime
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from saedict.results import _frame

__all__ = ["Explanation", "ExplanationHit", "ExplanationSearch", "ImportProblem", "ImportResult"]

_EXPLANATION_COLUMNS = ["dictionary_id", "feature", "id", "text", "source", "score", "author",
                        "explainer_model", "created_at"]


@dataclass
class Explanation:
    """Text attached to a feature by a person or a pipeline. ``score`` is None
    when the writer gave none; ``weights_sha256`` names the weights it was
    written for (it differs from the dictionary's after a replace)."""
    id: str
    dictionary_id: str
    feature: int
    text: str
    source: str
    score: Optional[float]
    author: str
    explainer_model: str
    created_at: Optional[datetime.datetime]  # UTC
    weights_sha256: str

    def record(self) -> Dict[str, Any]:
        return {k: getattr(self, k) for k in _EXPLANATION_COLUMNS}


def explanation(p) -> Explanation:
    created = None
    if p.HasField("created_at"):
        created = datetime.datetime.fromtimestamp(
            p.created_at.seconds + p.created_at.nanos * 1e-9, tz=datetime.timezone.utc)
    return Explanation(p.id, p.dictionary_id, p.feature, p.text, p.source,
                       p.score if p.HasField("score") else None, p.author, p.explainer_model,
                       created, p.weights_sha256)


def explanation_records(explanations: List[Explanation]) -> List[Dict[str, Any]]:
    return [e.record() for e in explanations]


@dataclass
class ExplanationHit:
    """One search result: the explanation, its BM25 score, the text with the
    matched words marked [[like this]], and which query terms it contains."""
    explanation: Explanation
    score: float
    snippet: str
    matched_terms: List[str]


@dataclass
class ExplanationSearch:
    """c.search_explanations: hits best first, how many explanations matched
    at least one term, and the query as it was tokenized."""
    hits: List[ExplanationHit]
    matching: int
    query_terms: List[str]

    def __len__(self) -> int:
        return len(self.hits)

    def __iter__(self):
        return iter(self.hits)

    def records(self) -> List[Dict[str, Any]]:
        return [{"rank": i, "score": h.score, "snippet": h.snippet, **h.explanation.record()}
                for i, h in enumerate(self.hits)]

    def to_frame(self):
        """A pandas DataFrame of records() (needs pandas)."""
        return _frame(self.records(), ["rank", "score", "snippet"] + _EXPLANATION_COLUMNS)


def explanation_search(r) -> ExplanationSearch:
    return ExplanationSearch([ExplanationHit(explanation(h.explanation), h.score, h.snippet,
                                             list(h.matched_terms)) for h in r.hits],
                             r.matching_explanations, list(r.query_terms))


@dataclass
class ImportProblem:
    """A row or file the import skipped: line is 1-based, 0 for a whole file."""
    file_name: str
    line: int
    message: str


@dataclass
class ImportResult:
    """c.import_explanations: rows stored, rows and files rejected (the first
    1000 listed in problems), files read."""
    imported: int
    rejected: int
    files: int
    problems: List[ImportProblem] = field(default_factory=list)


def import_result(r) -> ImportResult:
    return ImportResult(r.imported, r.rejected, r.files,
                        [ImportProblem(p.file_name, p.line, p.message) for p in r.problems])
