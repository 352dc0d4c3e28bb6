// Unit tests of the corpus store's pure pieces: big-endian and descending
// float keys, the forward record codec (varint / delta edge cases), histogram
// bins and the stats merge operator.
#include <cmath>
#include <cstring>
#include <deque>
#include <limits>
#include <random>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/codes_codec.h"
#include "storage/corpus_store.h"
#include "storage/keys.h"
#include "storage/stats_merge.h"
#include "tests/test_util/status_matchers.h"
#include "util/half.h"

namespace saedict::storage {
namespace {

using ::saedict::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(KeysTest, BigEndianRoundTripAndOrder) {
  std::string a, b;
  keys::AppendU32(&a, 0x01020304u);
  EXPECT_EQ(a, std::string("\x01\x02\x03\x04", 4));
  keys::AppendU64(&b, 0x0102030405060708ull);
  EXPECT_EQ(keys::ReadU64(b.data()), 0x0102030405060708ull);
  EXPECT_EQ(keys::ReadU32(a.data()), 0x01020304u);
  EXPECT_LT(keys::DocKey(1, 255), keys::DocKey(1, 256));
  EXPECT_LT(keys::DocKey(1, ~0ull), keys::DocKey(2, 0));
  EXPECT_EQ(keys::ForwardKey(1, 2, 3).size(), 16u);
}

TEST(KeysTest, DescendingFloatOrder) {
  const float inf = std::numeric_limits<float>::infinity();
  const float denorm = std::numeric_limits<float>::denorm_min();
  std::vector<float> ascending = {-inf,   -3e38f, -2.5f, -1.0f,      -denorm, 0.0f, denorm,
                                  1e-30f, 0.5f,   1.0f,  1.0000001f, 3e38f,   inf};
  for (size_t i = 0; i + 1 < ascending.size(); ++i) {
    EXPECT_LT(keys::OrderedFromFloat(ascending[i]), keys::OrderedFromFloat(ascending[i + 1])) << i;
    EXPECT_GT(keys::DescendingFromFloat(ascending[i]), keys::DescendingFromFloat(ascending[i + 1]));
  }
  for (float v : ascending) {
    EXPECT_EQ(keys::FloatFromDescending(keys::DescendingFromFloat(v)), v);
    EXPECT_EQ(keys::FloatFromOrdered(keys::OrderedFromFloat(v)), v);
  }
  EXPECT_LT(keys::OrderedFromFloat(-0.0f), keys::OrderedFromFloat(0.0f));
}

TEST(KeysTest, InvertedKeyRoundTripAndScanOrder) {
  std::string k1, k2, k3;
  keys::AppendInvertedKey(&k1, 7, 9, 2.5f, 3, 100, 4);
  keys::AppendInvertedKey(&k2, 7, 9, 1.5f, 1, 1, 0);
  keys::AppendInvertedKey(&k3, 7, 9, 1.5f, 1, 1, 1);
  ASSERT_EQ(k1.size(), keys::kInvertedKeySize);
  EXPECT_LT(k1, k2);  // larger value first
  EXPECT_LT(k2, k3);  // ties by position
  auto parsed = keys::ParseInvertedKey(k1);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->dict, 7u);
  EXPECT_EQ(parsed->feature, 9u);
  EXPECT_EQ(parsed->value, 2.5f);
  EXPECT_EQ(parsed->corpus, 3u);
  EXPECT_EQ(parsed->doc, 100u);
  EXPECT_EQ(parsed->pos, 4u);
  EXPECT_FALSE(keys::ParseInvertedKey(k1.substr(1)).has_value());
  EXPECT_EQ(k1.substr(0, 8), keys::InvertedPrefix(7, 9));
}

TEST(KeysTest, PrefixSuccessor) {
  EXPECT_EQ(keys::PrefixSuccessor(std::string("\x00\x01", 2)), std::string("\x00\x02", 2));
  EXPECT_EQ(keys::PrefixSuccessor(std::string("\x00\xff", 2)), std::string("\x01", 1));
  EXPECT_EQ(keys::PrefixSuccessor(std::string("\xff\xff", 2)), "");
  EXPECT_EQ(keys::PrefixSuccessor(keys::DictPrefix(4)), keys::DictPrefix(5));
}

TEST(VarintTest, RoundTripEdgeValues) {
  for (uint64_t v :
       {0ull, 1ull, 127ull, 128ull, 16383ull, 16384ull, (1ull << 24) - 1, 0xFFFFFFFFull, ~0ull}) {
    std::string s;
    AppendVarint(&s, v);
    absl::string_view in = s;
    uint64_t out = 1;
    ASSERT_TRUE(ReadVarint(&in, &out)) << v;
    EXPECT_EQ(out, v);
    EXPECT_TRUE(in.empty());
  }
  std::string s;
  AppendVarint(&s, 300);
  absl::string_view truncated(s.data(), 1);
  uint64_t out = 0;
  EXPECT_FALSE(ReadVarint(&truncated, &out));
}

DocumentCodes Codes(std::vector<uint64_t> offsets, std::vector<uint32_t> indices,
                    std::vector<float> values) {
  DocumentCodes c;
  c.num_rows = static_cast<int64_t>(offsets.size()) - 1;
  c.row_offsets = std::move(offsets);
  c.indices = std::move(indices);
  c.values = std::move(values);
  return c;
}

void ExpectSameCodes(const DocumentCodes& a, const DocumentCodes& b) {
  EXPECT_EQ(a.row_offsets, b.row_offsets);
  EXPECT_EQ(a.indices, b.indices);
  EXPECT_EQ(a.values, b.values);
}

TEST(CodesCodecTest, EdgeCasesRoundTripF32) {
  const uint32_t max24 = (1u << 24) - 1;
  std::vector<DocumentCodes> cases = {
      Codes({0}, {}, {}),                                  // no tokens
      Codes({0, 0, 0}, {}, {}),                            // only empty rows
      Codes({0, 1}, {0}, {1.5f}),                          // index 0
      Codes({0, 1}, {max24}, {-2.0f}),                     // max index of d_sae 2^24
      Codes({0, 2}, {0, max24}, {1.0f, 2.0f}),             // largest delta
      Codes({0, 0, 3, 3, 4}, {0, 1, 2, 7}, {1, 2, 3, 4}),  // empty rows around full ones
      Codes({0, 2, 4}, {5, 6, 5, 6}, {1e-30f, 3e38f, -1, 7}),
      Codes({0, 1}, {0xFFFFFFFEu}, {1.0f}),  // largest u32 index
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    const std::string bytes = EncodeCodes(cases[i], ValuePrecision::kF32);
    auto decoded = DecodeCodes(bytes, "test");
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(decoded->precision, ValuePrecision::kF32);
    ExpectSameCodes(decoded->codes, cases[i]);
  }
}

TEST(CodesCodecTest, F16StoresHalfBits) {
  DocumentCodes c = Codes({0, 3}, {1, 40, 1000}, {0.1f, 1.0f, 65504.0f});
  const std::string bytes = EncodeCodes(c, ValuePrecision::kF16);
  // format + token count + nnz + 3 one-or-two-byte deltas + 3 halves.
  EXPECT_EQ(bytes.size(), 1u + 1 + 1 + (1 + 1 + 2) + 6);
  auto decoded = DecodeCodes(bytes, "test");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->precision, ValuePrecision::kF16);
  EXPECT_EQ(decoded->codes.indices, c.indices);
  for (size_t j = 0; j < c.values.size(); ++j) {
    EXPECT_EQ(decoded->codes.values[j], F16ToFloat(FloatToF16(c.values[j])));
  }
}

TEST(CodesCodecTest, CompactForSmallDeltas) {
  // k = 4 of d_sae 512: one byte per index, two per half value.
  DocumentCodes c = Codes({0, 4}, {3, 100, 200, 300}, {1, 2, 3, 4});
  EXPECT_EQ(EncodeCodes(c, ValuePrecision::kF16).size(), 3u + 4 + 8);
}

TEST(CodesCodecTest, MalformedBytesAreInternal) {
  const std::string good = EncodeCodes(Codes({0, 2}, {1, 2}, {1, 2}), ValuePrecision::kF32);
  EXPECT_THAT(DecodeCodes("", "x"), StatusIs(absl::StatusCode::kInternal, HasSubstr("empty")));
  EXPECT_THAT(DecodeCodes(std::string("\x07", 1) + good.substr(1), "x"),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("format")));
  EXPECT_THAT(DecodeCodes(good.substr(0, good.size() - 1), "x"),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("value bytes")));
  EXPECT_THAT(DecodeCodes(good + "z", "x"), StatusIs(absl::StatusCode::kInternal, ::testing::_));
  EXPECT_THAT(DecodeCodes(std::string("\x00\xff\xff\xff\x0f", 5), "x"),
              StatusIs(absl::StatusCode::kInternal, ::testing::_));
  // Index past u32: delta 2^32 after index 0.
  std::string past;
  past.push_back(0);
  AppendVarint(&past, 1);
  AppendVarint(&past, 2);
  AppendVarint(&past, 0);
  AppendVarint(&past, 0xFFFFFFFFull);
  past.append(8, '\0');
  EXPECT_THAT(DecodeCodes(past, "x"), StatusIs(absl::StatusCode::kInternal, HasSubstr("u32")));
}

// DecodeFeatureValues(f) is DecodeCodes followed by ValueAt(row, f), for
// every feature present in the record and one absent, in f32 and f16.
TEST(CodesCodecTest, FeatureValuesEqualTheFullDecode) {
  std::mt19937 rng(11);
  for (int iter = 0; iter < 100; ++iter) {
    DocumentCodes c;
    const int tokens = static_cast<int>(rng() % 12);
    for (int t = 0; t < tokens; ++t) {
      std::vector<uint32_t> row;
      for (int j = 0, nnz = static_cast<int>(rng() % 10); j < nnz; ++j) row.push_back(rng() % 50);
      std::sort(row.begin(), row.end());
      row.erase(std::unique(row.begin(), row.end()), row.end());
      for (uint32_t idx : row) {
        c.indices.push_back(idx);
        c.values.push_back(std::uniform_real_distribution<float>(-5, 5)(rng));
      }
      c.row_offsets.push_back(c.indices.size());
      ++c.num_rows;
    }
    for (ValuePrecision precision : {ValuePrecision::kF32, ValuePrecision::kF16}) {
      const std::string bytes = EncodeCodes(c, precision);
      auto full = DecodeCodes(bytes, "x");
      ASSERT_TRUE(full.ok()) << full.status();
      for (uint32_t feature = 0; feature <= 50; ++feature) {
        SCOPED_TRACE(absl::StrCat("iter ", iter, " feature ", feature));
        auto values = DecodeFeatureValues(bytes, feature, "x");
        ASSERT_TRUE(values.ok()) << values.status();
        ASSERT_EQ(values->size(), static_cast<size_t>(c.num_rows));
        for (int64_t t = 0; t < c.num_rows; ++t) {
          EXPECT_EQ((*values)[t], full->codes.ValueAt(t, feature));
        }
      }
    }
  }
}

TEST(CodesCodecTest, FeatureValuesRejectWhatTheFullDecodeRejects) {
  const std::string good = EncodeCodes(Codes({0, 2}, {1, 2}, {1, 2}), ValuePrecision::kF32);
  const std::vector<std::string> bad = {
      "",
      std::string("\x07", 1) + good.substr(1),
      good.substr(0, good.size() - 1),
      good + "z",
      std::string("\x00\xff\xff\xff\x0f", 5),
      good.substr(0, 3),
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_FALSE(DecodeCodes(bad[i], "x").ok());
    EXPECT_THAT(DecodeFeatureValues(bad[i], 1, "doc 7"),
                StatusIs(absl::StatusCode::kInternal, HasSubstr("doc 7")));
  }
}

TEST(CodesCodecTest, RandomRoundTripUpTo2Pow24) {
  std::mt19937 rng(5);
  for (int iter = 0; iter < 200; ++iter) {
    const uint32_t d_sae = iter % 2 ? (1u << 24) : 64;
    DocumentCodes c;
    const int tokens = static_cast<int>(rng() % 20);
    for (int t = 0; t < tokens; ++t) {
      std::vector<uint32_t> row;
      const int nnz = static_cast<int>(rng() % std::min<uint32_t>(d_sae, 40));
      for (int j = 0; j < nnz; ++j) row.push_back(rng() % d_sae);
      std::sort(row.begin(), row.end());
      row.erase(std::unique(row.begin(), row.end()), row.end());
      for (uint32_t idx : row) {
        c.indices.push_back(idx);
        c.values.push_back(std::uniform_real_distribution<float>(-5, 5)(rng));
      }
      c.row_offsets.push_back(c.indices.size());
      ++c.num_rows;
    }
    auto decoded = DecodeCodes(EncodeCodes(c, ValuePrecision::kF32), "x");
    ASSERT_TRUE(decoded.ok());
    ExpectSameCodes(decoded->codes, c);
  }
}

// The bit-level fast path equals the frexp definition: a stride over all bit
// patterns (normals, subnormals, both signs) and every float next to a
// quarter-octave boundary of every binade.
TEST(HistogramTest, FastBinEqualsTheFrexpDefinition) {
  auto check = [](float v) {
    ASSERT_EQ(HistogramBin(v), HistogramBinReferenceForTest(v)) << "value " << v;
  };
  for (uint64_t bits = 0; bits <= 0xFFFFFFFFull; bits += 997) {
    const auto b = static_cast<uint32_t>(bits);
    float v;
    std::memcpy(&v, &b, sizeof(v));
    if (std::isfinite(v)) check(v);
  }
  for (int e = -149; e < 128; ++e) {
    for (double q : {0.0, 0.25, 0.5, 0.75}) {
      const auto edge = static_cast<float>(std::exp2(e + q));
      if (!std::isfinite(edge) || edge == 0) continue;
      for (float v : {std::nextafter(edge, 0.0f), edge, std::nextafter(edge, 3e38f)}) {
        check(v);
        check(-v);
      }
    }
  }
}

TEST(HistogramTest, BinsCoverTheirRange) {
  EXPECT_EQ(HistogramBin(0.0f), 0);
  EXPECT_EQ(HistogramBin(1.0f), kBinOffset + 1);  // [2^0, 2^0.25)
  EXPECT_EQ(HistogramBin(1.18f), kBinOffset + 1);
  EXPECT_EQ(HistogramBin(1.19f), kBinOffset + 2);
  EXPECT_EQ(HistogramBin(0.99f), kBinOffset);
  EXPECT_EQ(HistogramBin(-1.0f), -(kBinOffset + 1));
  EXPECT_GE(HistogramBin(std::numeric_limits<float>::denorm_min()), 1);
  EXPECT_GE(HistogramBin(-std::numeric_limits<float>::max()), -1112);
  std::mt19937 rng(1);
  for (int i = 0; i < 10000; ++i) {
    const float v = std::exp2(std::uniform_real_distribution<float>(-40, 40)(rng)) *
                    (i % 3 == 0 ? -1.0f : 1.0f);
    const int32_t bin = HistogramBin(v);
    const auto [lo, hi] = HistogramBinRange(bin);
    if (v > 0) {
      EXPECT_TRUE(lo <= v && v < hi) << v << " bin " << bin << " [" << lo << ", " << hi << ")";
    } else {
      EXPECT_TRUE(lo < v && v <= hi) << v << " bin " << bin << " (" << lo << ", " << hi << "]";
    }
  }
}

records::v1::StatsRecord Stats(int64_t count, double sum, double sum_sq, std::map<int32_t, int64_t> bins,
                      int64_t documents = 0) {
  records::v1::StatsRecord r;
  r.set_count(count);
  r.set_sum(sum);
  r.set_sum_sq(sum_sq);
  r.set_documents(documents);
  for (auto [b, n] : bins) (*r.mutable_bins())[b] = n;
  return r;
}

std::map<int32_t, int64_t> Bins(const records::v1::StatsRecord& r) {
  return std::map<int32_t, int64_t>(r.bins().begin(), r.bins().end());
}

TEST(StatsMergeTest, AddsFieldwiseAndDropsZeroBins) {
  records::v1::StatsRecord acc = Stats(3, 6, 14, {{601, 2}, {605, 1}}, 1);
  AddStatsRecord(Stats(-1, -1, -1, {{601, -1}, {605, -1}, {-603, 4}}, 1), &acc);
  EXPECT_EQ(acc.count(), 2);
  EXPECT_DOUBLE_EQ(acc.sum(), 5);
  EXPECT_DOUBLE_EQ(acc.sum_sq(), 13);
  EXPECT_EQ(acc.documents(), 2);
  EXPECT_EQ(Bins(acc), (std::map<int32_t, int64_t>{{601, 1}, {-603, 4}}));
}

TEST(StatsMergeTest, OperatorFullAndPartialMergeAgree) {
  auto op = NewStatsMergeOperator();
  const std::vector<records::v1::StatsRecord> operands = {
      Stats(2, 3, 5, {{601, 2}}), Stats(-2, -3, -5, {{601, -2}}), Stats(1, 0.5, 0.25, {{598, 1}}),
      Stats(4, 8, 20, {{601, 1}, {605, 3}})};
  std::vector<std::string> bytes;
  for (const auto& r : operands) bytes.push_back(r.SerializeAsString());
  const std::string existing = Stats(1, 1, 1, {{601, 1}}, 3).SerializeAsString();

  auto full = [&](const rocksdb::Slice* base, const std::vector<rocksdb::Slice>& list) {
    rocksdb::MergeOperator::MergeOperationInput in("k", base, list, nullptr);
    std::string out_value;
    rocksdb::Slice existing_operand;
    rocksdb::MergeOperator::MergeOperationOutput out(out_value, existing_operand);
    EXPECT_TRUE(op->FullMergeV2(in, &out));
    records::v1::StatsRecord r;
    EXPECT_TRUE(r.ParseFromString(out_value));
    return r;
  };
  const rocksdb::Slice base(existing);
  std::vector<rocksdb::Slice> all(bytes.begin(), bytes.end());
  const records::v1::StatsRecord direct = full(&base, all);
  EXPECT_EQ(direct.count(), 6);
  EXPECT_DOUBLE_EQ(direct.sum(), 9.5);
  EXPECT_EQ(direct.documents(), 3);
  EXPECT_EQ(Bins(direct), (std::map<int32_t, int64_t>{{598, 1}, {601, 2}, {605, 3}}));

  // Partial merge of the first three, then full merge with the last.
  std::deque<rocksdb::Slice> first(all.begin(), all.begin() + 3);
  std::string partial;
  ASSERT_TRUE(op->PartialMergeMulti("k", first, &partial, nullptr));
  const records::v1::StatsRecord grouped = full(&base, {rocksdb::Slice(partial), all[3]});
  EXPECT_EQ(grouped.count(), direct.count());
  EXPECT_DOUBLE_EQ(grouped.sum(), direct.sum());
  EXPECT_DOUBLE_EQ(grouped.sum_sq(), direct.sum_sq());
  EXPECT_EQ(Bins(grouped), Bins(direct));
}

TEST(StatsMergeTest, CorruptOperandFailsTheMerge) {
  auto op = NewStatsMergeOperator();
  const std::string good = Stats(1, 1, 1, {}).SerializeAsString();
  const std::string bad = "\xff\xff\xff";
  std::vector<rocksdb::Slice> list = {good, bad};
  rocksdb::MergeOperator::MergeOperationInput in("k", nullptr, list, nullptr);
  std::string out_value;
  rocksdb::Slice existing_operand;
  rocksdb::MergeOperator::MergeOperationOutput out(out_value, existing_operand);
  EXPECT_FALSE(op->FullMergeV2(in, &out));
  const rocksdb::Slice bad_base(bad);
  rocksdb::MergeOperator::MergeOperationInput in2("k", &bad_base, {good}, nullptr);
  EXPECT_FALSE(op->FullMergeV2(in2, &out));
}

}  // namespace
}  // namespace saedict::storage
