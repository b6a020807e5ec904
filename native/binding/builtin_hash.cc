#include "builtin_hash.h"

#include <openssl/evp.h>

#include <algorithm>
#include <memory>

#include "../../include/sideloop.h"
#include "extension_task.h"
#include "native_api.h"

namespace sideloop {

namespace {

// Digests run at hundreds of MB/s: 1 MiB a step keeps each step to a couple
// of milliseconds, so cancel() and timeouts act within milliseconds.
constexpr size_t kStepBytes = 1024 * 1024;

// Everything the task owns: user_data in the public interface's terms.
struct HashJob {
  const EVP_MD* md;
  const uint8_t* data;
  size_t size;
  size_t done = 0;
  EVP_MD_CTX* ctx = nullptr;
  uv_idle_t idle;  // one step per loop turn
  sideloop_task* task = nullptr;
  const char* failure = nullptr;  // set when OpenSSL refused
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_length = 0;
};

const EVP_MD* Algorithm(int index) {
  switch (index) {
    case 0: return EVP_md5();
    case 1: return EVP_sha1();
    case 2: return EVP_sha256();
    case 3: return EVP_sha384();
    case 4: return EVP_sha512();
    default: return nullptr;
  }
}

// Loop thread: reports the outcome; the task ends here.
void Report(HashJob* job) {
  EVP_MD_CTX_free(job->ctx);
  job->ctx = nullptr;
  const sideloop_api* api = OwnNativeApi();
  // After an abort sideloop reports the reason (cancel, timeout) itself.
  if (job->failure != nullptr) api->fail(job->task, "ERR_CRYPTO_HASH_UPDATE_FAILED", job->failure);
  else api->complete(job->task);
}

// Loop thread: hashes one step's worth; false once the digest is made (or
// OpenSSL refused).
bool Advance(HashJob* job) {
  size_t n = std::min(job->size - job->done, kStepBytes);
  if (n > 0 && EVP_DigestUpdate(job->ctx, job->data + job->done, n) != 1) {
    job->failure = "Hash update failed";
    return false;
  }
  job->done += n;
  if (job->done < job->size) return true;
  if (EVP_DigestFinal_ex(job->ctx, job->digest, &job->digest_length) != 1) job->failure = "Hash digest failed";
  return false;
}

// Loop thread: stop stepping; the task ends once the idle handle is closed.
void End(HashJob* job) {
  auto* handle = reinterpret_cast<uv_handle_t*>(&job->idle);
  if (uv_is_closing(handle)) return;
  uv_idle_stop(&job->idle);
  uv_close(handle, [](uv_handle_t* closed) { Report(static_cast<HashJob*>(closed->data)); });
}

void Step(uv_idle_t* idle) {
  auto* job = static_cast<HashJob*>(idle->data);
  if (OwnNativeApi()->aborting(job->task) || !Advance(job)) End(job);
}

void Start(sideloop_task* task, void* user_data, uv_loop_t* loop) {
  auto* job = static_cast<HashJob*>(user_data);
  job->task = task;
  job->ctx = EVP_MD_CTX_new();
  if (job->ctx == nullptr || EVP_DigestInit_ex(job->ctx, job->md, nullptr) != 1) {
    job->failure = "Hash initialization failed";
    return Report(job);
  }
  // The first step runs at once: an input that fits in one step (most) is
  // hashed and reported in the turn that received it, with no handle.
  if (!Advance(job)) return Report(job);
  job->idle.data = job;
  uv_idle_init(loop, &job->idle);
  uv_idle_start(&job->idle, Step);
}

void Cancel(sideloop_task*, void* user_data) { End(static_cast<HashJob*>(user_data)); }

napi_value ToJs(napi_env env, void* user_data) {
  auto* job = static_cast<HashJob*>(user_data);
  napi_value buffer = nullptr;
  napi_create_buffer_copy(env, job->digest_length, job->digest, nullptr, &buffer);
  return buffer;
}

void Free(napi_env, void* user_data) { delete static_cast<HashJob*>(user_data); }

const sideloop_task_vtable kHashVtable = {sizeof(sideloop_task_vtable), Start, Cancel, ToJs, Free};

}  // namespace

Task* NewHashTask(napi_env env, int index, const uint8_t* data, size_t size) {
  const EVP_MD* md = Algorithm(index);
  if (md == nullptr) return nullptr;
  auto job = std::make_unique<HashJob>();  // freed here if the task cannot be made
  job->md = md;
  job->data = data;
  job->size = size;
  auto* task = new ExtensionTask(kHashVtable, job.get(), env);
  job.release();
  return task;
}

}  // namespace sideloop
