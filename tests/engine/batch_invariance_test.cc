// Batch invariance of the F32 encode (engine/encoder.h): a row's codes,
// reconstruction and row error are bit-identical whatever batch it is
// encoded in — batch sizes 1…4096, shuffled positions, tile sizes, 1 and 2
// threads, every GEMM kernel this CPU runs, and through the dynamic batcher
// with concurrent callers — for every architecture.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "engine/batcher.h"
#include "engine/encoder.h"
#include "engine/parallel.h"
#include "gtest/gtest.h"
#include "tests/engine/reference_sae.h"

namespace saedict::engine {
namespace {

using ::saedict::engine::testing::DictSpec;
using ::saedict::engine::testing::MakeDictionary;
using ::saedict::engine::testing::RandomInput;
using ::saedict::engine::testing::SpecName;

constexpr int64_t kRows = 4096;

// One row's answer, as bytes, so equality is bit equality.
struct RowResult {
  std::vector<uint32_t> indices;
  std::vector<uint32_t> value_bits;
  std::vector<uint32_t> reconstruction_bits;
  uint32_t error_bits = 0;
  bool operator==(const RowResult&) const = default;
};

std::vector<uint32_t> Bits(const float* v, size_t n) {
  std::vector<uint32_t> out(n);
  std::memcpy(out.data(), v, n * sizeof(float));
  return out;
}

RowResult Row(const EncodeResult& r, int64_t row, int64_t d_in) {
  const uint64_t b = r.codes.row_offsets[row], e = r.codes.row_offsets[row + 1];
  RowResult out;
  out.indices.assign(r.codes.indices.begin() + b, r.codes.indices.begin() + e);
  out.value_bits = Bits(r.codes.values.data() + b, e - b);
  out.reconstruction_bits = Bits(r.reconstruction.data() + row * d_in, d_in);
  std::memcpy(&out.error_bits, &r.row_squared_error[row], sizeof(float));
  return out;
}

EncodeOptions FullOptions() {
  EncodeOptions o;
  o.return_reconstruction = true;
  o.return_row_error = true;
  return o;
}

class BatchInvarianceTest : public ::testing::TestWithParam<DictSpec> {
 protected:
  void SetUp() override {
    const DictSpec& spec = GetParam();
    dict_ = MakeDictionary(spec);
    x_ = RandomInput(kRows, spec.d_in, /*seed=*/11);
    auto encoder = Encoder::Create(dict_);
    ASSERT_TRUE(encoder.ok()) << encoder.status();
    encoder_ = std::move(encoder).value();
    auto all = encoder_->Encode(x_, kRows, FullOptions());
    ASSERT_TRUE(all.ok()) << all.status();
    for (int64_t r = 0; r < kRows; ++r) reference_.push_back(Row(*all, r, spec.d_in));
    active_ = all->codes.nnz();
  }
  void TearDown() override { SetParallelism(0); }

  // Encodes rows `order[first, first + count)` as one call and checks each.
  void ExpectRowsMatch(const Encoder& encoder, const std::vector<int64_t>& order, int64_t first,
                       int64_t count, const std::string& what) {
    const int64_t d_in = GetParam().d_in;
    std::vector<float> x(count * d_in);
    for (int64_t i = 0; i < count; ++i) {
      std::copy_n(x_.data() + order[first + i] * d_in, d_in, x.data() + i * d_in);
    }
    auto result = encoder.Encode(x, count, FullOptions());
    ASSERT_TRUE(result.ok()) << result.status();
    for (int64_t i = 0; i < count; ++i) {
      ASSERT_TRUE(Row(*result, i, d_in) == reference_[order[first + i]])
          << what << ": row " << order[first + i] << " at position " << i << " of " << count;
    }
  }

  std::shared_ptr<Dictionary> dict_;
  std::vector<float> x_;
  std::unique_ptr<Encoder> encoder_;
  std::vector<RowResult> reference_;
  int64_t active_ = 0;
};

TEST_P(BatchInvarianceTest, SizesPositionsTilesAndThreads) {
  ASSERT_GT(active_, kRows) << "the dictionary should fire: a test of empty rows proves nothing";
  std::vector<int64_t> order(kRows);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937 gen(7);
  for (const int threads : {1, 2}) {
    SetParallelism(threads == 1 ? 1 : 0);
    const std::string t = "threads " + std::to_string(threads);
    for (const int64_t size : {1, 2, 3, 5, 6, 7, 31, 64, 255, 256, 257, 1000, 4096}) {
      std::shuffle(order.begin(), order.end(), gen);
      // A few calls of `size` rows each, from a shuffled order (every row
      // lands at another position than in the reference call).
      const int64_t calls = std::max<int64_t>(1, std::min<int64_t>(4, kRows / size));
      for (int64_t c = 0; c < calls; ++c) {
        ExpectRowsMatch(*encoder_, order, c * size, size, t + ", size " + std::to_string(size));
      }
    }
  }
  for (const int64_t tile : {1, 7, 100, 4096}) {
    auto tiled = Encoder::Create(dict_, EncoderOptions{.tile_rows = tile});
    ASSERT_TRUE(tiled.ok()) << tiled.status();
    ExpectRowsMatch(**tiled, order, 0, 1500, "tile_rows " + std::to_string(tile));
  }
}

TEST_P(BatchInvarianceTest, EveryKernelThisCpuRunsGivesTheSameBits) {
  std::vector<int64_t> order(kRows);
  std::iota(order.begin(), order.end(), 0);
  for (const auto kernel : {InvariantGemm::Kernel::kAvx512, InvariantGemm::Kernel::kAvx2,
                            InvariantGemm::Kernel::kPortable}) {
    auto encoder = Encoder::Create(dict_, EncoderOptions{.kernel = kernel});
    ASSERT_TRUE(encoder.ok()) << encoder.status();
    // A kernel the CPU lacks falls back to the portable one: still checked.
    ExpectRowsMatch(**encoder, order, 100, 300,
                    "kernel " + std::string((*encoder)->f32_kernel_name()));
  }
}

TEST_P(BatchInvarianceTest, ThroughTheBatcherWithConcurrentCallers) {
  const int64_t d_in = GetParam().d_in;
  BatcherOptions options;
  options.max_batch_tokens = 512;
  options.max_queue_delay = absl::Milliseconds(5);  // callers' requests get merged
  auto batcher = EncodeBatcher::Create(options);
  ASSERT_TRUE(batcher.ok()) << batcher.status();
  std::shared_ptr<const Encoder> shared = std::move(encoder_);
  constexpr int kCallers = 4;
  std::vector<std::string> failures(kCallers);
  std::vector<std::thread> callers;
  for (int t = 0; t < kCallers; ++t) {
    callers.emplace_back([&, t] {
      std::mt19937 gen(100 + t);
      for (int call = 0; call < 12; ++call) {
        const int64_t count = std::uniform_int_distribution<int64_t>(1, 200)(gen);
        const int64_t first = std::uniform_int_distribution<int64_t>(0, kRows - count)(gen);
        auto result =
            (*batcher)->Encode(shared, absl::MakeConstSpan(x_.data() + first * d_in, count * d_in),
                               count, FullOptions());
        if (!result.ok()) {
          failures[t] = result.status().ToString();
          return;
        }
        for (int64_t i = 0; i < count; ++i) {
          if (!(Row(*result, i, d_in) == reference_[first + i])) {
            failures[t] = "caller " + std::to_string(t) + ": row " + std::to_string(first + i) +
                          " differs from a lone Encode";
            return;
          }
        }
      }
    });
  }
  for (std::thread& c : callers) c.join();
  for (const std::string& f : failures) EXPECT_EQ(f, "");
}

INSTANTIATE_TEST_SUITE_P(
    Architectures, BatchInvarianceTest,
    ::testing::Values(
        DictSpec{.architecture = Architecture::kTopK, .d_in = 64, .d_sae = 384, .k = 16},
        DictSpec{.architecture = Architecture::kTopK,
                 .normalization = Normalization::kLayerNorm,
                 .rescale_acts_by_decoder_norm = true,
                 .d_in = 40,
                 .d_sae = 200,
                 .k = 8},
        DictSpec{.architecture = Architecture::kStandard, .d_in = 48, .d_sae = 300},
        DictSpec{.architecture = Architecture::kJumpReLU,
                 .normalization = Normalization::kConstantNormRescale,
                 .d_in = 48,
                 .d_sae = 300},
        DictSpec{.architecture = Architecture::kGated, .d_in = 33, .d_sae = 130},
        DictSpec{.architecture = Architecture::kMatchingPursuit, .d_in = 32, .d_sae = 160, .k = 6}),
    [](const auto& info) { return SpecName(info.param); });

}  // namespace
}  // namespace saedict::engine
