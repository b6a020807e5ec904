#include "zlib_task.h"

#include <algorithm>
#include <cstdint>

#include "task_errors.h"

namespace sideloop {

namespace {

// node:zlib's default chunkSize: its one-shot functions give zlib a fresh
// output buffer of this size on every call. Stored blocks (level 0) are
// cut to fit the output buffer, so the same size gives the same bytes.
constexpr size_t kChunkBytes = 16 * 1024;

// Input handed to zlib per call (but when compressing at level 0). Without
// a limit one call can chew through megabytes of input while filling one
// output chunk: very compressible input with Z_FINISH, or, decompressing,
// input that inflates to almost nothing (thousands of empty blocks). A
// step can only stop between calls, so its time limit and a cancel waited
// for the whole input. Neither the compressed bytes at levels 1-9 nor the
// inflated bytes depend on how the input is split. Small enough that one
// call at level 9 on very compressible input stays within a few
// milliseconds.
constexpr size_t kInputPieceBytes = 16 * 1024;

// Window bits and memory level as node:zlib uses them by default.
constexpr int kWindowBits = 15;
constexpr int kGzipWindowBits = kWindowBits + 16;
constexpr int kMemLevel = 8;

const char* ZlibCode(int ret) {
  switch (ret) {
    case Z_OK: return "Z_OK";
    case Z_STREAM_END: return "Z_STREAM_END";
    case Z_NEED_DICT: return "Z_NEED_DICT";
    case Z_ERRNO: return "Z_ERRNO";
    case Z_STREAM_ERROR: return "Z_STREAM_ERROR";
    case Z_DATA_ERROR: return "Z_DATA_ERROR";
    case Z_MEM_ERROR: return "Z_MEM_ERROR";
    case Z_BUF_ERROR: return "Z_BUF_ERROR";
    case Z_VERSION_ERROR: return "Z_VERSION_ERROR";
    default: return "Z_UNKNOWN_ERROR";
  }
}

}  // namespace

bool ZlibTask::Init() {
  int window_bits = kind() == kTaskGzip || kind() == kTaskGunzip ? kGzipWindowBits : kWindowBits;
  int ret = compressing()
                ? deflateInit2(&stream_, level_, Z_DEFLATED, window_bits, kMemLevel, Z_DEFAULT_STRATEGY)
                : inflateInit2(&stream_, window_bits);
  if (ret != Z_OK) {
    failure_.code = "ERR_ZLIB_INITIALIZATION_FAILED";
    failure_.message = "Initialization failed";
    return false;
  }
  initialized_ = true;
  return true;
}

void ZlibTask::Feed(size_t max_piece) {
  if (stream_.avail_in != 0 || fed_ == size_) return;
  size_t piece = std::min({size_ - fed_, max_piece, size_t{UINT32_MAX}});
  stream_.next_in = const_cast<Bytef*>(data_ + fed_);
  stream_.avail_in = static_cast<uInt>(piece);
  fed_ += piece;
}

void ZlibTask::EndSteps() {
  if (!initialized_) return;
  if (compressing()) deflateEnd(&stream_);
  else inflateEnd(&stream_);
  initialized_ = false;
}

StepTask::StepResult ZlibTask::Step() {
  if (!initialized_ && !Init()) return StepResult::kFailed;
  const uint64_t started = uv_hrtime();
  size_t worked = 0;
  while (worked < kStepBytes) {
    size_t in_before = stream_.avail_in + (size_ - fed_);
    size_t out_before = output_.size();
    StepResult result = compressing() ? Compress() : Decompress();
    if (result != StepResult::kMore) return result;
    worked += in_before - (stream_.avail_in + (size_ - fed_)) + (output_.size() - out_before);
    if (uv_hrtime() - started >= kStepBudgetNs) break;
  }
  return StepResult::kMore;
}

bool ZlibTask::ReserveOutput() {
  if (chunk_left_ == 0) chunk_left_ = kChunkBytes;
  uint8_t* out = output_.Reserve(chunk_left_);
  if (out == nullptr) return false;
  stream_.next_out = out;
  stream_.avail_out = static_cast<uInt>(chunk_left_);
  return true;
}

StepTask::StepResult ZlibTask::Compress() {
  // Level 0 (stored blocks) gets all input at once, as node:zlib gives it:
  // there the block boundaries depend on how much input is at hand. Each
  // call then copies at most one output chunk.
  Feed(level_ == 0 ? SIZE_MAX : kInputPieceBytes);
  if (!ReserveOutput()) {
    failure_ = OutOfMemoryError();
    return StepResult::kFailed;
  }
  int flush = fed_ == size_ ? Z_FINISH : Z_NO_FLUSH;
  int ret = deflate(&stream_, flush);
  output_.Commit(chunk_left_ - stream_.avail_out);
  chunk_left_ = stream_.avail_out;
  if (output_.size() > kMaxResultBytes) return TooLarge();
  if (ret == Z_STREAM_END) return StepResult::kDone;
  if (ret != Z_OK && ret != Z_BUF_ERROR) return Error(ret, "Zlib error");
  // Room left after finishing input: zlib wants more input that does not exist.
  if (flush == Z_FINISH && stream_.avail_out != 0) return Error(ret, "unexpected end of file");
  return StepResult::kMore;
}

StepTask::StepResult ZlibTask::Decompress() {
  // The input piece and the output chunk together bound the work of a call.
  Feed(kInputPieceBytes);
  if (!ReserveOutput()) {
    failure_ = OutOfMemoryError();
    return StepResult::kFailed;
  }
  int ret = inflate(&stream_, fed_ == size_ ? Z_FINISH : Z_NO_FLUSH);
  output_.Commit(chunk_left_ - stream_.avail_out);
  chunk_left_ = stream_.avail_out;
  if (output_.size() > kMaxResultBytes) return TooLarge();  // a gzip bomb, say
  if (ret == Z_STREAM_END) {
    // As node:zlib: more input after a gzip member is another member,
    // unless it is zero bytes (padding); after a deflate stream it is ignored.
    // The member may have ended with a piece: what follows is in the next.
    if (kind() == kTaskGunzip) {
      Feed(kInputPieceBytes);
      if (stream_.avail_in > 0 && stream_.next_in[0] != 0) {
        inflateReset(&stream_);
        return StepResult::kMore;
      }
    }
    return StepResult::kDone;
  }
  if (ret == Z_NEED_DICT) return Error(ret, "Missing dictionary");
  if (ret != Z_OK && ret != Z_BUF_ERROR) return Error(ret, "Zlib error");
  // Output room left over, yet not at the end of the stream: the input
  // ended early (truncated, or empty).
  if (stream_.avail_out != 0 && fed_ == size_) return Error(ret, "unexpected end of file");
  return StepResult::kMore;
}

StepTask::StepResult ZlibTask::TooLarge() {
  failure_ = ResultTooLargeError();
  return StepResult::kFailed;
}

// node:zlib's message is zlib's own when it gave one, else `message`.
StepTask::StepResult ZlibTask::Error(int ret, const char* message) {
  failure_.code = ZlibCode(ret);
  failure_.errnum = ret;
  failure_.message = stream_.msg != nullptr ? stream_.msg : message;
  return StepResult::kFailed;
}

}  // namespace sideloop
