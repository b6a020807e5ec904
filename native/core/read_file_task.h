// readFile(path): open, read and close with synchronous uv_fs_* calls on
// the loop thread, one bounded read per step. Never the asynchronous form:
// that would queue behind Node's shared threadpool.
#ifndef SIDELOOP_CORE_READ_FILE_TASK_H_
#define SIDELOOP_CORE_READ_FILE_TASK_H_

#include <string>

#include "byte_buffer.h"
#include "open_file.h"
#include "step_task.h"
#include "task_kinds.h"

namespace sideloop {

class ReadFileTask final : public StepTask {
 public:
  explicit ReadFileTask(std::string path) : StepTask(kTaskReadFile), path_(std::move(path)) {}

  // The file's bytes, once the task finished successfully.
  ByteBuffer TakeOutput() { return std::move(output_); }

 protected:
  StepResult Step() override;
  void EndSteps() override;
  void DropOutput() override { output_.Free(); }

 private:
  StepResult Open();
  StepResult Read();

  const std::string path_;
  uv_file fd_ = -1;
  ByteBuffer output_;
  LeaseWait lease_wait_;
};

}  // namespace sideloop

#endif  // SIDELOOP_CORE_READ_FILE_TASK_H_
