// Recycled<T>: gives class T its own operator new/delete that keep up to
// kKeep freed blocks per thread and hand them out again.
//
// Why: a `sleep(0)` costs about as much as the malloc and free of its task
// object, at millions per second (measured with perf: about 15 % of the
// thread's time, back when the JS thread made them). Sleep tasks are made
// and freed on the loop thread (LoopThread::MakeSleep, Publish), so a
// per-thread list needs no lock.
//
// The list is a trivially destructible thread_local, so it can be used at any
// time, even during process exit after thread-local destructors have run;
// a separate Cleaner frees the kept blocks when the thread ends and closes
// the list, so later frees go straight back to the allocator.
//
// Sanitizer builds keep nothing: recycling would hide a use after free.
#ifndef SIDELOOP_CORE_RECYCLED_H_
#define SIDELOOP_CORE_RECYCLED_H_

#include <cstddef>
#include <new>

namespace sideloop {

template <typename T>
class Recycled {
 public:
  // Only blocks of exactly sizeof(T) are kept, and any T holds a pointer.
  static void* operator new(size_t size) {
    FreeList& list = free_list_;
    if (size != sizeof(T) || list.head == nullptr) return ::operator new(size);
    Block* block = list.head;
    list.head = block->next;
    list.count--;
    return block;
  }

  static void operator delete(void* memory, size_t size) {
    FreeList& list = free_list_;
    if (size != sizeof(T) || list.closed || list.count >= kKeep) {
      ::operator delete(memory);
      return;
    }
    if (list.head == nullptr) cleaner_.armed = true;  // registers the Cleaner for this thread
    auto* block = static_cast<Block*>(memory);
    block->next = list.head;
    list.head = block;
    list.count++;
  }

 protected:
  Recycled() = default;
  ~Recycled() = default;

 private:
#if defined(SIDELOOP_SANITIZE) || defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  static constexpr size_t kKeep = 0;
#else
  static constexpr size_t kKeep = 1024;  // one drain's worth (the JS side's DRAIN_BUDGET)
#endif

  struct Block {
    Block* next;
  };
  struct FreeList {
    Block* head;
    size_t count;
    bool closed;
  };
  struct Cleaner {
    bool armed = false;
    ~Cleaner() {
      FreeList& list = free_list_;
      list.closed = true;
      while (Block* block = list.head) {
        list.head = block->next;
        ::operator delete(block);
      }
      list.count = 0;
    }
  };

  static thread_local FreeList free_list_;
  static thread_local Cleaner cleaner_;
};

template <typename T>
thread_local typename Recycled<T>::FreeList Recycled<T>::free_list_{nullptr, 0, false};
template <typename T>
thread_local typename Recycled<T>::Cleaner Recycled<T>::cleaner_;

}  // namespace sideloop

#endif  // SIDELOOP_CORE_RECYCLED_H_
