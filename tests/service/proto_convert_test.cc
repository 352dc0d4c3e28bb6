// The storage records' own package reads records written before it existed
// (a DictionaryRecord that embedded saedict.v1.DictionaryInfo) field for
// field, and ToRecord / FromRecord round-trip every DictionaryInfo field
// that is stored (the index state and the served compute-mode fields are live
// state, decided when the dictionary is served).
#include "service/proto_convert.h"

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace saedict::service {
namespace {

v1::DictionaryInfo FullInfo() {
  v1::DictionaryInfo info;
  info.set_id("gpt2-8-res");
  info.set_model_name("gpt2");
  info.set_hook_name("blocks.8.hook_resid_pre");
  info.set_d_in(768);
  info.set_d_sae(24576);
  info.set_architecture(v1::ARCHITECTURE_JUMPRELU);
  info.set_k(32);
  info.set_normalization(v1::NORMALIZATION_LAYER_NORM);
  info.set_apply_b_dec_to_input(true);
  info.set_rescale_acts_by_decoder_norm(true);
  info.set_source_format(v1::SOURCE_FORMAT_GEMMA_SCOPE);
  info.set_source_path("sae/params.npz");
  info.set_source_dtype(v1::DTYPE_BF16);
  info.set_weight_bytes(123456789);
  info.mutable_loaded_at()->set_seconds(1764547200);
  info.set_mp_residual_threshold(0.25f);
  info.set_weights_sha256(std::string(64, 'a'));
  info.add_matryoshka_widths(4096);
  info.add_matryoshka_widths(24576);
  info.set_alias("12-res-16k");
  info.set_d_out(2304);
  info.set_hook_name_out("blocks.8.hook_mlp_out");
  info.set_skip_connection(true);
  return info;
}

bool IsLiveState(const std::string& field) {
  return field == "index" || field == "default_compute_mode" || field == "fast_exact_ready" ||
         field == "fast_exact_bytes" || field == "fast_exact_screen";
}

TEST(ProtoConvertTest, RecordRoundTripKeepsEveryField) {
  const v1::DictionaryInfo info = FullInfo();
  // Every field is set, so a field ToRecord/FromRecord forgot shows up here.
  const google::protobuf::Descriptor* d = v1::DictionaryInfo::descriptor();
  for (int i = 0; i < d->field_count(); ++i) {
    if (IsLiveState(d->field(i)->name())) continue;  // never stored
    const google::protobuf::FieldDescriptor* f = d->field(i);
    EXPECT_TRUE(f->is_repeated() ? info.GetReflection()->FieldSize(info, f) > 0
                                 : info.GetReflection()->HasField(info, f))
        << f->name();
  }
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(FromRecord(ToRecord(info)), info));
  v1::DictionaryInfo live = info;
  live.mutable_index()->set_state(v1::INDEX_STATE_READY);
  live.set_default_compute_mode(v1::COMPUTE_MODE_FAST_EXACT);
  live.set_fast_exact_ready(true);
  live.set_fast_exact_bytes(1 << 20);
  live.set_fast_exact_screen("avx2-int16");
  const v1::DictionaryInfo back = FromRecord(ToRecord(live));
  EXPECT_FALSE(back.has_index()) << "the index state is not stored";
  EXPECT_EQ(back.default_compute_mode(), v1::COMPUTE_MODE_F32) << "resolved when served";
  EXPECT_FALSE(back.fast_exact_ready());
  EXPECT_EQ(back.fast_exact_bytes(), 0);
  EXPECT_EQ(back.fast_exact_screen(), "");
  EXPECT_FALSE(ToRecord(live).has_default_compute_mode())
      << "only a mode asked for at load is stored (by the registry)";
}

TEST(ProtoConvertTest, ReadsRecordsWrittenWithTheApiMessageEmbedded) {
  // The old on-disk layout: DictionaryRecord{1: saedict.v1.DictionaryInfo, 2: weights_file}.
  const v1::DictionaryInfo info = FullInfo();
  std::string old_bytes;
  {
    google::protobuf::io::StringOutputStream out(&old_bytes);
    google::protobuf::io::CodedOutputStream coded(&out);
    const std::string embedded = info.SerializeAsString();
    coded.WriteTag((1 << 3) | 2);
    coded.WriteVarint32(static_cast<uint32_t>(embedded.size()));
    coded.WriteString(embedded);
    coded.WriteTag((2 << 3) | 2);
    coded.WriteVarint32(13);
    coded.WriteString("w.safetensors");
  }
  records::v1::DictionaryRecord record;
  ASSERT_TRUE(record.ParseFromString(old_bytes));
  EXPECT_EQ(record.weights_file(), "w.safetensors");
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(FromRecord(record.info()), info));
}

}  // namespace
}  // namespace saedict::service
