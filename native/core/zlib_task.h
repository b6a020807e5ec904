// gzip, gunzip, deflate and inflate with zlib (the copy inside the node
// binary), with the settings node:zlib's one-shot functions use, so the
// output is byte for byte theirs and errors carry their codes. The input is
// borrowed: whoever submits the task keeps it alive until it is taken back.
#ifndef SIDELOOP_CORE_ZLIB_TASK_H_
#define SIDELOOP_CORE_ZLIB_TASK_H_

#include <zlib.h>

#include "byte_buffer.h"
#include "step_task.h"
#include "task_kinds.h"

namespace sideloop {

class ZlibTask final : public StepTask {
 public:
  // `kind` is kTaskGzip, kTaskGunzip, kTaskDeflate or kTaskInflate;
  // `level` (-1 for zlib's default) matters only when compressing.
  ZlibTask(int kind, int level, const uint8_t* data, size_t size)
      : StepTask(kind), level_(level), data_(data), size_(size) {}

  // The output, once the task finished successfully.
  ByteBuffer TakeOutput() { return std::move(output_); }

 protected:
  StepResult Step() override;
  void EndSteps() override;
  void DropOutput() override { output_.Free(); }

 private:
  bool compressing() const { return kind() == kTaskGzip || kind() == kTaskDeflate; }
  bool Init();
  // Hands zlib the next piece of input, at most `max_piece` bytes, once it
  // has used up the previous one.
  void Feed(size_t max_piece);
  // One zlib call; returns kMore while the stream goes on.
  StepResult Compress();
  StepResult Decompress();
  bool ReserveOutput();
  StepResult Error(int ret, const char* message);
  StepResult TooLarge();  // the output passed kMaxResultBytes

  const int level_;
  const uint8_t* const data_;
  const size_t size_;
  size_t fed_ = 0;  // input bytes handed to zlib so far
  z_stream stream_{};
  bool initialized_ = false;
  size_t chunk_left_ = 0;  // room left in the current output chunk
  ByteBuffer output_;
};

}  // namespace sideloop

#endif  // SIDELOOP_CORE_ZLIB_TASK_H_
