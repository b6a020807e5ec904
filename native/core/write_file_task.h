// writeFile(path, data): open (truncating), write and close with
// synchronous uv_fs_* calls on the loop thread, one bounded write per step,
// never queued on Node's shared threadpool. The data is borrowed: whoever
// submits the task keeps it alive until it is taken back.
#ifndef SIDELOOP_CORE_WRITE_FILE_TASK_H_
#define SIDELOOP_CORE_WRITE_FILE_TASK_H_

#include <string>

#include "open_file.h"
#include "step_task.h"
#include "task_kinds.h"

namespace sideloop {

class WriteFileTask final : public StepTask {
 public:
  WriteFileTask(std::string path, const uint8_t* data, size_t size)
      : StepTask(kTaskWriteFile), path_(std::move(path)), data_(data), size_(size) {}

 protected:
  StepResult Step() override;
  void EndSteps() override;

 private:
  StepResult Open();
  StepResult Write();
  StepResult Close();

  const std::string path_;
  const uint8_t* const data_;
  const size_t size_;
  size_t written_ = 0;
  uv_file fd_ = -1;
  LeaseWait lease_wait_;
};

}  // namespace sideloop

#endif  // SIDELOOP_CORE_WRITE_FILE_TASK_H_
