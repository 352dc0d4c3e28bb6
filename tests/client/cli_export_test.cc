// `saedict export` end to end against the real service core: a small corpus
// ingested with the identity SAE (core_test_server.h) exported as delphi's
// latent cache, every file read back (locations, activations, tokens,
// config.json, the sequence map) and checked against the codes the server
// stores; sequences split and padded by --ctx_len; the errors.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "client/cli.h"
#include "formats/codecs/json.h"
#include "formats/codecs/npy.h"
#include "formats/codecs/safetensors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/cli_test_util.h"
#include "tests/client/core_test_server.h"
#include "tests/server/grpc_test_util.h"
#include "tests/test_util/status_matchers.h"
#include "util/half.h"

namespace saedict::client {
namespace {

namespace fs = std::filesystem;
using ::saedict::testing::CliResult;
using ::saedict::testing::CoreTestServer;
using ::saedict::testing::IsOk;
using ::saedict::testing::RunCliCaptured;
using ::saedict::testing::ScratchDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// 10 tokens in 3 documents: 10 = [0, 4), 11 = [4, 7), 12 = [7, 10).
const std::vector<int32_t> kTokens = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3};
const char kDocs[] =
    "{\"doc_id\": 10, \"start\": 0, \"length\": 4}\n"
    "{\"doc_id\": 11, \"start\": 4, \"length\": 3}\n"
    "{\"doc_id\": 12, \"start\": 7, \"length\": 3}\n";

// Row t: (t + 1, 1.5 on even t else -1, 0.25 * t, -t); the identity topk
// (k = 2) keeps feature 0 and, on even t, feature 1 (else feature 2 for t>=1).
std::vector<float> Activations() {
  std::vector<float> x;
  for (int t = 0; t < 10; ++t) {
    x.insert(x.end(), {static_cast<float>(t + 1), t % 2 == 0 ? 1.5f : -1.0f, 0.25f * t,
                       -static_cast<float>(t)});
  }
  return x;
}

struct Entry {
  uint32_t sequence, position, latent;
  float value;
  bool operator==(const Entry& o) const {
    return sequence == o.sequence && position == o.position && latent == o.latent &&
           value == o.value;
  }
};
void PrintTo(const Entry& e, std::ostream* os) {
  *os << "(" << e.sequence << "," << e.position << "," << e.latent << ")=" << e.value;
}

class CliExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SAEDICT_ASSERT_OK_AND_ASSIGN(server_, CoreTestServer::Start());
    ASSERT_THAT(server_->AddDictionary("d4", 4), IsOk());
    const std::string tokens = Path("tokens.npy"), acts = Path("acts.npy"), docs = Path("docs.jsonl");
    ASSERT_TRUE(formats::WriteNpyFile(tokens, formats::NpyFromInt32({10}, kTokens)).ok());
    ASSERT_TRUE(formats::WriteNpyFile(acts, formats::NpyFromFloat32({10, 4}, Activations())).ok());
    std::ofstream(docs) << kDocs;
    CliResult r = Run({"ingest", "d4", "--corpus", "web", "--tokens", tokens, "--activations",
                       acts, "--docs", docs});
    ASSERT_EQ(r.code, kExitOk) << r.err;
  }
  CliResult Run(std::vector<std::string> args) {
    args.insert(args.begin(), "--server=" + server_->target());
    return RunCliCaptured(args);
  }
  std::string Path(const std::string& name) const { return (dir_.path() / name).string(); }

  // Every entry of a split file, decoded.
  std::vector<Entry> ReadSplit(const fs::path& file, uint32_t start, bool* small,
                               std::vector<int64_t>* tokens, std::vector<int64_t>* token_shape) {
    auto st = formats::SafetensorsFile::Read(file);
    EXPECT_TRUE(st.ok()) << st.status();
    if (!st.ok()) return {};
    const formats::SafetensorInfo* loc = st->Find("locations");
    const formats::SafetensorInfo* act = st->Find("activations");
    const formats::SafetensorInfo* tok = st->Find("tokens");
    EXPECT_TRUE(loc && act && tok);
    if (!loc || !act || !tok) return {};
    EXPECT_EQ(act->dtype, formats::StDType::kF16);
    EXPECT_EQ(tok->dtype, formats::StDType::kI64);
    *small = loc->dtype == formats::StDType::kU16;
    *token_shape = tok->shape;
    const absl::string_view tb = st->Data(*tok);
    tokens->resize(tb.size() / 8);
    std::memcpy(tokens->data(), tb.data(), tb.size());
    const absl::string_view lb = st->Data(*loc), ab = st->Data(*act);
    std::vector<Entry> out;
    const size_t n = ab.size() / 2;
    for (size_t i = 0; i < n; ++i) {
      uint32_t v[3];
      for (int j = 0; j < 3; ++j) {
        if (*small) {
          uint16_t s;
          std::memcpy(&s, lb.data() + 2 * (3 * i + j), 2);
          v[j] = s;
        } else {
          std::memcpy(&v[j], lb.data() + 4 * (3 * i + j), 4);
        }
      }
      uint16_t h;
      std::memcpy(&h, ab.data() + 2 * i, 2);
      out.push_back({v[0], v[1], v[2] + start, F16ToFloat(h)});
    }
    return out;
  }

  // The entries the server stores, as (sequence, position, latent) with
  // documents cut into sequences of ctx tokens.
  std::vector<Entry> Stored(uint32_t ctx) {
    std::vector<Entry> out;
    uint32_t first_sequence = 0;
    for (uint64_t doc : {10, 11, 12}) {
      v1::GetActivationsRequest get;
      get.set_dictionary_id("d4");
      get.set_corpus("web");
      get.set_doc_id(doc);
      absl::StatusOr<v1::GetActivationsResponse> a = server_->core()->GetActivations(get);
      EXPECT_TRUE(a.ok()) << a.status();
      const engine::SparseCodes codes = saedict::testing::CodesOf(a->codes());
      for (int64_t row = 0; row < codes.num_rows; ++row) {
        for (uint64_t k = codes.row_offsets[row]; k < codes.row_offsets[row + 1]; ++k) {
          out.push_back({first_sequence + static_cast<uint32_t>(row / ctx),
                         static_cast<uint32_t>(row % ctx), codes.indices[k],
                         F16ToFloat(FloatToF16(codes.values[k]))});
        }
      }
      first_sequence += static_cast<uint32_t>((codes.num_rows + ctx - 1) / ctx);
    }
    std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) {
      return std::tie(a.latent, a.sequence, a.position) < std::tie(b.latent, b.sequence, b.position);
    });
    return out;
  }

  std::unique_ptr<CoreTestServer> server_;
  ScratchDir dir_;
};

TEST_F(CliExportTest, WritesDelphisLayoutMatchingTheStoredCodes) {
  CliResult r = Run({"export", "d4", "web", Path("cache"), "--n_splits=2", "--progress"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const fs::path hook = dir_.path() / "cache" / "blocks.0.hook_resid_post";
  EXPECT_THAT(r.out, StartsWith("exported "));
  EXPECT_THAT(r.out, HasSubstr("(3 sequences of 4) in 2 splits to " + hook.string()));
  EXPECT_THAT(r.err, HasSubstr("export"));
  ASSERT_TRUE(fs::exists(hook / "0_1.safetensors"));
  ASSERT_TRUE(fs::exists(hook / "2_3.safetensors"));
  EXPECT_FALSE(fs::exists(dir_.path() / "cache" / ".blocks.0.hook_resid_post.partial"));
  std::vector<Entry> all;
  for (auto [name, start] : {std::pair{"0_1.safetensors", 0u}, std::pair{"2_3.safetensors", 2u}}) {
    bool small = false;
    std::vector<int64_t> tokens, shape;
    std::vector<Entry> split = ReadSplit(hook / name, start, &small, &tokens, &shape);
    EXPECT_TRUE(small);
    EXPECT_THAT(shape, ElementsAre(3, 4));
    // Documents of 4, 3, 3 tokens; the shorter ones padded with 0.
    EXPECT_THAT(tokens, ElementsAre(3, 1, 4, 1, 5, 9, 2, 0, 6, 5, 3, 0));
    for (const Entry& e : split) {
      EXPECT_GE(e.latent, start);
      EXPECT_LE(e.latent, start + 1);
    }
    // delphi's order within a file: sequence, position, latent.
    EXPECT_TRUE(std::is_sorted(split.begin(), split.end(), [](const Entry& a, const Entry& b) {
      return std::tie(a.sequence, a.position, a.latent) < std::tie(b.sequence, b.position, b.latent);
    }));
    all.insert(all.end(), split.begin(), split.end());
  }
  std::sort(all.begin(), all.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.latent, a.sequence, a.position) < std::tie(b.latent, b.sequence, b.position);
  });
  EXPECT_EQ(all, Stored(4));
  EXPECT_EQ(all.size(), 20u);  // k = 2 on each of the 10 tokens

  auto config = formats::ReadFileToString(hook / "config.json");
  ASSERT_TRUE(config.ok());
  auto obj = formats::ParseJsonObject(*config, "config.json");
  ASSERT_TRUE(obj.ok()) << obj.status();
  EXPECT_EQ(formats::FindJsonField(*obj, "cache_ctx_len")->number_value(), 4);
  EXPECT_EQ(formats::FindJsonField(*obj, "n_tokens")->number_value(), 10);
  EXPECT_EQ(formats::FindJsonField(*obj, "n_splits")->number_value(), 2);
  EXPECT_EQ(formats::FindJsonField(*obj, "model_name")->string_value(), "test-model");
  auto seqs = formats::ReadFileToString(hook / "saedict_sequences.json");
  ASSERT_TRUE(seqs.ok());
  EXPECT_THAT(*seqs, HasSubstr("\"doc_ids\": [10, 11, 12]"));
  // The cache exists now: a second export into it is refused.
  r = Run({"export", "d4", "web", Path("cache")});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, HasSubstr("ALREADY_EXISTS"));
}

TEST_F(CliExportTest, CtxLenSplitsLongDocumentsIntoSequences) {
  CliResult r = Run({"export", "d4", "web", Path("c2"), "--ctx_len=2", "--n_splits=1",
                     "--pad_token_id=7", "--json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"sequences\":6"));  // 4 -> 2, 3 -> 2, 3 -> 2
  const fs::path hook = dir_.path() / "c2" / "blocks.0.hook_resid_post";
  bool small = false;
  std::vector<int64_t> tokens, shape;
  std::vector<Entry> split = ReadSplit(hook / "0_3.safetensors", 0, &small, &tokens, &shape);
  EXPECT_THAT(shape, ElementsAre(6, 2));
  EXPECT_THAT(tokens, ElementsAre(3, 1, 4, 1, 5, 9, 2, 7, 6, 5, 3, 7));
  std::sort(split.begin(), split.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.latent, a.sequence, a.position) < std::tie(b.latent, b.sequence, b.position);
  });
  EXPECT_EQ(split, Stored(2));
  auto seqs = formats::ReadFileToString(hook / "saedict_sequences.json");
  EXPECT_THAT(*seqs, HasSubstr("\"offsets\": [0, 2, 0, 2, 0, 2]"));
  EXPECT_THAT(*seqs, HasSubstr("\"lengths\": [2, 2, 2, 1, 2, 1]"));
}

TEST_F(CliExportTest, Errors) {
  CliResult r = Run({"export", "d4", "nope", Path("x")});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND: corpus 'nope' has no documents stored under dictionary 'd4'"));
  r = Run({"export", "zz", "web", Path("x")});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));
  r = Run({"export", "d4", "web", Path("x"), "--n_splits=9"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT: n_splits: 9; expected 0 (5) to 4"));
  r = Run({"export", "d4", "web", Path("x"), "--format=parquet"});
  EXPECT_EQ(r.code, kExitUsage);
  r = Run({"export", "d4", "web", Path("x"), "--ctx_len=-1"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_FALSE(fs::exists(dir_.path() / "x" / "blocks.0.hook_resid_post"));
}

}  // namespace
}  // namespace saedict::client
