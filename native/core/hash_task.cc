#include "hash_task.h"

#include <algorithm>

#include "task_errors.h"

namespace sideloop {

namespace {

// Digests are fast (hundreds of MB/s): a larger step than the default
// still takes only a couple of milliseconds.
constexpr size_t kHashStepBytes = 2 * kStepBytes;

TaskError DigestError() {
  TaskError error;
  error.code = "ERR_CRYPTO_HASH_UPDATE_FAILED";
  error.message = "Hash update failed";
  return error;
}

}  // namespace

const EVP_MD* HashTask::Algorithm(int index) {
  switch (index) {
    case 0: return EVP_md5();
    case 1: return EVP_sha1();
    case 2: return EVP_sha256();
    case 3: return EVP_sha384();
    case 4: return EVP_sha512();
    default: return nullptr;
  }
}

StepTask::StepResult HashTask::Step() {
  if (ctx_ == nullptr) {
    ctx_ = EVP_MD_CTX_new();
    if (ctx_ == nullptr) {
      failure_ = OutOfMemoryError();
      return StepResult::kFailed;
    }
    if (EVP_DigestInit_ex(ctx_, md_, nullptr) != 1) {
      failure_ = DigestError();
      return StepResult::kFailed;
    }
  }
  size_t n = std::min(size_ - done_, kHashStepBytes);
  if (n > 0 && EVP_DigestUpdate(ctx_, data_ + done_, n) != 1) {
    failure_ = DigestError();
    return StepResult::kFailed;
  }
  done_ += n;
  return done_ < size_ ? StepResult::kMore : Digest();
}

void HashTask::EndSteps() {
  EVP_MD_CTX_free(ctx_);
  ctx_ = nullptr;
}

StepTask::StepResult HashTask::Digest() {
  uint8_t* out = output_.Reserve(EVP_MAX_MD_SIZE);
  unsigned int length = 0;
  if (out == nullptr) {
    failure_ = OutOfMemoryError();
    return StepResult::kFailed;
  }
  if (EVP_DigestFinal_ex(ctx_, out, &length) != 1) {
    failure_ = DigestError();
    return StepResult::kFailed;
  }
  output_.Commit(length);
  return StepResult::kDone;
}

}  // namespace sideloop
