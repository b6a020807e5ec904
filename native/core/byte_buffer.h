// A growable run of bytes that a task fills on the loop thread and the
// binding hands to JS without copying (Release() gives the memory away).
// malloc/realloc rather than std::vector: no zero-filling of space that is
// about to be overwritten, and memory that can leave the object.
#ifndef SIDELOOP_CORE_BYTE_BUFFER_H_
#define SIDELOOP_CORE_BYTE_BUFFER_H_

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <utility>

namespace sideloop {

class ByteBuffer {
 public:
  ByteBuffer() = default;
  ~ByteBuffer() { std::free(data_); }
  ByteBuffer(ByteBuffer&& other) noexcept { *this = std::move(other); }
  ByteBuffer& operator=(ByteBuffer&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(capacity_, other.capacity_);
    return *this;
  }
  ByteBuffer(const ByteBuffer&) = delete;
  ByteBuffer& operator=(const ByteBuffer&) = delete;

  // Room for at least `n` more bytes after size(); returns where they go,
  // or nullptr when memory ran out (the buffer is then unchanged).
  uint8_t* Reserve(size_t n);
  // The first `n` reserved bytes now hold data.
  void Commit(size_t n) { size_ += n; }

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  size_t spare() const { return capacity_ - size_; }

  // Frees the memory now; the buffer is empty after.
  void Free() { std::free(Release()); }

  // Gives the memory away (free it with std::free); the buffer is empty after.
  uint8_t* Release() {
    uint8_t* data = data_;
    data_ = nullptr;
    size_ = capacity_ = 0;
    return data;
  }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace sideloop

#endif  // SIDELOOP_CORE_BYTE_BUFFER_H_
