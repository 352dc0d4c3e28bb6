"""saedict: the Python client of saedictd, the SAE feature-dictionary service.

Install it with ``pip install ./client/python`` (offline on Debian:
``pip install --no-build-isolation --no-index ./client/python``); it needs
grpcio, protobuf and numpy (scipy for ``SparseCodes.to_scipy()`` and pandas
for ``to_frame()`` are optional)::

    import numpy as np
    import saedict

    c = saedict.connect("localhost:50051")        # token=, tls=, timeout=, retries=
    c.load_dictionary("sae", "path/under/dictionary_root")
    codes = c.encode("sae", acts)                 # acts: [n, d_in] float32 / float16
    codes.to_dense(), codes.to_scipy()            # [n, d_sae]
    x_hat = c.decode("sae", codes)
    x_edit, f_edit = c.intervene("sae", acts, [(123, "ablate", 0.0)])
    c.encode("sae", bits, dtype="bfloat16")       # bf16 as uint16 bits (or saedict.bfloat16(bits))

    # Corpus: store documents with their codes, then explore features.
    c.ingest("sae", "web", [(doc_id, token_ids, acts, token_strings), ...], progress=True)
    c.get_document("web", 7).text
    c.get_activations("sae", "web", 7).to_dense()  # the stored codes
    page = c.feature("sae", 123)                   # stats, histogram, top examples
    page.to_frame()                                # pandas, one row per example
    c.top_activations("sae", 123, n=20, quantile_bins=5).records()
    c.document_features("sae", "web", 7, position=3)

    # Similarity and feature families (once c.get_dictionary("sae").index is READY).
    c.search_similar("sae", feature=123)["sae"].features
    c.feature_family("sae", 123).children
    for family in c.iter_families("sae"): ...

    # Dictionaries from this machine, explanations, export for delphi.
    c.upload("gpt2-8-res", "path/to/sae_folder", progress=True)   # checksummed, atomic
    c.set_explanation("sae", 123, "plural nouns", source="human")
    c.search_explanations("plural nouns").to_frame()               # BM25, snippets
    c.import_explanations("np_export/explanations", mapping={"gpt2-small/8-res-jb": "sae"})
    c.export_latents("sae", "web", "latents/")                      # delphi's latent cache

    # Comparison and evaluation (for CI jobs and papers).
    cmp = c.compare_dictionaries("run_a", "run_b")  # .summary, .a.best_partner, ...
    report = c.evaluate("sae", acts)                 # SAEBench core report as a dict

Errors: every server error is a :class:`saedict.Error` subclass named after
its status (``saedict.NotFound``, ``saedict.InvalidArgument``, ...) with
the server's message unchanged in ``.message``; it is also a
``grpc.RpcError`` (``.code()``, ``.details()``). Arguments checked before
sending raise ValueError. Idempotent calls retry UNAVAILABLE (``retries``);
load, delete, ingest and checkpoint never retry. Arrays bigger than one
message are split and joined transparently.

The examples in the docstrings (``>>>``) run in the test suite against a
saedictd with its demo dictionary ``demo`` and demo corpus ``demo``, with
``c = saedict.connect(TARGET)``.
"""
from saedict._version import __version__
from saedict.arrays import BFloat16, SparseCodes, bfloat16
from saedict.client import DEFAULT_MAX_MESSAGE_BYTES, Client, connect
from saedict.explanations import (Explanation, ExplanationHit, ExplanationSearch,
                                  ImportProblem, ImportResult)
from saedict.errors import (Aborted, AlreadyExists, Cancelled, DataLoss, DeadlineExceeded, Error,
                            FailedPrecondition, Internal, InvalidArgument, NotFound, OutOfRange,
                            PermissionDenied, ResourceExhausted, Unauthenticated, Unavailable,
                            Unimplemented, Unknown)
from saedict.results import (Comparison, ContextToken, Document, Example, ExampleList, Family,
                             FamilyMember, FamilyPage, FamilyProvenance, FeatureFamily,
                             FeatureMatches, FeaturePage, FeatureStats, Histogram, HistogramBin,
                             Neighbour, QuantileBin, SimilarResult, TopActivations)

__all__ = [
    "__version__", "connect", "Client", "DEFAULT_MAX_MESSAGE_BYTES", "SparseCodes", "BFloat16",
    "bfloat16",
    "Error", "Aborted", "AlreadyExists", "Cancelled", "DataLoss", "DeadlineExceeded",
    "FailedPrecondition", "Internal", "InvalidArgument", "NotFound", "OutOfRange",
    "PermissionDenied", "ResourceExhausted", "Unauthenticated", "Unavailable", "Unimplemented",
    "Unknown",
    "Comparison", "ContextToken", "Document", "Example", "ExampleList", "Family", "FamilyMember",
    "FamilyPage", "FamilyProvenance", "FeatureFamily", "FeatureMatches", "FeaturePage",
    "FeatureStats", "Histogram", "HistogramBin", "Neighbour", "QuantileBin", "SimilarResult",
    "TopActivations", "Explanation", "ExplanationHit", "ExplanationSearch", "ImportProblem",
    "ImportResult",
]
