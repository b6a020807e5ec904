// hash(algorithm, data): an OpenSSL EVP digest, fed one step at a time.
// The input is borrowed: whoever submits the task keeps it alive and
// unchanged until the task is taken back.
#ifndef SIDELOOP_CORE_HASH_TASK_H_
#define SIDELOOP_CORE_HASH_TASK_H_

#include <openssl/evp.h>

#include "byte_buffer.h"
#include "step_task.h"
#include "task_kinds.h"

namespace sideloop {

class HashTask final : public StepTask {
 public:
  // The algorithms by their index in the protocol (src/tasks.ts
  // HASH_ALGORITHMS); nullptr for an index out of range.
  static const EVP_MD* Algorithm(int index);

  HashTask(const EVP_MD* md, const uint8_t* data, size_t size)
      : StepTask(kTaskHash), md_(md), data_(data), size_(size) {}

  // The digest, once the task finished successfully.
  ByteBuffer TakeOutput() { return std::move(output_); }

 protected:
  StepResult Step() override;
  void EndSteps() override;

 private:
  StepResult Digest();

  const EVP_MD* const md_;
  const uint8_t* const data_;
  const size_t size_;
  size_t done_ = 0;
  EVP_MD_CTX* ctx_ = nullptr;
  ByteBuffer output_;
};

}  // namespace sideloop

#endif  // SIDELOOP_CORE_HASH_TASK_H_
