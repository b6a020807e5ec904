#include "byte_buffer.h"

namespace sideloop {

uint8_t* ByteBuffer::Reserve(size_t n) {
  if (capacity_ - size_ >= n) return data_ + size_;
  // Doubling keeps the cost of growing linear in the final size.
  size_t wanted = size_ + n;
  if (wanted < size_) return nullptr;  // overflow
  size_t capacity = capacity_ > wanted / 2 ? capacity_ * 2 : wanted;
  if (capacity < wanted) capacity = wanted;
  void* grown = std::realloc(data_, capacity);
  if (grown == nullptr) return nullptr;
  data_ = static_cast<uint8_t*>(grown);
  capacity_ = capacity;
  return data_ + size_;
}

}  // namespace sideloop
