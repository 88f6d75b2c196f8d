// The one way CPU kernels run in parallel: `ParallelRun::tasks` hands tasks to whatever OpenMP
// team it gets (an atomic counter, so a smaller team than asked still runs every task), catches
// every exception inside the region and rethrows the first one on the calling thread, stops the
// other threads at their next checkpoint, polls for interrupts (Ctrl-C) from the calling thread,
// and runs every worker with denormals kept (the caller's flush-to-zero / denormals-are-zero
// mode would make a subnormal's class depend on the thread that reads it).
// Kernels compile (serially) without OpenMP. Included by CPU kernels and the CPU bindings.
#pragma once
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <utility>

#if defined(NEARZERO_HAVE_OPENMP)
#include <omp.h>
#endif
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#endif

namespace nearzero {

// A kernel stopped because an interrupt (Ctrl-C) was pending; the bindings raise the pending
// Python exception (KeyboardInterrupt) instead.
struct Interrupted : std::exception {
  const char *what() const noexcept override { return "nearzero: interrupted"; }
};

// An allocation of known size failed; the bindings raise MemoryError with this text.
class OutOfMemory : public std::bad_alloc {
public:
  explicit OutOfMemory(std::string message) : message_(std::move(message)) {}
  const char *what() const noexcept override { return message_.c_str(); }

private:
  std::string message_;
};

// `container.resize(n)`, or OutOfMemory naming `what` and the bytes it needed.
template <typename Container>
void resize_or_throw(Container &container, std::size_t n, const char *what) {
  try {
    container.resize(n);
  } catch (const std::bad_alloc &) {
    throw OutOfMemory(std::string("nearzero: could not allocate ") +
                      std::to_string(n * sizeof(typename Container::value_type)) +
                      " bytes for " + what);
  }
}

// Set by the bindings: true when an interrupt is pending. Called only on the thread that
// entered the kernel (the Python thread), at most every kPollInterval.
using InterruptCheck = bool (*)();
inline InterruptCheck &interrupt_check() {
  static InterruptCheck check = nullptr;
  return check;
}

// True in a child forked after the module was loaded: the parent's OpenMP threads do not exist
// there (libgomp would wait for them forever), so every region runs on the calling thread.
inline std::atomic<bool> &in_forked_child() {
  static std::atomic<bool> forked{false};
  return forked;
}

inline void register_fork_handler() {
#if defined(__unix__) || defined(__APPLE__)
  static std::once_flag once;
  std::call_once(once, [] { pthread_atfork(nullptr, nullptr, [] { in_forked_child() = true; }); });
#endif
}

inline int max_threads() {
#if defined(NEARZERO_HAVE_OPENMP)
  return in_forked_child() ? 1 : std::max(1, omp_get_max_threads());
#else
  return 1;
#endif
}

// Splits [0, n) into `parts` nearly equal chunks; returns chunk `part` as [begin, end).
inline void chunk_range(int64_t n, int64_t parts, int64_t part, int64_t &begin, int64_t &end) {
  const int64_t base = n / parts, extra = n % parts;
  begin = part * base + (part < extra ? part : extra);
  end = begin + base + (part < extra ? 1 : 0);
}

// Keeps subnormal inputs and results for the guard's lifetime on this thread (clears FTZ/DAZ),
// restoring the thread's own mode afterwards.
class DenormalsKept {
public:
#if defined(__SSE__) || defined(__x86_64__)
  DenormalsKept() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ & ~0x8040u); }  // FTZ | DAZ
  ~DenormalsKept() { _mm_setcsr(saved_); }

private:
  unsigned saved_;
#elif defined(__aarch64__)
  DenormalsKept() {
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(saved_));
    const uint64_t cleared = saved_ & ~(uint64_t(1) << 24);  // FZ
    __asm__ __volatile__("msr fpcr, %0" : : "r"(cleared));
  }
  ~DenormalsKept() { __asm__ __volatile__("msr fpcr, %0" : : "r"(saved_)); }

private:
  uint64_t saved_;
#endif
};

// One parallel run of a kernel. Create it on the calling thread, run regions with tasks(), call
// checkpoint() between pieces of work of about a millisecond or more, and finish().
class ParallelRun {
public:
  static constexpr std::chrono::milliseconds kPollInterval{50};

  ParallelRun() : caller_(std::this_thread::get_id()) {}

  // Runs body(state, task) for every task in [0, tasks), each thread with its own state from
  // make_state(); then end(state) once per thread, serialised. Tasks are handed out one at a
  // time in order (dynamic scheduling); `parallel` false runs them all on the calling thread.
  template <typename MakeState, typename Body, typename End>
  void tasks(int64_t count, MakeState make_state, Body body, End end, bool parallel = true) {
    if (count <= 0 || stopped()) return;
    const int team = parallel ? int(std::min<int64_t>(max_threads(), count)) : 1;
    std::atomic<int64_t> next{0};
    std::mutex end_mutex;
    auto work = [&] {
      DenormalsKept denormals;
      try {
        auto state = make_state();
        for (int64_t task = next++; task < count && !stopped(); task = next++) body(state, task);
        std::lock_guard<std::mutex> lock(end_mutex);
        end(state);
      } catch (...) {
        fail(std::current_exception());
      }
    };
#if defined(NEARZERO_HAVE_OPENMP)
    if (team > 1) {
#pragma omp parallel num_threads(team)
      work();
    } else {
      work();
    }
#else
    work();
#endif
  }

  // body(task) for every task: tasks() without per-thread state.
  template <typename Body> void for_each(int64_t count, Body body, bool parallel = true) {
    tasks(count, [] { return 0; }, [&](int &, int64_t task) { body(task); }, [](int &) {},
          parallel);
  }

  // Throws Stopped when another thread failed; on the calling thread, polls for interrupts.
  void checkpoint() {
    if (stopped()) throw Stopped();
    if (interrupt_check() == nullptr || std::this_thread::get_id() != caller_ || ++calls_ % 16)
      return;
    const auto now = std::chrono::steady_clock::now();
    if (now < next_poll_) return;
    next_poll_ = now + kPollInterval;
    if (interrupt_check()()) throw Interrupted();
  }

  bool stopped() const { return stop_.load(std::memory_order_relaxed); }

  // Rethrows the first failure of any region of this run, on the calling thread.
  void finish() {
    if (error_) std::rethrow_exception(error_);
  }

private:
  struct Stopped : std::exception {};  // unwinds a thread after another one failed

  void fail(std::exception_ptr error) {
    try {
      std::rethrow_exception(error);
    } catch (const Stopped &) {
      return;
    } catch (const OutOfMemory &) {
    } catch (const std::bad_alloc &) {
      error = std::make_exception_ptr(
          OutOfMemory("nearzero: could not allocate a kernel's working memory"));
    } catch (...) {
    }
    std::lock_guard<std::mutex> lock(error_mutex_);
    if (!error_) error_ = error;
    stop_ = true;
  }

  std::thread::id caller_;
  unsigned calls_ = 0;  // checkpoints on the calling thread; the clock is read every 16th
  std::chrono::steady_clock::time_point next_poll_{};
  std::atomic<bool> stop_{false};
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

}  // namespace nearzero
