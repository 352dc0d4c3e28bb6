"""The values the client returns: documents, feature pages, examples,
similarity results, families and comparisons — dataclasses with numpy
arrays, and ``records()`` / ``to_frame()`` where a table is natural
(``to_frame`` needs pandas; ``records`` is a list of dicts and needs nothing).

>>> from saedict.results import ContextToken, Example, ExampleList
>>> e = Example("web", 7, 2, 1.5, [ContextToken(5, " a", 0.0), ContextToken(6, " cat", 1.5)], 1)
>>> e.text
' a[[ cat]]'
>>> ExampleList([e]).records()
[{'corpus': 'web', 'doc_id': 7, 'position': 2, 'value': 1.5, 'text': ' a[[ cat]]'}]
"""
import datetime
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from saedict.v1 import saedict_pb2 as pb

__all__ = [
    "Document", "ContextToken", "Example", "ExampleList", "HistogramBin", "Histogram",
    "FeatureStats", "FeaturePage", "QuantileBin", "TopActivations", "Neighbour", "SimilarResult",
    "FamilyMember", "FamilyProvenance", "FeatureFamily", "Family", "FamilyPage", "FeatureMatches",
    "Comparison",
]


def _frame(records: List[Dict[str, Any]], columns: List[str]):
    try:
        import pandas
    except ImportError as e:
        raise ImportError("to_frame() needs pandas, which is not installed "
                          "(`apt install python3-pandas` or `pip install pandas`); "
                          "records() gives the same rows as a list of dicts") from e
    return pandas.DataFrame.from_records(records, columns=columns)


@dataclass
class Document:
    """A stored document: token ids and (when the corpus has them) display strings."""
    corpus: str
    doc_id: int
    token_ids: np.ndarray                 # int32 [n]
    token_strings: List[str] = field(default_factory=list)  # [] or n strings

    @property
    def text(self) -> str:
        """The token strings concatenated, or the ids separated by spaces."""
        if self.token_strings:
            return "".join(self.token_strings)
        return " ".join(str(t) for t in self.token_ids)

    def __len__(self) -> int:
        return len(self.token_ids)


@dataclass
class ContextToken:
    """One token of an example's context window."""
    token_id: int
    token: str     # display string ("" when the corpus has none)
    value: float   # the feature's activation on it (0 when inactive)


@dataclass
class Example:
    """A token where the feature fires, with its context window."""
    corpus: str
    doc_id: int
    position: int         # token position in the document
    value: float          # the activation
    context: List[ContextToken]
    peak_index: int       # index of `position` within `context`

    @property
    def text(self) -> str:
        """The context as text with the peak token in [[ ]] (ids where no strings)."""
        parts = []
        for i, t in enumerate(self.context):
            piece = t.token if t.token else f" {t.token_id}"
            parts.append(f"[[{piece}]]" if i == self.peak_index else piece)
        return "".join(parts)

    @property
    def context_values(self) -> np.ndarray:
        return np.array([t.value for t in self.context], np.float32)

    @property
    def context_token_ids(self) -> np.ndarray:
        return np.array([t.token_id for t in self.context], np.int32)

    def record(self) -> Dict[str, Any]:
        return {"corpus": self.corpus, "doc_id": self.doc_id, "position": self.position,
                "value": self.value, "text": self.text}


class ExampleList(list):
    """A list of Example with its columns as numpy arrays and as records."""

    @property
    def doc_ids(self) -> np.ndarray:
        return np.array([e.doc_id for e in self], np.uint64)

    @property
    def positions(self) -> np.ndarray:
        return np.array([e.position for e in self], np.int64)

    @property
    def values(self) -> np.ndarray:
        return np.array([e.value for e in self], np.float32)

    def records(self) -> List[Dict[str, Any]]:
        """One dict per example: corpus, doc_id, position, value, text."""
        return [e.record() for e in self]

    def to_frame(self):
        """A pandas DataFrame of records() (needs pandas)."""
        return _frame(self.records(), ["corpus", "doc_id", "position", "value", "text"])


@dataclass
class HistogramBin:
    lower: float  # inclusive
    upper: float  # exclusive
    count: int


class Histogram(list):
    """Log-spaced bins (quarter octaves) over the active values; empty bins left out."""

    @property
    def lower_bounds(self) -> np.ndarray:
        return np.array([b.lower for b in self], np.float32)

    @property
    def upper_bounds(self) -> np.ndarray:
        return np.array([b.upper for b in self], np.float32)

    @property
    def counts(self) -> np.ndarray:
        return np.array([b.count for b in self], np.int64)


@dataclass
class FeatureStats:
    """A feature's statistics over every token stored for its dictionary."""
    count: int          # tokens on which it is active
    total_tokens: int
    density: float      # count / total_tokens
    mean: float         # of the active values
    std: float
    max: float
    histogram: Histogram

    def to_dict(self) -> Dict[str, Any]:
        """The scalar statistics as a dict (the histogram left out)."""
        return {k: v for k, v in asdict(self).items() if k != "histogram"}


@dataclass
class Neighbour:
    """A feature of `dictionary_id` and the cosine of its direction to the query."""
    dictionary_id: str
    feature: int
    cosine: float


@dataclass
class SimilarResult:
    """The neighbours found in one searched dictionary, cosine descending."""
    dictionary_id: str
    neighbours: List[Neighbour]
    exact: bool             # the exact top-N (False: an approximate index answered)
    index_factory: str      # the FAISS factory string of the index ("Flat", ...)

    @property
    def features(self) -> np.ndarray:
        return np.array([n.feature for n in self.neighbours], dtype=np.uint32)

    @property
    def cosines(self) -> np.ndarray:
        return np.array([n.cosine for n in self.neighbours], dtype=np.float64)


@dataclass
class FamilyMember:
    """A relative of the asked feature, with the scores of the parent/child pair
    it belongs to: (member, its child on the chain) for a parent, (asked,
    member) for a child, (parent, member) for a sibling."""
    feature: int
    relation: str           # "parent", "child" or "sibling"
    pair_parent: int
    pair_child: int
    decoder_cosine: float
    coverage: float         # P(pair_parent fires | pair_child fires)
    jaccard: float
    phi: float
    count: int              # tokens the member fires on
    reason: str
    nesting_level: int = 0  # Matryoshka level (1 = coarsest prefix); 0: none declared


@dataclass
class FamilyProvenance:
    """When and over what the families were computed, and with which thresholds."""
    computed_at: datetime.datetime  # UTC
    tokens: int
    documents: int
    min_decoder_cosine: float
    min_coverage: float
    min_child_count: int
    neighbours_per_feature: int
    seconds: float


@dataclass
class FeatureFamily:
    """The family of one feature."""
    dictionary_id: str
    feature: int
    count: int                  # tokens the feature fires on
    parents: List[FamilyMember]   # nearest first, up to the root
    children: List[FamilyMember]  # coverage descending
    siblings: List[FamilyMember]  # coverage descending
    root: int                   # the feature itself when it has no parent
    family_size: int            # 1 when it has no family
    provenance: FamilyProvenance
    nesting_level: int = 0


@dataclass
class Family:
    """One family of list_families."""
    root: int
    members: List[int]      # root first, then the descendants ascending
    depth: int              # longest chain below the root
    root_count: int


@dataclass
class FamilyPage:
    """One page of list_families: families by size descending, then root."""
    families: List[Family]
    total_families: int
    next_page_token: str    # "" on the last page
    provenance: FamilyProvenance


@dataclass
class FeaturePage:
    """Everything about one feature (c.feature / c.get_feature).

    ``stats`` (FeatureStats), ``top_examples`` (ExampleList, highest value
    first), ``neighbours`` (nearest decoder directions, when
    ``neighbours_state`` is pb.INDEX_STATE_READY), ``family`` (None with
    skip_family or before the neighbours are ready), ``explanations``
    (saedict.explanations.Explanation, feature-page order) and ``proto``
    (the whole GetFeatureResponse).
    """
    dictionary_id: str
    feature: int
    stats: FeatureStats
    top_examples: ExampleList
    neighbours: List[Neighbour]
    neighbours_state: int
    family: Optional[FeatureFamily]
    explanations: list
    proto: Any = field(repr=False, default=None)

    def records(self) -> List[Dict[str, Any]]:
        """The top examples as dicts with dictionary_id, feature and rank."""
        return [{"dictionary_id": self.dictionary_id, "feature": self.feature, "rank": i,
                 **e.record()} for i, e in enumerate(self.top_examples)]

    def to_frame(self):
        """A pandas DataFrame of records() (needs pandas)."""
        return _frame(self.records(), ["dictionary_id", "feature", "rank", "corpus", "doc_id",
                                       "position", "value", "text"])


@dataclass
class QuantileBin:
    """Examples whose activation lies between two quantiles of the feature's
    activation distribution (estimated from its histogram)."""
    quantile_lower: float
    quantile_upper: float
    value_lower: float
    value_upper: float
    examples: ExampleList   # highest value first


@dataclass
class TopActivations:
    """c.top_activations: the top examples and, when asked, quantile bins."""
    dictionary_id: str
    feature: int
    top: ExampleList            # descending value
    bins: List[QuantileBin]     # lowest quantile first

    def records(self) -> List[Dict[str, Any]]:
        """Every example as a dict: bin -1 for the top list, else the bin's
        index with its quantile bounds (NaN for the top list)."""
        out = []
        groups = [(-1, float("nan"), float("nan"), self.top)]
        groups += [(i, b.quantile_lower, b.quantile_upper, b.examples)
                   for i, b in enumerate(self.bins)]
        for index, lower, upper, examples in groups:
            for rank, e in enumerate(examples):
                out.append({"dictionary_id": self.dictionary_id, "feature": self.feature,
                            "bin": index, "quantile_lower": lower, "quantile_upper": upper,
                            "rank": rank, **e.record()})
        return out

    def to_frame(self):
        """A pandas DataFrame of records() (needs pandas)."""
        return _frame(self.records(), ["dictionary_id", "feature", "bin", "quantile_lower",
                                       "quantile_upper", "rank", "corpus", "doc_id", "position",
                                       "value", "text"])


@dataclass
class FeatureMatches:
    """Per-feature matches of one side of a comparison, as numpy arrays
    indexed by feature: best partner (-1: none) and its similarity, the
    one-to-one partner (-1: unassigned) and its similarity, matched flags."""
    best_partner: np.ndarray
    best_similarity: np.ndarray
    assigned_partner: np.ndarray
    assigned_similarity: np.ndarray
    matched: np.ndarray


@dataclass
class Comparison:
    """A compare_dictionaries answer: the CompareSummary message (MMCS or mean
    max correlation, fractions matched, assignment mean, SVCCA, timings) and
    the matches of A's features (.a) and of B's (.b); None without matches."""
    summary: Any
    a: Optional[FeatureMatches] = None
    b: Optional[FeatureMatches] = None


# --- from the protos ----------------------------------------------------------

_RELATIONS = {pb.FAMILY_RELATION_PARENT: "parent", pb.FAMILY_RELATION_CHILD: "child",
              pb.FAMILY_RELATION_SIBLING: "sibling"}


def provenance(p) -> FamilyProvenance:
    computed_at = datetime.datetime.fromtimestamp(
        p.computed_at.seconds + p.computed_at.nanos * 1e-9, tz=datetime.timezone.utc)
    return FamilyProvenance(computed_at, p.tokens, p.documents, p.min_decoder_cosine,
                            p.min_coverage, p.min_child_count, p.neighbours_per_feature,
                            p.seconds)


def _member(m) -> FamilyMember:
    return FamilyMember(m.feature, _RELATIONS.get(m.relation, str(m.relation)), m.pair_parent,
                        m.pair_child, m.decoder_cosine, m.coverage, m.jaccard, m.phi, m.count,
                        m.reason, m.nesting_level)


def feature_family(f) -> FeatureFamily:
    return FeatureFamily(f.dictionary_id, f.feature, f.count, [_member(m) for m in f.parents],
                         [_member(m) for m in f.children], [_member(m) for m in f.siblings],
                         f.root, f.family_size, provenance(f.provenance), f.nesting_level)


def _examples(examples) -> ExampleList:
    return ExampleList(
        Example(e.corpus, e.doc_id, e.position, e.value,
                [ContextToken(t.token_id, t.token, t.value) for t in e.context], e.peak_index)
        for e in examples)


def _neighbours(neighbours) -> List[Neighbour]:
    return [Neighbour(n.dictionary_id, n.feature, n.cosine) for n in neighbours]


def _explanation(p):
    from saedict.explanations import explanation  # explanations imports this module
    return explanation(p)


def feature_page(r) -> FeaturePage:
    s = r.stats
    stats = FeatureStats(s.count, s.total_tokens, s.density, s.mean, s.std, s.max,
                         Histogram(HistogramBin(b.lower, b.upper, b.count) for b in s.histogram))
    family = feature_family(r.family) if r.HasField("family") else None
    return FeaturePage(r.dictionary_id, r.feature, stats, _examples(r.top_examples),
                       _neighbours(r.neighbours), r.neighbours_state, family,
                       [_explanation(e) for e in r.explanations], r)


def top_activations(r, dictionary_id: str, feature: int) -> TopActivations:
    bins = [QuantileBin(b.quantile_lower, b.quantile_upper, b.value_lower, b.value_upper,
                        _examples(b.examples)) for b in r.bins]
    return TopActivations(dictionary_id, feature, _examples(r.top), bins)


def similar_result(r) -> SimilarResult:
    return SimilarResult(r.dictionary_id, _neighbours(r.neighbours), r.exact, r.index_factory)


def family_page(r) -> FamilyPage:
    return FamilyPage([Family(f.root, list(f.members), f.depth, f.root_count)
                       for f in r.families],
                      r.total_families, r.next_page_token, provenance(r.provenance))


def feature_matches(rows, size: int) -> FeatureMatches:
    out = FeatureMatches(np.full(size, -1, np.int64), np.zeros(size), np.full(size, -1, np.int64),
                         np.zeros(size), np.zeros(size, bool))
    for m in rows:
        out.best_partner[m.feature] = m.best_partner
        out.best_similarity[m.feature] = m.best_similarity
        out.assigned_partner[m.feature] = m.assigned_partner
        out.assigned_similarity[m.feature] = m.assigned_similarity
        out.matched[m.feature] = m.matched
    return out
