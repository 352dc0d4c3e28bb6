# %% [markdown]
# # A tour of saedict from a notebook
#
# Run it as cells (VS Code, Jupyter with jupytext) or as a script:
#
#     bash deploy/dev.sh run                 # saedictd with the demo dictionary and corpus
#     pip install ./client/python            # or --no-build-isolation --no-index offline
#     SAEDICT_TARGET=localhost:50051 python3 client/python/examples/notebook_tour.py
#
# It uses the demo dictionary `demo` that saedictd makes itself (a random TopK
# SAE, d_in 64, d_sae 512, k 16) and the demo corpus `demo` stored under it
# (200 documents of 64 tokens of made-up words; word w drives features
# (131 w + 17 j) mod 512 for j = 0, 1, 2).

# %%
import os

import numpy as np

import saedict

target = os.environ.get("SAEDICT_TARGET", "localhost:50051")
c = saedict.connect(target)
info = c.get_dictionary("demo")
print(f"dictionary demo: d_in {info.d_in}, d_sae {info.d_sae}, k {info.k}, "
      f"weights {info.weights_sha256[:12]}")

# %% [markdown]
# ## Decode and encode
# Activations made like the demo corpus's: three features per token (decoded
# from hand-made sparse codes) plus a little noise. Activations are float32,
# float16 or bfloat16 (as uint16 bits); codes are CSR, and `to_dense()` /
# `to_scipy()` give the matrix.

# %%
rng = np.random.default_rng(0)
n = 256
planted = np.sort(np.argsort(rng.random((n, info.d_sae)), axis=1)[:, :3], axis=1)
made = saedict.SparseCodes(np.arange(0, 3 * n + 1, 3, dtype=np.uint64),
                           planted.reshape(-1).astype(np.uint32),
                           rng.uniform(0.5, 3.0, 3 * n).astype(np.float32), info.d_sae)
x = c.decode("demo", made) + rng.normal(0, 0.05, (n, info.d_in)).astype(np.float32)
codes = c.encode("demo", x, reconstruction=True, error=True)
print(f"encoded {codes.num_rows} rows: {codes.nnz} nonzeros "
      f"({codes.nnz / codes.num_rows:.1f} per row), compute mode {codes.compute_mode}")
x_hat = c.decode("demo", codes)
print(f"decode matches the reconstruction: {np.allclose(x_hat, codes.reconstruction, atol=1e-5)}")
variance = ((x - x.mean(0)) ** 2).sum()
found = np.mean([set(planted[i]) <= set(codes.indices[codes.row_offsets[i]:codes.row_offsets[i + 1]])
                 for i in range(n)])
print(f"all 3 planted features among the 16 in {found:.0%} of rows")
# The demo SAE is random, not trained: its 16 features over-explain three.
for top_k in (0, 3):
    fvu = c.encode("demo", x, top_k=top_k, error=True).row_error.sum() / variance
    print(f"fraction of variance unexplained with top_k={top_k or info.k}: {fvu:.3f}")

half = c.encode("demo", x.astype(np.float16))
bits = (x.view(np.uint32) >> 16).astype(np.uint16)        # bfloat16 by truncation
brain = c.encode("demo", bits, dtype="bfloat16")
print(f"float16 / bfloat16 inputs: {half.nnz} / {brain.nnz} nonzeros")
try:
    sparse = codes.to_scipy()
    print(f"scipy: {type(sparse).__name__} {sparse.shape}, {sparse.nnz} stored")
except ImportError as e:
    print(f"scipy is not installed: {e}")

# %% [markdown]
# ## Intervene
# Ablate a token's strongest feature: x' = x + (f' - f) W_dec keeps the SAE's error term.

# %%
dense = codes.to_dense()
top = int(np.argmax(dense[0]))
edited, edited_codes = c.intervene("demo", x[:4], [(top, "ablate", 0.0, [0])])
moved = np.linalg.norm(edited[0] - x[0])
print(f"ablated feature {top} (value {dense[0, top]:.3f}) on row 0: moved by {moved:.3f}, "
      f"rows 1-3 unchanged: {np.allclose(edited[1:], x[1:4], atol=1e-5)}, "
      f"feature now {edited_codes.to_dense()[0, top]:.1f}")

# %% [markdown]
# ## A feature page from the demo corpus
# Feature 0 belongs to word 0, the most frequent made-up word.

# %%
page = c.feature("demo", 0, top_n=5, context_window=4)
s = page.stats
print(f"feature 0: active on {s.count} of {s.total_tokens} tokens (density {s.density:.4f}), "
      f"mean {s.mean:.3f}, max {s.max:.3f}, {len(s.histogram)} histogram bins")
for example in page.top_examples:
    print(f"  doc {example.doc_id:3d} pos {example.position:2d}  {example.value:6.3f}  "
          f"{example.text}")
doc = c.get_document("demo", int(page.top_examples[0].doc_id))
print(f"its first document starts: {doc.text[:60]!r}")

try:
    import pandas  # noqa: F401  (optional)
    frame = page.to_frame()
    print(frame[["doc_id", "position", "value"]].to_string(index=False))
    quantiles = c.top_activations("demo", 0, n=3, quantile_bins=4, per_bin=2).to_frame()
    print(quantiles.groupby("bin")["value"].max().to_string())
except ImportError:
    records = c.top_activations("demo", 0, n=3, quantile_bins=4, per_bin=2).records()
    print(f"pandas is not installed; {len(records)} example records, e.g. {records[0]}")

# %% [markdown]
# ## Errors
# Server errors arrive as saedict.Error subclasses with the server's message.

# %%
try:
    c.encode("no-such-dictionary", x)
except saedict.NotFound as e:
    print(f"NotFound: {e.message}")
try:
    c.encode("demo", x[:, :10])
except saedict.InvalidArgument as e:
    print(f"InvalidArgument: {e.message}")
c.close()
print("tour done")
