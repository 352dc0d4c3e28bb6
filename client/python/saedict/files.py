"""Local files the client sends or writes: the file list of an upload
(with sizes and SHA-256), the files of an explanation import, and delphi's
latent cache written from an ExportLatents stream.

>>> import tempfile, pathlib
>>> from saedict.files import upload_plan
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "cfg.json").write_text("{}")
>>> [(f.name, f.size) for f in upload_plan(d)]
[('cfg.json', 2)]
"""
import hashlib
import json
import os
import re
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Tuple, Union

import numpy as np

_PLAIN_NAME = re.compile(r"^[A-Za-z0-9._-]{1,255}$")

PathLike = Union[str, os.PathLike]


@dataclass
class UploadFile:
    path: Path
    name: str
    size: int
    sha256: str


def upload_plan(path: PathLike) -> List[UploadFile]:
    """What an upload of `path` sends: the file itself, or every regular file
    directly in the folder (not hidden ones, not sub-folders), in name order,
    each hashed. Raises FileNotFoundError / ValueError before anything is sent."""
    p = Path(path)
    if p.is_file():
        paths = [p]
    elif p.is_dir():
        paths = sorted(q for q in p.iterdir() if q.is_file() and not q.name.startswith("."))
        if not paths:
            raise ValueError(f"folder {p} has no files to upload")
    else:
        raise FileNotFoundError(f"{p} is not a file or folder")
    out = []
    for q in paths:
        if not _PLAIN_NAME.match(q.name) or q.name in (".", ".."):
            raise ValueError(f"cannot upload {q}: the server takes plain file names "
                             "[A-Za-z0-9._-]")
        h = hashlib.sha256()
        size = 0
        with open(q, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
                size += len(block)
        out.append(UploadFile(q, q.name, size, h.hexdigest()))
    return out


def file_chunks(paths: List[Path], chunk_bytes: int, bar=None):
    """(file index, offset, bytes) for every chunk of at most chunk_bytes of
    each file in turn; `bar` (a ByteProgress) is told the bytes so far."""
    sent = 0
    for i, path in enumerate(paths):
        with open(path, "rb") as fh:
            offset = 0
            for block in iter(lambda: fh.read(chunk_bytes), b""):
                yield i, offset, block
                offset += len(block)
                sent += len(block)
                if bar is not None:
                    bar.update(sent)


def import_files(path_or_paths, fmt: str) -> Tuple[str, List[Tuple[Path, str]]]:
    """(format, [(path, name as sent)]) for an explanation import: files as
    given, or the Neuronpedia (*.jsonl, *.jsonl.gz) / delphi (*_latent*.txt)
    files under a folder, recursively, in name order; `fmt` "auto" is decided
    from the names."""
    if isinstance(path_or_paths, (str, os.PathLike)):
        path_or_paths = [path_or_paths]

    def is_np(q: Path) -> bool:
        return q.name.endswith(".jsonl") or q.name.endswith(".jsonl.gz")

    def is_delphi(q: Path) -> bool:
        return q.name.endswith(".txt") and "_latent" in q.name

    found: List[Tuple[Path, str, bool]] = []  # (path, name as sent, found in a folder)
    for given in path_or_paths:
        p = Path(given)
        if p.is_file():
            found.append((p, p.name, False))
        elif p.is_dir():
            for q in sorted(p.rglob("*")):
                if q.is_file() and (is_np(q) or is_delphi(q)):
                    found.append((q, str(q.relative_to(p)), True))
        else:
            raise FileNotFoundError(f"{p} is not a file or folder")
    if fmt == "auto":
        if any(is_np(q) for q, _, _ in found):
            fmt = "neuronpedia"
        elif any(is_delphi(q) for q, _, _ in found):
            fmt = "delphi"
        else:
            raise ValueError("cannot tell the format (no *.jsonl(.gz) or *_latent*.txt files); "
                             "pass format='neuronpedia' or 'delphi'")
    if fmt not in ("neuronpedia", "delphi"):
        raise ValueError(f"format must be 'auto', 'neuronpedia' or 'delphi', got {fmt!r}")
    keep = is_np if fmt == "neuronpedia" else is_delphi
    files = [(q, n) for q, n, in_folder in found if not in_folder or keep(q)]
    if not files:
        raise ValueError(f"no {fmt} files found")
    return fmt, files


def write_safetensors(path: Path, tensors: List[Tuple[str, np.ndarray]]) -> None:
    """A safetensors file (header JSON padded to 8 bytes, data in order)."""
    names = {np.dtype(np.uint16): "U16", np.dtype(np.uint32): "U32",
             np.dtype(np.float16): "F16", np.dtype(np.int64): "I64"}
    header, offset, blobs = {}, 0, []
    for name, a in tensors:
        a = np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<"), copy=False))
        blob = a.tobytes()
        header[name] = {"dtype": names[a.dtype.newbyteorder("=")], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


class DelphiCacheWriter:
    """Writes an ExportLatents stream as delphi's latent cache (the layout of
    client/commands/delphi_cache.h, the same as `saedict export`):
    DIR/{hookpoint}/{start}_{end}.safetensors (locations [N, 3] uint16 when
    every value fits else uint32, activations f16, tokens [n_seq, ctx] int64),
    config.json and saedict_sequences.json — under a hidden partial folder
    renamed into place by finish(), removed by abort()."""

    def __init__(self, directory: PathLike, corpus: str, pad_token_id: int):
        self.directory = Path(directory)
        self.corpus = corpus
        self.pad_token_id = pad_token_id
        self.header = None
        self.partial: Optional[Path] = None
        self.tokens: List[np.ndarray] = []
        self.sequences: List[Tuple[int, int, int]] = []
        self.split = 0
        self.locations: List[np.ndarray] = []
        self.activations: List[np.ndarray] = []
        self.entries = 0

    @property
    def output(self) -> Path:
        return self.directory / self.header.hookpoint

    def add(self, m) -> None:
        part = m.WhichOneof("part")
        if part == "header":
            h = m.header
            if not h.hookpoint or "/" in h.hookpoint or h.hookpoint in (".", ".."):
                raise ValueError(f"hookpoint {h.hookpoint!r} cannot be a folder name")
            self.header = h
            if self.output.exists():
                raise FileExistsError(f"{self.output} already exists; remove it or export "
                                      "to another directory")
            self.partial = self.directory / f".{h.hookpoint}.partial"
            shutil.rmtree(self.partial, ignore_errors=True)
            self.partial.mkdir(parents=True)
        elif part == "sequences":
            s = m.sequences
            self.tokens.append(np.frombuffer(s.token_ids, dtype="<i4").astype(np.int64))
            self.sequences.extend((q.doc_id, q.offset, q.length) for q in s.sequences)
        elif part == "chunk":
            c = m.chunk
            if c.split != self.split:
                raise RuntimeError(f"export stream: split {c.split} out of order")
            self.locations.append(np.frombuffer(c.locations, dtype="<u4").reshape(-1, 3))
            self.activations.append(np.frombuffer(c.activations, dtype="<f2"))
            if c.last:
                self._write_split()
        else:
            raise RuntimeError("export stream: an empty message")

    def _write_split(self) -> None:
        h = self.header
        r = h.splits[self.split]
        loc = np.concatenate(self.locations) if self.locations else np.zeros((0, 3), np.uint32)
        act = np.concatenate(self.activations) if self.activations else np.zeros(0, np.float16)
        if loc.size == 0 or loc.max() < (1 << 16):
            loc = loc.astype(np.uint16)
        tokens = np.concatenate(self.tokens).reshape(h.n_sequences, h.ctx_len)
        write_safetensors(self.partial / f"{r.start}_{r.end}.safetensors",
                          [("locations", loc), ("activations", act.astype(np.float16)),
                           ("tokens", tokens)])
        self.entries += len(act)
        self.locations, self.activations = [], []
        self.split += 1

    def finish(self) -> Path:
        h = self.header
        if h is None or self.split != len(h.splits) or self.entries != h.n_entries:
            raise RuntimeError("export stream ended early")
        config = {"dataset_repo": "saedict", "dataset_split": self.corpus, "dataset_name": "",
                  "dataset_column": "", "batch_size": 1, "cache_ctx_len": h.ctx_len,
                  "n_tokens": h.n_tokens, "n_splits": len(h.splits), "model_name": h.model_name,
                  "saedict": {"dictionary_id": h.dictionary_id, "hookpoint": h.hookpoint,
                              "weights_sha256": h.weights_sha256, "d_sae": h.d_sae,
                              "corpus": self.corpus, "n_sequences": h.n_sequences,
                              "n_entries": h.n_entries, "pad_token_id": self.pad_token_id}}
        (self.partial / "config.json").write_text(json.dumps(config) + "\n")
        seq = {"doc_ids": [s[0] for s in self.sequences], "offsets": [s[1] for s in self.sequences],
               "lengths": [s[2] for s in self.sequences]}
        (self.partial / "saedict_sequences.json").write_text(json.dumps(seq) + "\n")
        os.replace(self.partial, self.output)
        self.partial = None
        return self.output

    def abort(self) -> None:
        if self.partial is not None:
            shutil.rmtree(self.partial, ignore_errors=True)
            self.partial = None
