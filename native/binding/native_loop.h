// The JS face of one run of a LoopThread (from start to stop; a restart
// makes a new NativeLoop). The protocol with src/backends/native.ts:
//
//   new NativeLoop(name, keepAlive, onWake, ids, statuses, payloads, spinMicroseconds)
//   submit(batch: Float64Array, count, objects, busy): ready
//                     [slot, kind, timeout, number] x count; busy: also
//                     setBusy(true) (one call less per round trip); with
//                     spin, polls for the answer and returns true when
//                     completions wait (drain() now, no wake-up comes)
//   drain(max?): n    fills ids[0..n), statuses[0..n) and, where a task has
//                     a value or an error, payloads[i], n <= max; n below
//                     max and ids.length means the queue is empty
//   cancel(slot), phase(slot), wait(slot, ms): boolean (ms < 0: no limit)
//   setBusy(bool)     tasks are pending: keep the process (keepAlive) and
//                     onWake alive
//   running(), stop() stop() aborts everything and joins the thread; drain()
//                     afterwards hands back what is left
//
// Slots are small integers the JS side allocates; a slot is free again once
// drain() has reported it.
#ifndef SIDELOOP_BINDING_NATIVE_LOOP_H_
#define SIDELOOP_BINDING_NATIVE_LOOP_H_

#include <napi.h>

#include <memory>
#include <vector>

#include "../core/loop_thread.h"

namespace sideloop {

class NativeLoop : public Napi::ObjectWrap<NativeLoop>, public CompletionSink {
 public:
  static Napi::Function DefineClass(Napi::Env env);

  explicit NativeLoop(const Napi::CallbackInfo& info);
  ~NativeLoop() override;

 private:
  Napi::Value Submit(const Napi::CallbackInfo& info);
  Napi::Value Drain(const Napi::CallbackInfo& info);
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  Napi::Value Phase(const Napi::CallbackInfo& info);
  Napi::Value Wait(const Napi::CallbackInfo& info);
  Napi::Value SetBusy(const Napi::CallbackInfo& info);
  void BecomeBusy(bool busy);
  void HoldWakeCallback(bool hold);
  Napi::Value Running(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);

  void OnCompletionsReady() override;  // loop thread
  static void CallJs(napi_env env, napi_value, void* context, void*);
  static void OnEnvCleanup(void* arg);

  bool SlotAt(const Napi::CallbackInfo& info, uint32_t* slot, Task** task);
  bool MakeRoomForSlots(const double* fields, uint32_t count);
  void CleanUpBefore(napi_env extension_env);
  void ReleaseUndrainedTasks();
  // Joins the thread and lets go of the thread-safe function.
  void StopThread();
  // StopThread(), and the environment cleanup hook goes too.
  void Shutdown();
  void ReleaseThreadSafeFunction();

  // Declared first so it is destroyed last: ~LoopThread joins the thread,
  // and nothing below may go away while the thread can still call
  // OnCompletionsReady().
  std::unique_ptr<LoopThread> core_;
  napi_env env_;
  // What the thread-safe function's calls reach us through; owned by that
  // function (freed by its finalizer), cleared when we let go of it.
  struct WakeRelay {
    NativeLoop* loop;
  };
  WakeRelay* relay_ = nullptr;
  napi_threadsafe_function tsfn_ = nullptr;
  bool cleanup_hook_added_ = false;
  bool keep_alive_ = true;
  bool busy_ = false;
  bool stopped_ = false;  // stop() was called: once drained, the thread sends no more
  uint32_t spin_us_ = 0;

  // Weak while idle, so an idle, unreferenced loop can be collected (its
  // finalizer then stops the thread); strong while tasks are pending.
  Napi::FunctionReference on_wake_;
  Napi::Reference<Napi::Uint32Array> ids_ref_;
  Napi::Reference<Napi::Uint8Array> statuses_ref_;
  Napi::ObjectReference payloads_ref_;
  // drain()'s scratch space, drain_capacity_ entries (the ids array's
  // length, 16 KiB for the JS side's 1,024): made at the first drain, not
  // for a loop that never has one, and given back with the tables by slot
  // once a stopped loop has drained everything (ReleaseDrainSpace).
  std::vector<Completion> taken_;
  size_t drain_capacity_ = 0;
  void MakeRoomToTake();
  void ReleaseDrainSpace();
  // An extension's to_js or free may call JS that waits on this loop; the
  // drain that nests then takes nothing, or it would overwrite taken_ (and
  // the slots and statuses) under this one and free its tasks a second time.
  bool draining_ = false;
  bool submitting_ = false;  // inside submit(), which may run JS (see Submit)
  std::vector<Task*> slots_;       // slot -> task made here, until drain() reports it
  size_t tasks_in_slots_ = 0;      // how many of slots_ hold a task
  // slot -> the JS object the task was described by, kept alive until the
  // task is freed: tasks read byte inputs in place, from the loop thread.
  // References are made and deleted on this (the JS) thread only.
  std::vector<Napi::ObjectReference> borrowed_;
  std::vector<Submission> batch_;  // submit()'s scratch space
  std::vector<double> fields_;  // submit()'s copy of a batch's numbers, when getters may run (see Submit)
  std::vector<uint32_t> made_here_slots_;  // MakeRoomForSlots()'s scratch space
  std::vector<napi_env> extension_envs_;   // whose tasks came here (CleanUpBefore)
};

}  // namespace sideloop

#endif  // SIDELOOP_BINDING_NATIVE_LOOP_H_
