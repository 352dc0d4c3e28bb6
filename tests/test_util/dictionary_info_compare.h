// Compares DictionaryInfo messages on what is stored, leaving out the live
// index state (DictionaryInfo.index changes as the background builder runs).
#ifndef SAEDICT_TESTS_TEST_UTIL_DICTIONARY_INFO_COMPARE_H_
#define SAEDICT_TESTS_TEST_UTIL_DICTIONARY_INFO_COMPARE_H_

#include "google/protobuf/util/message_differencer.h"
#include "saedict/v1/saedict.pb.h"

namespace saedict::testing {

inline bool SameStoredInfo(const v1::DictionaryInfo& a, const v1::DictionaryInfo& b) {
  google::protobuf::util::MessageDifferencer differ;
  differ.IgnoreField(v1::DictionaryInfo::descriptor()->FindFieldByName("index"));
  return differ.Compare(a, b);
}

}  // namespace saedict::testing

#endif  // SAEDICT_TESTS_TEST_UTIL_DICTIONARY_INFO_COMPARE_H_
