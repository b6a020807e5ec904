#include "task_factory.h"

#include <cmath>
#include <cstdlib>
#include <new>
#include <vector>

#include "builtin_hash.h"
#include "extension_task.h"
#include "../core/exec_task.h"
#include "../core/read_file_task.h"
#include "../core/rejected_task.h"
#include "../core/task_errors.h"
#include "../core/task_kinds.h"
#include "../core/write_file_task.h"
#include "../core/zlib_task.h"

namespace sideloop {

namespace {

// Results up to this size are copied into an ordinary Buffer; larger ones
// become the Buffer's memory as they are (an external buffer), since a copy
// of megabytes costs more than the finalizer.
constexpr size_t kCopyResultBytes = 4096;

struct Bytes {
  const uint8_t* data = nullptr;
  size_t size = 0;
};

// The bytes of a Uint8Array (src/tasks.ts toBytes() hands every byte input
// over as one), read in place. False when `value` is not one.
bool GetBytes(Napi::Value value, Bytes* out) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) return false;
  auto array = value.As<Napi::Uint8Array>();
  out->data = array.Data();
  out->size = array.ByteLength();
  return true;
}

bool GetString(Napi::Value value, std::string* out) {
  if (!value.IsString()) return false;
  *out = value.As<Napi::String>().Utf8Value();
  return true;
}

bool GetStrings(Napi::Value value, std::vector<std::string>* out) {
  if (!value.IsArray()) return false;
  auto array = value.As<Napi::Array>();
  for (uint32_t i = 0; i < array.Length(); i++) {
    std::string item;
    if (!GetString(array.Get(i), &item)) return false;
    out->push_back(std::move(item));
  }
  return true;
}

// A small index (an algorithm, a level) from the batch's number field.
// Converting NaN, an infinity or a double beyond int to int is undefined
// behaviour: those become -1, which every task refuses as out of range.
int SmallIndex(double number) { return number >= -1 && number <= 1024 ? static_cast<int>(number) : -1; }

Task* CreateExecTask(Napi::Value value) {
  if (!value.IsObject()) return nullptr;
  auto request = value.As<Napi::Object>();
  ExecOptions options;
  Napi::Value cwd = request.Get("cwd");
  Napi::Value input = request.Get("input");
  Napi::Value max_buffer = request.Get("maxBuffer");
  if (!GetString(request.Get("file"), &options.file) || !GetStrings(request.Get("args"), &options.args) ||
      !GetStrings(request.Get("env"), &options.env) || !max_buffer.IsNumber()) {
    return nullptr;
  }
  if (!cwd.IsUndefined() && !GetString(cwd, &options.cwd)) return nullptr;
  if (!input.IsUndefined()) {
    Bytes bytes;
    if (!GetBytes(input, &bytes)) return nullptr;
    options.input = bytes.data;
    options.input_size = bytes.size;
  }
  // Whole bytes only: execFile compares a count with it, so 1.5 means 1.
  // Infinity, NaN and anything beyond 2^53 mean no limit.
  double limit = std::floor(max_buffer.As<Napi::Number>().DoubleValue());
  if (limit >= 0 && limit < 9007199254740992.0) options.max_buffer = static_cast<uint64_t>(limit);
  return new ExecTask(std::move(options));
}

Task* CreateWriteFileTask(Napi::Value value) {
  if (!value.IsObject()) return nullptr;
  auto request = value.As<Napi::Object>();
  std::string path;
  Bytes bytes;
  if (!GetString(request.Get("path"), &path) || !GetBytes(request.Get("data"), &bytes)) return nullptr;
  return new WriteFileTask(std::move(path), bytes.data, bytes.size);
}

Task* CreateTaskOfKind(int kind, double number, Napi::Value object) {
  Bytes bytes;
  std::string path;
  switch (kind) {
    case kTaskHash: {
      if (!GetBytes(object, &bytes)) return nullptr;
      return NewHashTask(object.Env(), SmallIndex(number), bytes.data, bytes.size);
    }
    case kTaskGzip:
    case kTaskGunzip:
    case kTaskDeflate:
    case kTaskInflate:
      if (!GetBytes(object, &bytes)) return nullptr;
      return new ZlibTask(kind, SmallIndex(number), bytes.data, bytes.size);
    case kTaskReadFile:
      if (!GetString(object, &path)) return nullptr;
      return new ReadFileTask(std::move(path));
    case kTaskWriteFile:
      return CreateWriteFileTask(object);
    case kTaskExec:
      return CreateExecTask(object);
    case kTaskExtension:
      return TakeExtensionRequest(object.Env(), object);
    default:
      return nullptr;
  }
}

// A Buffer that owns `bytes` from now on.
Napi::Value ToBuffer(Napi::Env env, ByteBuffer bytes) {
  // With an exception already pending every call below would fail, and the
  // external buffer's would not take the memory: `bytes` frees it here.
  if (env.IsExceptionPending()) return Napi::Value();
  size_t size = bytes.size();
  if (size <= kCopyResultBytes) return Napi::Buffer<uint8_t>::Copy(env, bytes.data(), size);
  uint8_t* data = bytes.Release();
  napi_value buffer;
  napi_status status = napi_create_external_buffer(
      env, size, data, [](napi_env, void* memory, void*) { std::free(memory); }, nullptr, &buffer);
  if (status == napi_ok) return Napi::Value(env, buffer);
  // With an exception pending (too large for a Buffer) Node has already
  // handed the memory to the finalizer: leave it alone. Without one the
  // runtime refused external memory (a sandboxed V8): copy instead.
  if (env.IsExceptionPending()) return Napi::Value();
  Napi::Value copy = Napi::Buffer<uint8_t>::Copy(env, data, size);
  std::free(data);
  return copy;
}

// A property of a result or an error made during a drain: defined, not set,
// so that a setter someone put on Object.prototype or Error.prototype for
// it does not run JS in the middle of a drain.
Napi::PropertyDescriptor OwnValue(const char* name, Napi::Value value) {
  return Napi::PropertyDescriptor::Value(name, value, napi_default_jsproperty);
}

Napi::Value ExecResultToJs(Napi::Env env, ExecTask* task) {
  Napi::Value stdout_buffer = ToBuffer(env, task->TakeStdout());
  Napi::Value stderr_buffer = ToBuffer(env, task->TakeStderr());
  if (stdout_buffer.IsEmpty() || stderr_buffer.IsEmpty()) return Napi::Value();  // with the reason pending
  Napi::Object result = Napi::Object::New(env);
  const char* signal = task->signal_name();
  result.DefineProperties({
      OwnValue("exitCode", task->signaled() ? env.Null() : Napi::Number::New(env, static_cast<double>(task->exit_code()))),
      OwnValue("signal", signal != nullptr ? Napi::String::New(env, signal) : env.Null()),
      OwnValue("stdout", stdout_buffer),
      OwnValue("stderr", stderr_buffer),
  });
  return result;
}

}  // namespace

Task* CreateTask(int kind, double number, Napi::Value object) {
  Task* task;
  try {
    task = CreateTaskOfKind(kind, number, object);
  } catch (const std::bad_alloc&) {
    // Its input could not be taken (the UTF-8 copy of a path or an
    // argument of hundreds of megabytes, under a memory limit): the task
    // fails. Left to unwind through V8's frames, it aborted the process.
    return new RejectedTask(OutOfMemoryError());
  }
  if (task == nullptr) {
    TaskError error;
    error.code = "ERR_SIDELOOP_BAD_TASK";
    error.message = "sideloop: the addon cannot run this task description (kind " + std::to_string(kind) + ")";
    task = new RejectedTask(std::move(error));
  }
  return task;
}

Napi::Value TaskResultToJs(Napi::Env env, Task* task) {
  switch (task->kind()) {
    case kTaskGzip:
    case kTaskGunzip:
    case kTaskDeflate:
    case kTaskInflate:
      return ToBuffer(env, static_cast<ZlibTask*>(task)->TakeOutput());
    case kTaskReadFile:
      return ToBuffer(env, static_cast<ReadFileTask*>(task)->TakeOutput());
    case kTaskExec:
      return ExecResultToJs(env, static_cast<ExecTask*>(task));
    case kTaskExtension:
      return static_cast<ExtensionTask*>(task)->ToJs(env);
    default:
      return Napi::Value();  // writeFile: the JS side has the value
  }
}

void ReleaseTask(Napi::Env env, Task* task) {
  if (task->kind() == kTaskExtension) static_cast<ExtensionTask*>(task)->ReleaseUserData(env);
}

Napi::Value TaskErrorToJs(Napi::Env env, const TaskError& error) {
  napi_value message = Napi::String::New(env, error.message);
  napi_value value;
  napi_status status = error.range_error ? napi_create_range_error(env, nullptr, message, &value)
                                         : napi_create_error(env, nullptr, message, &value);
  if (status != napi_ok) return Napi::Value();
  std::vector<Napi::PropertyDescriptor> properties;
  if (error.errnum != 0) properties.push_back(OwnValue("errno", Napi::Number::New(env, error.errnum)));
  if (!error.code.empty()) properties.push_back(OwnValue("code", Napi::String::New(env, error.code)));
  if (!error.syscall.empty()) properties.push_back(OwnValue("syscall", Napi::String::New(env, error.syscall)));
  if (error.has_path) properties.push_back(OwnValue("path", Napi::String::New(env, error.path)));
  Napi::Object object(env, value);
  if (!properties.empty()) object.DefineProperties(properties);
  return object;
}

}  // namespace sideloop
