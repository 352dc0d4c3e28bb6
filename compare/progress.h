// ComparisonProgress: the progress callback of the long-running comparisons
// in compare/ (activation matching; decoder matching declares the same
// alias, which C++ allows as long as both name the same type).
//
// Called from the comparing thread with a phase name (a string literal, valid
// for the program's lifetime) and the fraction of that phase done, in [0, 1].
// It must not call back into the comparison; it may be null (no reports).
#ifndef SAEDICT_COMPARE_PROGRESS_H_
#define SAEDICT_COMPARE_PROGRESS_H_

#include <functional>

namespace saedict::compare {

using ComparisonProgress = std::function<void(const char* phase, double fraction)>;

}  // namespace saedict::compare

#endif  // SAEDICT_COMPARE_PROGRESS_H_
