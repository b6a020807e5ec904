#include "native_loop.h"

#include <algorithm>
#include <cmath>
#include <new>

#include "addon.h"
#include "extension_task.h"
#include "task_factory.h"
#include "../core/task_kinds.h"

namespace sideloop {

namespace {

// How long one blocking wait sleeps before it checks that its environment
// may still run JS: worker.terminate(), a vm script's timeout and the REPL's
// Ctrl+C must not hang behind result().
constexpr uint64_t kWaitSliceMs = 50;

// Slots are handed out densely by the TS layer, one per task in flight: 2^26
// Futures would need tens of GB of JS heap, far past V8's limit.
constexpr double kSlotLimit = 1 << 26;

bool CanRunJs(Napi::Env env) {
  auto* addon = env.GetInstanceData<Addon>();
  napi_value result;
  napi_status status = napi_call_function(env, env.Undefined(), addon->js_probe.Value(), 0, nullptr, &result);
  return status == napi_ok;
}

}  // namespace

Napi::Function NativeLoop::DefineClass(Napi::Env env) {
  return ObjectWrap<NativeLoop>::DefineClass(env, "NativeLoop",
                                             {
                                                 InstanceMethod<&NativeLoop::Submit>("submit"),
                                                 InstanceMethod<&NativeLoop::Drain>("drain"),
                                                 InstanceMethod<&NativeLoop::Cancel>("cancel"),
                                                 InstanceMethod<&NativeLoop::Phase>("phase"),
                                                 InstanceMethod<&NativeLoop::Wait>("wait"),
                                                 InstanceMethod<&NativeLoop::SetBusy>("setBusy"),
                                                 InstanceMethod<&NativeLoop::Running>("running"),
                                                 InstanceMethod<&NativeLoop::Stop>("stop"),
                                             });
}

NativeLoop::NativeLoop(const Napi::CallbackInfo& info) : ObjectWrap<NativeLoop>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (info.Length() < 6 || !info[0].IsString() || !info[1].IsBoolean() || !info[2].IsFunction() ||
      !info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array ||
      !info[4].IsTypedArray() || info[4].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      !info[5].IsArray()) {
    Napi::TypeError::New(env, "sideloop: bad NativeLoop arguments").ThrowAsJavaScriptException();
    return;
  }
  auto ids = info[3].As<Napi::Uint32Array>();
  auto statuses = info[4].As<Napi::Uint8Array>();
  if (ids.ElementLength() == 0 || statuses.ElementLength() < ids.ElementLength()) {
    Napi::RangeError::New(env, "sideloop: bad drain buffers").ThrowAsJavaScriptException();
    return;
  }
  keep_alive_ = info[1].As<Napi::Boolean>().Value();
  on_wake_ = Napi::Weak(info[2].As<Napi::Function>());
  ids_ref_ = Napi::Persistent(ids);
  statuses_ref_ = Napi::Persistent(statuses);
  payloads_ref_ = Napi::Persistent(info[5].As<Napi::Object>());
  drain_capacity_ = ids.ElementLength();

  // The thread-safe function may deliver a queued call after this object is
  // gone; it reaches us only through `relay_`, which outlives it.
  relay_ = new WakeRelay{this};
  napi_status status = napi_create_threadsafe_function(
      env, nullptr, nullptr, Napi::String::New(env, "sideloop"), 0, 1, relay_,
      [](napi_env, void* data, void*) { delete static_cast<WakeRelay*>(data); }, relay_, CallJs, &tsfn_);
  if (status != napi_ok) {
    delete relay_;
    relay_ = nullptr;
    tsfn_ = nullptr;
    Napi::Error::New(env, "sideloop: could not create the thread-safe function").ThrowAsJavaScriptException();
    return;
  }
  // An idle loop never keeps the process alive (SetBusy refs it).
  napi_unref_threadsafe_function(env, tsfn_);

  // Added after the thread-safe function, so Node runs it before that
  // function's own cleanup (hooks run in reverse order): the thread is
  // joined while everything it may call is still alive. Without it a
  // terminated worker frees the loop under a running thread, and natural
  // exit waits for a thread nobody told to stop.
  napi_add_env_cleanup_hook(env, OnEnvCleanup, this);
  cleanup_hook_added_ = true;

  LoopOptions options;
  // Only the first 15 bytes name the thread: read a few more than that,
  // never the whole string (a copy of a name of hundreds of megabytes
  // could fail, and std::bad_alloc aborted the process). Cut at a
  // character's end.
  char name[64];
  size_t name_length = 0;
  napi_get_value_string_utf8(env, info[0], name, sizeof name, &name_length);
  options.name.assign(name, name_length);
  if (info.Length() > 6 && info[6].IsNumber()) options.spin_us = info[6].As<Napi::Number>().Uint32Value();
  spin_us_ = options.spin_us;
  core_ = std::make_unique<LoopThread>(std::move(options), this);
  int err = core_->Start();
  if (err != 0) {
    Shutdown();
    Napi::Error error = Napi::Error::New(env, std::string("sideloop: could not start the loop thread: ") + uv_strerror(err));
    error.Set("code", Napi::String::New(env, uv_err_name(err)));
    error.ThrowAsJavaScriptException();
  }
}

NativeLoop::~NativeLoop() {
  // Reached when an unreferenced loop is collected, or when the environment
  // is torn down (after OnEnvCleanup, which freed the tasks already).
  Shutdown();
  ReleaseUndrainedTasks();
}

// Tasks never drained, once the thread is joined: free them (their JS side
// is gone with us).
void NativeLoop::ReleaseUndrainedTasks() {
  if (core_ == nullptr) return;
  // A few at a time, in space of its own: taken_ may be gone (ReleaseDrainSpace),
  // and at teardown there is no call to make it again for.
  Completion taken[64];
  while (size_t n = core_->TakeCompletions(taken, 64)) {
    for (size_t i = 0; i < n; i++) {
      Task* task = taken[i].task;
      if (task == nullptr) continue;  // made and freed by the loop thread
      ReleaseTask(Napi::Env(env_), task);
      core_->Dispose(task);
    }
  }
}

// An extension's free gets its own environment, which Node deletes in a
// cleanup hook of its own, added when the extension loaded. Ours must run
// before that one (hooks run in reverse order) to free that extension's
// tasks while its environment lives: it is added again, after, the first
// time one of its tasks comes. Still after the thread-safe function's.
void NativeLoop::CleanUpBefore(napi_env extension_env) {
  if (extension_env == env_ || !cleanup_hook_added_) return;
  if (std::find(extension_envs_.begin(), extension_envs_.end(), extension_env) != extension_envs_.end()) return;
  extension_envs_.push_back(extension_env);
  napi_remove_env_cleanup_hook(env_, OnEnvCleanup, this);
  napi_add_env_cleanup_hook(env_, OnEnvCleanup, this);
}

void NativeLoop::StopThread() {
  if (core_ != nullptr) core_->StopAndJoin();
  ReleaseThreadSafeFunction();
}

void NativeLoop::Shutdown() {
  StopThread();
  if (cleanup_hook_added_) {
    napi_remove_env_cleanup_hook(env_, OnEnvCleanup, this);
    cleanup_hook_added_ = false;
  }
}

void NativeLoop::ReleaseThreadSafeFunction() {
  if (relay_ != nullptr) relay_->loop = nullptr;  // freed by the function's finalizer
  relay_ = nullptr;
  if (tsfn_ == nullptr) return;
  napi_release_threadsafe_function(tsfn_, napi_tsfn_release);
  tsfn_ = nullptr;
}

void NativeLoop::OnEnvCleanup(void* arg) {
  auto* self = static_cast<NativeLoop*>(arg);
  self->cleanup_hook_added_ = false;  // Node removes a hook once it has run
  // No thread of ours may run after the last cleanup hook returns: Node may
  // unload the addon right after.
  if (self->core_ != nullptr) self->core_->StopAndJoin();
  // Now, not when our object is finalized: that comes after extensions'
  // environments are gone (CleanUpBefore), and free gets one. Node runs
  // cleanup hooks with no handle scope open, and a free that makes a
  // handle (reads a reference, makes a value) would be fatal without one.
  napi_handle_scope scope = nullptr;
  bool scoped = napi_open_handle_scope(self->env_, &scope) == napi_ok;
  self->ReleaseUndrainedTasks();
  if (scoped) napi_close_handle_scope(self->env_, scope);
  // The thread-safe function is torn down by its own hook, which runs next.
  if (self->relay_ != nullptr) self->relay_->loop = nullptr;
  self->relay_ = nullptr;
  self->tsfn_ = nullptr;
}

// ------------------------------------------------------------------ wake-ups

void NativeLoop::OnCompletionsReady() {
  // Called only while the thread runs, and the thread is joined before
  // tsfn_ is released or cleared.
  napi_call_threadsafe_function(tsfn_, nullptr, napi_tsfn_nonblocking);
}

void NativeLoop::CallJs(napi_env env, napi_value, void* context, void*) {
  if (env == nullptr) return;  // the environment is going away
  NativeLoop* self = static_cast<WakeRelay*>(context)->loop;
  if (self == nullptr) return;  // stopped or collected
  Napi::Env napi_env(env);
  Napi::HandleScope scope(napi_env);
  if (self->on_wake_.IsEmpty()) return;
  Napi::Value on_wake = self->on_wake_.Value();
  if (!on_wake.IsFunction()) return;  // collected while idle: nobody to tell
  napi_value ignored;
  napi_status status = napi_call_function(env, napi_env.Undefined(), on_wake, 0, nullptr, &ignored);
  bool thrown = false;
  // A worker being terminated refuses the call with the same status and
  // nothing thrown: then there is nothing to surface.
  if (status == napi_pending_exception && napi_is_exception_pending(env, &thrown) == napi_ok && thrown) {
    // Surface it as Node surfaces a throwing callback: 'uncaughtException'.
    napi_value error;
    napi_get_and_clear_last_exception(env, &error);
    napi_fatal_exception(env, error);
  }
}

// ------------------------------------------------------------------ methods

Napi::Value NativeLoop::Submit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array || !info[1].IsNumber() ||
      !info[2].IsArray()) {
    Napi::TypeError::New(env, "sideloop: bad submit arguments").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto batch = info[0].As<Napi::Float64Array>();
  uint32_t count = info[1].As<Napi::Number>().Uint32Value();
  auto objects = info[2].As<Napi::Array>();
  if (static_cast<size_t>(count) * 4 > batch.ElementLength()) {
    Napi::RangeError::New(env, "sideloop: bad submit count").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  // Reading the batch's objects may run JS (getters), and that JS may call
  // submit() again: it would find this batch's slots free and reuse them,
  // and clear batch_ under us.
  if (submitting_) {
    Napi::Error::New(env, "sideloop: submit() called again while it reads its batch").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  submitting_ = true;
  struct Done {
    bool& flag;
    ~Done() { flag = false; }
  } done{submitting_};
  const uint32_t object_count = objects.Length();
  // Reading an object may run a getter, which could change a slot already
  // checked (to be written past slots_) or shrink the batch's buffer (to
  // be read after its free), and another thread may write a batch in
  // shared memory: then the numbers are copied, checked and read from the
  // copy. A batch of its own without objects (sleeps) cannot change while
  // it is read: read in place (the copy cost a flood of sleeps 5-7 %).
  const double* fields = batch.Data();
  bool in_shared_memory = !batch.ArrayBuffer().IsArrayBuffer();  // a SharedArrayBuffer is not one
  bool made_room;
  try {
    if (object_count > 0 || in_shared_memory) {
      fields_.assign(fields, fields + static_cast<size_t>(count) * 4);
      fields = fields_.data();
    }
    batch_.clear();
    batch_.reserve(count);
    made_room = MakeRoomForSlots(fields, count);
  } catch (const std::bad_alloc&) {
    made_room = false;  // a slot no real batch reaches, or a raw caller's huge batch
  }
  if (!made_room) {
    Napi::RangeError::New(env, "sideloop: bad slot or kind in a submitted batch, or no memory for it").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  for (uint32_t i = 0; i < count; i++, fields += 4) {
    auto slot = static_cast<uint32_t>(fields[0]);
    auto kind = static_cast<int>(fields[1]);
    if (kind == kTaskSleep) {
      // Made by the loop thread from these numbers: no Node-API call, no
      // task memory on this thread, no entry in slots_ (it is known by slot).
      Submission& sleep = batch_.emplace_back();  // in place: see LoopThread::Submit
      sleep.task = nullptr;
      sleep.tag = slot;
      sleep.sleep_ms = fields[3];
      sleep.timeout_ms = fields[2];
      continue;
    }
    Napi::Value object = i < object_count ? objects.Get(i) : env.Undefined();
    Task* task = CreateTask(kind, fields[3], object);
    if (task->kind() == kTaskExtension) CleanUpBefore(static_cast<ExtensionTask*>(task)->extension_env());
    // A description the addon could not use fails as it starts: no time
    // limit (a timeout of 0 would report it as timed out instead).
    if (task->kind() != kTaskRejected) task->set_timeout(fields[2]);
    slots_[slot] = task;
    tasks_in_slots_++;
    if (object.IsObject()) borrowed_[slot] = Napi::Persistent(object.As<Napi::Object>());
    batch_.push_back({task, slot, 0, -1});
  }
  core_->Submit(batch_.data(), batch_.size());
  if (info.Length() > 3 && info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value()) BecomeBusy(true);
  // With spin, this side waits a moment too: a quick answer is then settled
  // without this thread going to sleep and paying ~50 µs to wake up.
  return Napi::Boolean::New(env, spin_us_ > 0 && core_->SpinUntilCompletions(spin_us_));
}

// Before anything of a batch is made, so that a bad one submits nothing:
// every slot and kind must be in range, and every task made here must have
// a slot of its own (the TS layer only sends such; this guards the raw
// binding), and slots_ grows once to hold them.
bool NativeLoop::MakeRoomForSlots(const double* fields, uint32_t count) {
  size_t needed = slots_.size();
  made_here_slots_.clear();
  for (uint32_t i = 0; i < count; i++, fields += 4) {
    if (!(fields[0] >= 0 && fields[0] < kSlotLimit && fields[1] >= 0 && fields[1] < 256)) return false;
    if (static_cast<int>(fields[1]) == kTaskSleep) continue;  // made by the loop thread, not kept in slots_
    auto slot = static_cast<uint32_t>(fields[0]);
    needed = std::max(needed, static_cast<size_t>(slot) + 1);
    made_here_slots_.push_back(slot);
  }
  if (needed > slots_.size()) {
    // borrowed_ first: were only it to grow, the next batch grows both again;
    // were only slots_ to grow, a slot past borrowed_ would pass as checked.
    // (No memory for them throws std::bad_alloc, which Submit catches.)
    size_t size = std::max(needed, slots_.size() * 2);
    borrowed_.resize(size);
    slots_.resize(size, nullptr);
  }
  // A slot still in flight, or twice in the batch, would have the first
  // task's input let go of (borrowed_) while the loop thread reads it.
  for (uint32_t slot : made_here_slots_) {
    if (slots_[slot] != nullptr) return false;
  }
  std::sort(made_here_slots_.begin(), made_here_slots_.end());
  return std::adjacent_find(made_here_slots_.begin(), made_here_slots_.end()) == made_here_slots_.end();
}

Napi::Value NativeLoop::Drain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (draining_) return Napi::Number::New(env, 0);
  // At most max (what is left of the JS side's budget before it yields to
  // the main loop), and never more than the ids array holds.
  MakeRoomToTake();
  size_t max = taken_.size();
  if (info.Length() > 0 && info[0].IsNumber()) {
    double asked = info[0].As<Napi::Number>().DoubleValue();
    if (asked < static_cast<double>(max)) max = asked > 0 ? static_cast<size_t>(asked) : 0;
  }
  draining_ = true;
  size_t n = core_->TakeCompletions(taken_.data(), max);
  Napi::Object payloads = payloads_ref_.Value();
  for (size_t i = 0; i < n; i++) {
    Completion& completion = taken_[i];
    uint32_t task_slot = completion.tag;
    Task* task = completion.task;
    if (task == nullptr) continue;  // a sleep: made and freed by the loop thread
    Napi::Value payload;
    // Only where a JS value is made can an exception arise: no need to ask
    // otherwise.
    bool converted = false;
    if (task->status() == TaskStatus::kError) {
      payload = TaskErrorToJs(env, task->error());
      converted = true;
    } else if (task->status() == TaskStatus::kOk) {
      payload = TaskResultToJs(env, task);
      converted = true;
    }
    if (converted && env.IsExceptionPending()) {
      // The result could not become a JS value (a Buffer too large): the
      // task fails with the reason instead of taking the drain down. Taken
      // raw, as the value it is: node-addon-api's Error wrapper would put a
      // reason that is not an object inside one.
      completion.status = TaskStatus::kError;
      napi_value reason;
      payload = napi_get_and_clear_last_exception(env, &reason) == napi_ok ? Napi::Value(env, reason) : Napi::Value();
    }
    if (!payload.IsEmpty()) payloads.Set(static_cast<uint32_t>(i), payload);
    // Taken out of the table before the slot is free: JS that ReleaseTask
    // runs (an extension's free) may submit a task into it, whose input
    // must stay held.
    Napi::ObjectReference input = std::move(borrowed_[task_slot]);
    slots_[task_slot] = nullptr;
    tasks_in_slots_--;
    ReleaseTask(env, task);
    core_->Dispose(task);
    // Only now: a disposed task reads none of its inputs any more.
    input.Reset();
  }
  draining_ = false;
  // Slots and statuses go out last, through the arrays looked up again now:
  // JS ran above (an extension's to_js or free), and the raw binding's
  // caller may have detached them (transferred their ArrayBuffer) since the
  // constructor, which would leave a pointer kept from then dangling.
  Napi::Uint32Array ids = ids_ref_.Value();
  Napi::Uint8Array statuses = statuses_ref_.Value();
  if (ids.ElementLength() < n || statuses.ElementLength() < n) {
    Napi::RangeError::New(env, "sideloop: the drain buffers were detached").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t* id = ids.Data();
  uint8_t* status = statuses.Data();
  for (size_t i = 0; i < n; i++) {
    id[i] = taken_[i].tag;
    status[i] = static_cast<uint8_t>(taken_[i].status);
  }
  // A stopped loop sends no more but what is in its tables (and what a
  // late submit() brings, which makes room again). Counted, not inferred
  // from a drain that took fewer than it could: JS this drain ran (an
  // extension's free) may have stopped the loop, whose cancelled tasks came
  // after the take. Not from JS that a submit() runs (a getter of its
  // batch): it holds the tables.
  if (stopped_ && tasks_in_slots_ == 0 && !submitting_) ReleaseDrainSpace();
  return Napi::Number::New(env, static_cast<double>(n));
}

void NativeLoop::MakeRoomToTake() {
  if (taken_.size() < drain_capacity_) taken_.resize(drain_capacity_);
}

// A stopped loop drained dry holds no task: its tables by slot, sized for
// the most tasks it ever had in flight, go now rather than at finalization,
// which V8 does not hurry for memory it cannot see. A late submit()
// (MakeRoomForSlots) and drain() (MakeRoomToTake) make them again.
void NativeLoop::ReleaseDrainSpace() {
  std::vector<Completion>().swap(taken_);
  std::vector<Task*>().swap(slots_);
  std::vector<Napi::ObjectReference>().swap(borrowed_);
  std::vector<Submission>().swap(batch_);
  std::vector<double>().swap(fields_);
  std::vector<uint32_t>().swap(made_here_slots_);
}

// A slot names either a task made here (slots_) or one the loop thread made
// (a sleep): that one the core knows by its tag, the slot.
bool NativeLoop::SlotAt(const Napi::CallbackInfo& info, uint32_t* slot, Task** task) {
  if (info.Length() < 1 || !info[0].IsNumber()) return false;
  *slot = info[0].As<Napi::Number>().Uint32Value();
  *task = *slot < slots_.size() ? slots_[*slot] : nullptr;
  return true;
}

Napi::Value NativeLoop::Cancel(const Napi::CallbackInfo& info) {
  uint32_t slot;
  Task* task;
  if (SlotAt(info, &slot, &task)) {
    if (task != nullptr) core_->Cancel(task);
    else core_->CancelTag(slot);
  }
  return info.Env().Undefined();
}

Napi::Value NativeLoop::Phase(const Napi::CallbackInfo& info) {
  uint32_t slot;
  Task* task;
  auto phase = TaskPhase::kDone;
  if (SlotAt(info, &slot, &task)) phase = task != nullptr ? task->phase() : core_->PhaseOfTag(slot);
  return Napi::Number::New(info.Env(), static_cast<double>(phase));
}

Napi::Value NativeLoop::Wait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t slot;
  Task* task;
  if (!SlotAt(info, &slot, &task)) return Napi::Boolean::New(env, true);
  double ms = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : -1;
  // From 2^53 ms (285,000 years) on there is no limit: from 2^64 on, a
  // double would not even fit the uint64_t below.
  bool forever = !(ms >= 0) || ms >= 9007199254740992.0;
  auto remaining = forever ? 0 : static_cast<uint64_t>(std::ceil(ms));
  for (;;) {
    uint64_t slice = forever ? kWaitSliceMs : std::min(remaining, kWaitSliceMs);
    bool done = task != nullptr ? core_->WaitUntilDone(task, slice) : core_->WaitUntilTagDone(slot, slice);
    if (done) return Napi::Boolean::New(env, true);
    if (!forever) {
      remaining -= slice;
      if (remaining == 0) return Napi::Boolean::New(env, false);
    }
    if (!CanRunJs(env)) return Napi::Boolean::New(env, false);
  }
}

Napi::Value NativeLoop::SetBusy(const Napi::CallbackInfo& info) {
  // No coercion: while a worker is being terminated, Node-API calls that may
  // run JS fail, node-addon-api then hands back an empty value, and reading
  // that one is a fatal error. Reading a boolean runs no JS.
  BecomeBusy(info.Length() > 0 && info[0].IsBoolean() && info[0].As<Napi::Boolean>().Value());
  return info.Env().Undefined();
}

void NativeLoop::BecomeBusy(bool busy) {
  if (busy == busy_ || tsfn_ == nullptr) return;
  busy_ = busy;
  if (busy) {
    if (keep_alive_) napi_ref_threadsafe_function(env_, tsfn_);
  } else {
    if (keep_alive_) napi_unref_threadsafe_function(env_, tsfn_);
  }
  HoldWakeCallback(busy);
}

// Raw calls whose failure is ignored: once the callback was collected (the
// raw binding's caller let go of it while the loop was idle) Node refuses
// to count, and there is nothing left to hold. node-addon-api's wrappers
// threw then, and stop() reported a failure.
void NativeLoop::HoldWakeCallback(bool hold) {
  uint32_t count;
  if (hold) napi_reference_ref(env_, on_wake_, &count);
  else napi_reference_unref(env_, on_wake_, &count);
}

Napi::Value NativeLoop::Running(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), core_ != nullptr ? core_->running() : 0);
}

Napi::Value NativeLoop::Stop(const Napi::CallbackInfo& info) {
  if (busy_) {
    HoldWakeCallback(false);
    busy_ = false;
  }
  // The cleanup hook stays until we are finalized: the drain that follows
  // a stop may be cut short (a process.exit() in a worker, from JS that an
  // extension's free runs), and the tasks it left must be freed by the
  // hook, while their extension's environment lives, not by our finalizer,
  // which comes after that environment is deleted.
  StopThread();
  stopped_ = true;
  return info.Env().Undefined();
}

}  // namespace sideloop
