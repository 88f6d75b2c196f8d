// The radix select of |x| order statistics behind percentile thresholds (SPEC §2), shared by
// cpu/threshold_cpu.cpp and cuda/threshold_cuda.cu: the keys, the digits of each level and the
// walk from level to level. Both backends read their data through these, so the CPU and the
// GPU select the same bits and return bit-identical thresholds; only how a histogram, a bucket
// copy or a bucket's bounds are computed differs between them.
//
// Non-negative IEEE floats order like their bit patterns, so |x| is selected digit by digit
// (11 bits a level, histograms small enough for L1 or shared memory) over the keys
// bits(x) & ~sign; keys above +inf's are NaN.
#pragma once
#include "common/host_device.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace nearzero {

template <typename T> struct AbsOrderStatistics {
  T low;              // sorted(|x|)[floor(idx)]
  T high;             // sorted(|x|)[ceil(idx)]
  int64_t count;      // number of non-NaN elements the ranks refer to
  int64_t nan_count;  // NaNs, which are left out of the selection
};

namespace radix {

constexpr int kDigitBits = 11;
constexpr int kBins = 1 << kDigitBits;

// unsigned int / unsigned long long rather than uint32_t / uint64_t: CUDA's atomicMin and
// atomicMax take these.
template <typename T> struct KeyTraits;
template <> struct KeyTraits<float> {
  using Key = unsigned int;
  static constexpr int kValueBits = 31;
  static constexpr Key kInfinity = 0x7F800000u;
};
template <> struct KeyTraits<double> {
  using Key = unsigned long long;
  static constexpr int kValueBits = 63;
  static constexpr Key kInfinity = 0x7FF0000000000000ull;
};

NEARZERO_HOST_DEVICE unsigned int abs_key(float v) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(v) & 0x7FFFFFFFu;
#else
  unsigned int k;
  std::memcpy(&k, &v, sizeof(k));
  return k & 0x7FFFFFFFu;
#endif
}

NEARZERO_HOST_DEVICE unsigned long long abs_key(double v) {
#if defined(__CUDA_ARCH__)
  return static_cast<unsigned long long>(__double_as_longlong(v)) & 0x7FFFFFFFFFFFFFFFull;
#else
  unsigned long long k;
  std::memcpy(&k, &v, sizeof(k));
  return k & 0x7FFFFFFFFFFFFFFFull;
#endif
}

// Whether a key is a NaN's (larger than +inf's).
NEARZERO_HOST_DEVICE bool is_nan_key(unsigned int key) {
  return key > KeyTraits<float>::kInfinity;
}
NEARZERO_HOST_DEVICE bool is_nan_key(unsigned long long key) {
  return key > KeyTraits<double>::kInfinity;
}

// The value of a key (a non-negative float).
template <typename T> NEARZERO_HOST_DEVICE T key_value(typename KeyTraits<T>::Key key) {
#if defined(__CUDA_ARCH__)
  if constexpr (sizeof(T) == 4)
    return __uint_as_float(key);
  else
    return __longlong_as_double(static_cast<long long>(key));
#else
  T value;
  std::memcpy(&value, &key, sizeof(T));
  return value;
#endif
}

// What one pass over the data needs of the current level: keys with `prefix` under
// `prefix_mask` are in the bucket being narrowed, and `digit` is their next digit.
template <typename Key> struct Level {
  Key prefix, prefix_mask, digit_mask;
  int shift;

  NEARZERO_HOST_DEVICE bool holds(Key key) const { return (key & prefix_mask) == prefix; }
  NEARZERO_HOST_DEVICE int digit(Key key) const { return int((key >> shift) & digit_mask); }
  int bins() const { return int(digit_mask) + 1; }
};

// The walk over the levels (host code). Per level the caller builds the histogram of
// level().digit over the keys level().holds (NaNs left out), then calls locate(); where the two
// ranks fell in different buckets (split()), low is the largest key of bucket low_prefix() and
// high the smallest of high_prefix() (under next_mask()), which one more pass finds; otherwise
// descend() narrows to the bucket, and a caller may finish a small bucket by selecting ranks
// rank_low and rank_high among its keys.
template <typename T> class Select {
public:
  using Key = typename KeyTraits<T>::Key;

  // Moves to the next level; false once every bit is fixed (then both ranks hold settled()).
  bool next_level() {
    if (shift_ == 0) return false;
    const int width = std::min(kDigitBits, shift_);
    shift_ -= width;
    digit_mask_ = (Key(1) << width) - 1;
    return true;
  }

  Level<Key> level() const { return {prefix_, prefix_mask_, digit_mask_, shift_}; }
  bool started() const { return started_; }
  bool more_levels() const { return shift_ > 0; }

  // From the first level's histogram: n elements of which `nan_count` are NaN, each standing
  // for `repeat` equal values (a broadcast input read once). The ranks of the midpoint
  // percentile are floor and ceil of (count - 1) * fraction, clipped to [0, count - 1], among
  // all count values. False when there is nothing to select (the caller returns empty()).
  bool start(int64_t n, int64_t nan_count, double fraction, int64_t repeat) {
    started_ = true;
    count_ = (n - nan_count) * repeat;
    nan_count_ = nan_count * repeat;
    if (count_ <= 0) return false;
    const double idx = double(count_ - 1) * fraction;
    rank_low_ = std::clamp<int64_t>(int64_t(std::floor(idx)), 0, count_ - 1) / repeat;
    rank_high_ = std::clamp<int64_t>(int64_t(std::ceil(idx)), 0, count_ - 1) / repeat;
    return true;
  }

  // Finds the digits holding both ranks in `hist` (level().bins() entries) and turns the ranks
  // into ranks inside those digits' buckets.
  template <typename Count> void locate(const Count *hist) {
    digit_low_ = locate_digit(hist, rank_low_);
    digit_high_ = locate_digit(hist, rank_high_);
    bucket_ = int64_t(hist[digit_low_]);
  }

  bool split() const { return digit_low_ != digit_high_; }
  Key next_mask() const { return prefix_mask_ | (digit_mask_ << shift_); }
  Key low_prefix() const { return prefix_ | (Key(digit_low_) << shift_); }
  Key high_prefix() const { return prefix_ | (Key(digit_high_) << shift_); }

  void descend() {
    prefix_ = low_prefix();
    prefix_mask_ = next_mask();
  }

  int64_t bucket() const { return bucket_; }  // elements in the located bucket
  int64_t rank_low() const { return rank_low_; }
  int64_t rank_high() const { return rank_high_; }

  AbsOrderStatistics<T> result(Key low, Key high) const {
    return {key_value<T>(low), key_value<T>(high), count_, nan_count_};
  }
  AbsOrderStatistics<T> settled() const { return result(prefix_, prefix_); }
  AbsOrderStatistics<T> empty() const { return {T(0), T(0), 0, nan_count_}; }

private:
  template <typename Count> int locate_digit(const Count *hist, int64_t &rank) const {
    for (int d = 0; d < int(digit_mask_) + 1; ++d) {
      if (rank < int64_t(hist[d])) return d;
      rank -= int64_t(hist[d]);
    }
    throw std::logic_error("nearzero: threshold selection lost an element (internal error)");
  }

  Key prefix_ = 0, prefix_mask_ = 0, digit_mask_ = 0;
  int shift_ = KeyTraits<T>::kValueBits;
  bool started_ = false;
  int digit_low_ = 0, digit_high_ = 0;
  int64_t rank_low_ = 0, rank_high_ = 0, count_ = 0, nan_count_ = 0, bucket_ = 0;
};

}  // namespace radix
}  // namespace nearzero
